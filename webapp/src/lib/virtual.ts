// Windowing math for virtualized tables: which rows are visible and which
// server pages hold them.

export interface Range {
  start: number; // first row index, inclusive
  end: number; // last row index, exclusive
}

/** visibleRange answers the rows to render for a scroll position, with overscan rows either side. */
export function visibleRange(
  scrollTop: number,
  viewport: number,
  rowHeight: number,
  total: number,
  overscan = 8,
): Range {
  if (total <= 0 || rowHeight <= 0) return { start: 0, end: 0 };
  const first = Math.floor(Math.max(0, scrollTop) / rowHeight);
  const count = Math.ceil(Math.max(0, viewport) / rowHeight) + 1;
  const start = Math.max(0, first - overscan);
  const end = Math.min(total, first + count + overscan);
  return { start: Math.min(start, end), end };
}

/** pagesFor answers the page numbers (of pageSize rows) that cover a range. */
export function pagesFor(r: Range, pageSize: number): number[] {
  if (r.end <= r.start) return [];
  const first = Math.floor(r.start / pageSize);
  const last = Math.floor((r.end - 1) / pageSize);
  const out: number[] = [];
  for (let p = first; p <= last; p++) out.push(p);
  return out;
}
