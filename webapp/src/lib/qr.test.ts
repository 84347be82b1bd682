import { describe, expect, it } from 'vitest';
import { qrPath } from './qr';

describe('qrPath', () => {
  it('draws a QR code of a config', () => {
    const qr = qrPath('[Interface]\nPrivateKey = x\nAddress = 10.0.0.2/24\n');
    expect(qr.size).toBeGreaterThanOrEqual(21);
    expect(qr.path).toMatch(/^M0 0h7v1h-7z/); // the top-left finder pattern
  });

  it('refuses text too long for a QR code', () => {
    expect(() => qrPath('x'.repeat(5000))).toThrow();
  });
});
