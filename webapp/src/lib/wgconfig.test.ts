import { describe, expect, it } from 'vitest';
import { peerCount, withPrivateKey } from './wgconfig';

const KEY = 'cGhvbmUtcHJpdmF0ZS1rZXktMDAwMDAwMDAwMDAwMDA=';

describe('withPrivateKey', () => {
  it('fills a commented placeholder', () => {
    const text = '[Interface]\n# PrivateKey = <your private key>\nAddress = 10.0.0.9/24\n\n[Peer]\nPublicKey = abc\n';
    expect(withPrivateKey(text, KEY)).toBe(`[Interface]\nPrivateKey = ${KEY}\nAddress = 10.0.0.9/24\n\n[Peer]\nPublicKey = abc\n`);
  });

  it('adds the key after [Interface] when there is none', () => {
    const text = '# phone\n[Interface]\nAddress = 10.0.0.9/24\n[Peer]\nPublicKey = abc';
    expect(withPrivateKey(text, KEY)).toBe(`# phone\n[Interface]\nPrivateKey = ${KEY}\nAddress = 10.0.0.9/24\n[Peer]\nPublicKey = abc\n`);
  });

  it('does not touch peers and handles CRLF', () => {
    const out = withPrivateKey('[Interface]\r\nPrivateKey = old\r\n[Peer]\r\nPublicKey = p\r\n', KEY);
    expect(out).toBe(`[Interface]\nPrivateKey = ${KEY}\n[Peer]\nPublicKey = p\n`);
  });

  it('adds an [Interface] section to a text without one', () => {
    expect(withPrivateKey("", KEY)).toBe(`[Interface]\nPrivateKey = ${KEY}\n`);
  });

  it("replaces the server's placeholder, leaving the rest of its text as it is", () => {
    // As server/state InterfaceConfig writes a device's configuration.
    const server = [
      '# alice-phone in network office (id d1)',
      '[Interface]',
      'PrivateKey = <private key of this device, never sent to the server>',
      'Address = 10.10.0.9/24',
      'MTU = 1420',
      '',
      '# h1/drago0',
      '[Peer]',
      'PublicKey = PUB1',
      'AllowedIPs = 10.10.0.0/24',
      'Endpoint = 192.0.2.11:51820',
      'PersistentKeepalive = 25',
      '',
    ].join('\n');
    const out = withPrivateKey(server, KEY);
    expect(out).toBe(server.replace(/^PrivateKey = .*$/m, `PrivateKey = ${KEY}`));
    expect(peerCount(out)).toBe(1);
  });
});

describe('peerCount', () => {
  it('counts [Peer] sections', () => {
    expect(peerCount('[Interface]\nPrivateKey = k\n')).toBe(0);
    expect(peerCount('[Interface]\n[Peer]\nPublicKey = a\n\n[Peer]\r\nPublicKey = b\n')).toBe(2);
  });
});
