// Hooks shared by the pages: data loading, live refresh, clocks, debouncing.

import { useCallback, useContext, useEffect, useRef, useState } from 'preact/hooks';
import { isAbort } from '../api/client';
import type { Event } from '../api/types';
import type { EventKind } from '../api/types.extra';
import { AppContext } from './context';

export interface Async<T> {
  data?: T;
  error?: unknown;
  loading: boolean;
  reload: () => void;
  setData: (d: T) => void;
}

/**
 * useAsync runs fn when deps change and keeps the last data while it reloads,
 * so live refreshes do not flash a loading state.
 */
export function useAsync<T>(fn: (signal: AbortSignal) => Promise<T>, deps: unknown[]): Async<T> {
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true });
  const [nonce, setNonce] = useState(0);
  const fnRef = useRef(fn);
  fnRef.current = fn;
  useEffect(() => {
    const ctrl = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    fnRef.current(ctrl.signal).then(
      (data) => !ctrl.signal.aborted && setState({ data, loading: false }),
      (error) => !ctrl.signal.aborted && !isAbort(error) && setState((s) => ({ data: s.data, error, loading: false })),
    );
    return () => ctrl.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, nonce]);
  const reload = useCallback(() => setNonce((n) => n + 1), []);
  const setData = useCallback((data: T) => setState({ data, loading: false }), []);
  return { ...state, reload, setData };
}

/** useLive answers a counter that grows when a change of one of kinds arrives. */
export function useLive(kinds: EventKind[], filter?: (e: Event) => boolean): number {
  const { live } = useContext(AppContext);
  const [tick, setTick] = useState(0);
  const key = kinds.join(',');
  const filterRef = useRef(filter);
  filterRef.current = filter;
  useEffect(() => {
    if (!live) return;
    return live.subscribe((events) => {
      if (events.some((e) => kinds.includes(e.kind as EventKind) && (!filterRef.current || filterRef.current(e)))) {
        setTick((t) => t + 1);
      }
    });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [live, key]);
  return tick;
}

/** useNow answers the time, refreshed every ms milliseconds (for "3 min ago"). */
export function useNow(ms = 10000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}

export function useDebounced<T>(value: T, ms = 250): T {
  const [v, setV] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setV(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return v;
}
