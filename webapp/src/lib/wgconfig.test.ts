import { describe, expect, it } from 'vitest';
import { peerCount, renderConfig, withPrivateKey } from './wgconfig';

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
});

describe('renderConfig', () => {
  it('writes a wg-quick file', () => {
    const text = renderConfig({
      comment: 'phone in office',
      privateKey: KEY,
      addresses: ['10.0.0.9/24'],
      dns: ['10.0.0.1'],
      peers: [
        { comment: 'gw', publicKey: 'PUB1', endpoint: '198.51.100.1:51820', allowedIPs: ['10.0.0.1/32', '192.168.1.0/24'], persistentKeepalive: 25 },
        { publicKey: 'PUB2', allowedIPs: ['10.0.0.2/32'] },
      ],
    });
    expect(text).toBe(
      [
        '# phone in office',
        '[Interface]',
        `PrivateKey = ${KEY}`,
        'Address = 10.0.0.9/24',
        'DNS = 10.0.0.1',
        '',
        '# gw',
        '[Peer]',
        'PublicKey = PUB1',
        'AllowedIPs = 10.0.0.1/32, 192.168.1.0/24',
        'Endpoint = 198.51.100.1:51820',
        'PersistentKeepalive = 25',
        '',
        '[Peer]',
        'PublicKey = PUB2',
        'AllowedIPs = 10.0.0.2/32',
        '',
      ].join('\n'),
    );
    expect(peerCount(text)).toBe(2);
  });
});
