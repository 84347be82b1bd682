// QR codes drawn as SVG paths, computed in the browser by the `qrcode` package.

import QRCode from 'qrcode';

export interface QRPath {
  size: number; // modules per side, without the quiet zone
  path: string; // SVG path of the dark modules, in module units
}

/** qrPath encodes text; it throws when the text does not fit in a QR code. */
export function qrPath(text: string): QRPath {
  const qr = QRCode.create(text, { errorCorrectionLevel: 'L' });
  const size = qr.modules.size;
  const data = qr.modules.data;
  let path = '';
  for (let y = 0; y < size; y++) {
    let x = 0;
    while (x < size) {
      if (!data[y * size + x]) {
        x++;
        continue;
      }
      // Merge a horizontal run of dark modules into one rectangle.
      let w = 1;
      while (x + w < size && data[y * size + x + w]) w++;
      path += `M${x} ${y}h${w}v1h${-w}z`;
      x += w;
    }
  }
  return { size, path };
}
