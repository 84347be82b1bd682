// wg-quick configuration text for plain WireGuard devices, completed in the
// browser with the private key that only the browser knows.

export interface PeerConfig {
  comment?: string;
  publicKey: string;
  endpoint?: string;
  allowedIPs: string[];
  persistentKeepalive?: number;
}

export interface DeviceConfig {
  comment?: string;
  privateKey: string;
  addresses: string[];
  listenPort?: number;
  mtu?: number;
  dns?: string[];
  peers: PeerConfig[];
}

/** renderConfig writes a wg-quick file. */
export function renderConfig(c: DeviceConfig): string {
  const out: string[] = [];
  if (c.comment) out.push(`# ${c.comment}`);
  out.push('[Interface]');
  out.push(`PrivateKey = ${c.privateKey}`);
  if (c.addresses.length) out.push(`Address = ${c.addresses.join(', ')}`);
  if (c.listenPort) out.push(`ListenPort = ${c.listenPort}`);
  if (c.mtu) out.push(`MTU = ${c.mtu}`);
  if (c.dns?.length) out.push(`DNS = ${c.dns.join(', ')}`);
  for (const p of c.peers) {
    out.push('');
    if (p.comment) out.push(`# ${p.comment}`);
    out.push('[Peer]');
    out.push(`PublicKey = ${p.publicKey}`);
    if (p.allowedIPs.length) out.push(`AllowedIPs = ${p.allowedIPs.join(', ')}`);
    if (p.endpoint) out.push(`Endpoint = ${p.endpoint}`);
    if (p.persistentKeepalive) out.push(`PersistentKeepalive = ${p.persistentKeepalive}`);
  }
  return out.join('\n') + '\n';
}

/**
 * withPrivateKey puts privateKey into the [Interface] section of a wg-quick
 * text from the server (which never has it): it replaces a PrivateKey line,
 * commented or not, or adds one right after the [Interface] header.
 */
export function withPrivateKey(text: string, privateKey: string): string {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  let section = '';
  let header = -1;
  let done = false;
  for (let i = 0; i < lines.length; i++) {
    const t = lines[i].trim();
    const sec = /^\[(\w+)\]$/.exec(t);
    if (sec) {
      section = sec[1].toLowerCase();
      if (section === 'interface' && header < 0) header = i;
      continue;
    }
    if (section === 'interface' && /^#?\s*PrivateKey\s*=/i.test(t)) {
      if (done) {
        lines.splice(i, 1);
        i--;
      } else {
        lines[i] = `PrivateKey = ${privateKey}`;
        done = true;
      }
    }
  }
  if (!done) {
    if (header < 0) {
      lines.unshift('[Interface]', `PrivateKey = ${privateKey}`);
    } else {
      lines.splice(header + 1, 0, `PrivateKey = ${privateKey}`);
    }
  }
  let out = lines.join('\n');
  if (!out.endsWith('\n')) out += '\n';
  return out;
}

/** peerCount counts the [Peer] sections of a wg-quick text. */
export function peerCount(text: string): number {
  return (text.match(/^\s*\[Peer\]\s*$/gim) ?? []).length;
}
