// QRCode shows text as a QR code, drawn as SVG in the browser.

import { useMemo } from 'preact/hooks';
import { qrPath } from '../lib/qr';

export function QRCodeView({ text, size = 240 }: { text: string; size?: number }) {
  const qr = useMemo(() => {
    try {
      return qrPath(text);
    } catch {
      return null;
    }
  }, [text]);
  if (!qr) {
    return <div class="qr-too-big">This configuration is too large for a QR code: download the file instead.</div>;
  }
  const q = 4; // quiet zone
  const n = qr.size + 2 * q;
  return (
    <svg class="qr" width={size} height={size} viewBox={`0 0 ${n} ${n}`} shape-rendering="crispEdges" role="img" aria-label="QR code of the configuration" data-testid="qr">
      <rect width={n} height={n} fill="#fff" />
      <path d={qr.path} transform={`translate(${q} ${q})`} fill="#111827" />
    </svg>
  );
}
