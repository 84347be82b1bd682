import { cleanup, render } from '@testing-library/preact';
import { afterEach, describe, expect, it } from 'vitest';
import type { CounterPoint } from '../api/types';
import { handshakeAges, rates, Sparkline, TrafficSpark } from './sparkline';

afterEach(() => cleanup());

const pt = (min: number, rx: number, tx: number, hs?: string): CounterPoint => ({
  time: new Date(Date.UTC(2026, 0, 1, 0, min)).toISOString(),
  rx_bytes: rx,
  tx_bytes: tx,
  last_handshake: hs,
});

describe('counter history', () => {
  it('rates are bytes per minute between points, a fallen counter counting from 0', () => {
    expect(rates([pt(0, 100, 10), pt(1, 200, 30), pt(3, 400, 30), pt(4, 50, 5)])).toEqual([120, 100, 55]);
    expect(rates([pt(0, 1, 1)])).toEqual([]);
  });

  it('handshake ages run to the end of each minute, -1 without one', () => {
    expect(handshakeAges([pt(0, 0, 0), pt(2, 0, 0, '2026-01-01T00:01:30Z')])).toEqual([-1, 90]);
  });

  it('draws a line once there are two values, and says so before', () => {
    const { container, rerender } = render(<Sparkline values={[1]} label="x" />);
    expect(container.textContent).toBe('collecting…');
    rerender(<Sparkline values={[0, 5, 10]} label="x" />);
    expect(container.querySelector('polyline')?.getAttribute('points')).toBe('0.0,21.0 48.0,11.0 96.0,1.0');
  });

  it('shows the last minute of traffic', () => {
    const { container } = render(<TrafficSpark points={[pt(0, 0, 0), pt(1, 1024, 1024), pt(2, 4096, 2048)]} />);
    expect(container.textContent).toContain('/min');
    expect(container.querySelector('svg')).not.toBeNull();
  });
});
