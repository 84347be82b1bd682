import { describe, expect, it } from 'vitest';
import { clamp, fromBase64, generateKeyPair, isKey, nobleKeyPair, publicKeyOf, toBase64, webCryptoKeyPair } from './wgkeys';

describe('WireGuard keys', () => {
  it('generates a valid pair with WebCrypto X25519', async () => {
    const kp = await webCryptoKeyPair();
    expect(kp).not.toBeNull();
    expect(isKey(kp!.privateKey)).toBe(true);
    expect(isKey(kp!.publicKey)).toBe(true);
    expect(await publicKeyOf(kp!.privateKey)).toBe(kp!.publicKey);
    const priv = fromBase64(kp!.privateKey);
    expect(priv[0] & 7).toBe(0);
    expect(priv[31] & 0xc0).toBe(0x40);
  });

  it('falls back to @noble/curves without WebCrypto X25519', async () => {
    const noX25519 = { generateKey: () => Promise.reject(new Error('NotSupportedError')) } as unknown as SubtleCrypto;
    expect(await webCryptoKeyPair(noX25519)).toBeNull();
    expect(await webCryptoKeyPair(null)).toBeNull();
    const kp = await nobleKeyPair();
    expect(isKey(kp.privateKey)).toBe(true);
    expect(await publicKeyOf(kp.privateKey)).toBe(kp.publicKey);
  });

  it('makes different keys each time', async () => {
    const a = await generateKeyPair();
    const b = await generateKeyPair();
    expect(a.privateKey).not.toBe(b.privateKey);
    expect(a.via).toBe('webcrypto');
  });

  it('matches the RFC 7748 test vector', async () => {
    // RFC 7748 section 6.1, Alice.
    const priv = Uint8Array.from(Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex'));
    const pub = Buffer.from('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a', 'hex');
    expect(await publicKeyOf(toBase64(priv))).toBe(pub.toString('base64'));
    expect(await publicKeyOf(toBase64(clamp(priv)))).toBe(pub.toString('base64'));
  });

  it('recognises keys', () => {
    expect(isKey('')).toBe(false);
    expect(isKey('not a key')).toBe(false);
    expect(isKey(toBase64(new Uint8Array(32)))).toBe(true);
    expect(isKey(toBase64(new Uint8Array(31)))).toBe(false);
  });
});
