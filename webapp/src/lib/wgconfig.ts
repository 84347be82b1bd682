// wg-quick configuration text for plain WireGuard devices: the server renders
// it (GET /interfaces/{id}/config) without a private key, and the browser puts
// in the private key that only it knows.

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
