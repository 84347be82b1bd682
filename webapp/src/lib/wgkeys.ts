// WireGuard (X25519) key pairs generated in the browser. The private key
// never leaves this module's caller: only the public key is sent to the server.

export interface KeyPair {
  privateKey: string; // base64, as `wg genkey` prints it
  publicKey: string; // base64, as `wg pubkey` prints it
}

export function toBase64(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s);
}

export function fromBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function fromBase64Url(s: string): Uint8Array {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/');
  return fromBase64(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
}

/** clamp applies Curve25519 clamping, as `wg genkey` does; the public key is unchanged by it. */
export function clamp(k: Uint8Array): Uint8Array {
  const c = new Uint8Array(k);
  c[0] &= 248;
  c[31] &= 127;
  c[31] |= 64;
  return c;
}

/** isKey reports whether s is a base64 WireGuard key (32 bytes). */
export function isKey(s: string): boolean {
  if (!/^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/.test(s)) return false;
  return fromBase64(s).length === 32;
}

/** webCryptoKeyPair uses WebCrypto's X25519, or answers null where the browser lacks it. */
export async function webCryptoKeyPair(subtle: SubtleCrypto | null = globalThis.crypto?.subtle ?? null): Promise<KeyPair | null> {
  if (!subtle) return null;
  try {
    const pair = (await subtle.generateKey({ name: 'X25519' }, true, ['deriveBits'])) as CryptoKeyPair;
    const jwk = await subtle.exportKey('jwk', pair.privateKey);
    if (!jwk.d || !jwk.x) return null;
    const priv = fromBase64Url(jwk.d);
    const pub = fromBase64Url(jwk.x);
    if (priv.length !== 32 || pub.length !== 32) return null;
    return { privateKey: toBase64(clamp(priv)), publicKey: toBase64(pub) };
  } catch {
    return null;
  }
}

/** nobleKeyPair uses @noble/curves (audited, loaded on demand). */
export async function nobleKeyPair(): Promise<KeyPair> {
  const { x25519 } = await import('@noble/curves/ed25519.js');
  const secret = clamp(x25519.utils.randomSecretKey());
  return { privateKey: toBase64(secret), publicKey: toBase64(x25519.getPublicKey(secret)) };
}

/** generateKeyPair makes a WireGuard key pair, with WebCrypto X25519 when available. */
export async function generateKeyPair(): Promise<KeyPair & { via: 'webcrypto' | 'noble' }> {
  const wc = await webCryptoKeyPair();
  if (wc) return { ...wc, via: 'webcrypto' };
  return { ...(await nobleKeyPair()), via: 'noble' };
}

/** publicKeyOf derives the public key of a base64 private key (used by tests and checks). */
export async function publicKeyOf(privateKey: string): Promise<string> {
  const { x25519 } = await import('@noble/curves/ed25519.js');
  return toBase64(x25519.getPublicKey(fromBase64(privateKey)));
}
