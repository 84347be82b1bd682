import { describe, expect, it } from 'vitest';
import { pagesFor, visibleRange } from './virtual';

describe('virtual window', () => {
  it('renders only the rows in view plus overscan', () => {
    expect(visibleRange(0, 480, 48, 10000, 5)).toEqual({ start: 0, end: 16 });
    expect(visibleRange(48 * 5000, 480, 48, 10000, 5)).toEqual({ start: 4995, end: 5016 });
    expect(visibleRange(48 * 9999, 480, 48, 10000, 5)).toEqual({ start: 9994, end: 10000 });
    expect(visibleRange(0, 480, 48, 0)).toEqual({ start: 0, end: 0 });
  });

  it('maps rows to server pages', () => {
    expect(pagesFor({ start: 0, end: 16 }, 100)).toEqual([0]);
    expect(pagesFor({ start: 95, end: 120 }, 100)).toEqual([0, 1]);
    expect(pagesFor({ start: 4995, end: 5016 }, 100)).toEqual([49, 50]);
    expect(pagesFor({ start: 3, end: 3 }, 100)).toEqual([]);
  });
});
