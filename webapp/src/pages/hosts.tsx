// Hosts: a virtualized table over the server's paged, filtered host list.
// Only the pages covering the visible rows are fetched, and only the visible
// rows are rendered, so 10,000 hosts cost what 30 do.

import { useContext, useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import type { Host, Interface } from '../api/types';
import { Badge, Card, Empty, ErrorState, Link, Loading, Mono, PageHeader, StatusBadge } from '../components/ui';
import { IconHost, IconKey, IconSearch } from '../components/icons';
import { AppContext } from '../lib/context';
import { ago, duration, parseTime } from '../lib/format';
import { useAsync, useDebounced, useLive, useNow } from '../lib/hooks';
import { navigate } from '../lib/router';
import { pagesFor, visibleRange } from '../lib/virtual';
import { worstEnforcement, type Enforcement } from '../lib/policy';

export const ROW_HEIGHT = 48;
export const PAGE_SIZE = 100;
const KEY_AGE_BATCH = 40;
const STATUS_REFRESH_MS = 30000;

type Pages = Map<number, Host[]>;

/** keyAge answers the age of the oldest key among a host's interfaces. */
export function keyAge(ifaces: Interface[], now = Date.now()): string {
  let oldest: number | undefined;
  for (const i of ifaces) {
    const t = parseTime(i.key_rotated_at);
    if (t !== undefined && (oldest === undefined || t < oldest)) oldest = t;
  }
  if (oldest === undefined) return '—';
  return now - oldest < 60000 ? '< 1 min' : duration(now - oldest);
}

export function HostsPage() {
  const { api } = useContext(AppContext);
  const now = useNow(15000);
  const [q, setQ] = useState('');
  const [status, setStatus] = useState('');
  const dq = useDebounced(q.trim());
  const live = useLive(['host', 'interface']);
  // Ready and down follow heartbeats, which send no change event: poll too.
  const [poll, setPoll] = useState(0);
  useEffect(() => {
    const t = setInterval(() => setPoll((p) => p + 1), STATUS_REFRESH_MS);
    return () => clearInterval(t);
  }, []);
  const tick = live + poll;
  const overview = useAsync((s) => api.status(s), [tick]);
  const behind = overview.data?.firewall_behind ?? 0;

  const [total, setTotal] = useState<number>();
  const [error, setError] = useState<unknown>();
  const [, setVersion] = useState(0);
  const pages = useRef<Pages>(new Map());
  const inflight = useRef(new Set<number>());
  const gen = useRef(0);
  const keyAges = useRef(new Map<string, string>());
  // Hosts in view whose agent does not enforce an interface's access policy, from the same interface lists.
  const unenforced = useRef(new Map<string, Enforcement | undefined>());

  const scroller = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewport, setViewport] = useState(600);

  const bump = () => setVersion((x) => x + 1);

  async function fetchPage(p: number, g: number) {
    if (inflight.current.has(p)) return;
    inflight.current.add(p);
    try {
      const res = await api.listHosts({ q: dq, status, limit: PAGE_SIZE, offset: p * PAGE_SIZE });
      if (g !== gen.current) return;
      pages.current.set(p, res.items ?? []);
      setTotal(res.total);
      setError(undefined);
      bump();
    } catch (err) {
      if (g === gen.current) setError(err);
    } finally {
      if (g === gen.current) inflight.current.delete(p);
    }
  }

  // A new filter starts over.
  useEffect(() => {
    gen.current++;
    pages.current = new Map();
    inflight.current = new Set();
    setTotal(undefined);
    setError(undefined);
    scroller.current?.scrollTo?.({ top: 0 });
    setScrollTop(0);
    fetchPage(0, gen.current);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [dq, status]);

  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const measure = () => setViewport(el.clientHeight || 600);
    measure();
    if (typeof ResizeObserver === 'undefined') return;
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, [total !== undefined]);

  const range = visibleRange(scrollTop, viewport, ROW_HEIGHT, total ?? 0);
  const needed = pagesFor(range, PAGE_SIZE);

  // Fetch the pages the window needs.
  useEffect(() => {
    for (const p of needed) if (!pages.current.has(p)) fetchPage(p, gen.current);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [needed.join(','), total]);

  // A host changed: refresh the pages in view, drop the others.
  useEffect(() => {
    if (!tick) return;
    const keep = new Set(needed);
    for (const p of [...pages.current.keys()]) if (!keep.has(p)) pages.current.delete(p);
    keyAges.current.clear();
    const g = gen.current;
    for (const p of needed.length ? needed : [0]) {
      inflight.current.delete(p);
      fetchPage(p, g);
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [tick]);

  const rowAt = (i: number): Host | undefined => pages.current.get(Math.floor(i / PAGE_SIZE))?.[i % PAGE_SIZE];

  // Key ages of the rows in view, from their interfaces, once scrolling settles.
  const inView: string[] = [];
  for (let i = range.start; i < range.end; i++) {
    const h = rowAt(i);
    if (h && !keyAges.current.has(h.id)) inView.push(h.id);
  }
  const wanted = useDebounced(inView.slice(0, KEY_AGE_BATCH).join(','), 300);
  useEffect(() => {
    if (!wanted) return;
    let cancelled = false;
    const ids = wanted.split(',').filter((id) => !keyAges.current.has(id));
    Promise.all(
      ids.map((id) =>
        api.listInterfaces({ host: id, limit: 50 }).then(
          (l) => {
            keyAges.current.set(id, keyAge(l.items ?? [], Date.now()));
            unenforced.current.set(id, worstEnforcement(l.items ?? []));
          },
          () => keyAges.current.set(id, '—'),
        ),
      ),
    ).then(() => !cancelled && bump());
    return () => {
      cancelled = true;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [wanted]);

  const rows = [];
  for (let i = range.start; i < range.end; i++) {
    const h = rowAt(i);
    const style = { transform: `translateY(${i * ROW_HEIGHT}px)`, height: `${ROW_HEIGHT}px` };
    if (!h) {
      rows.push(
        <div class="vrow placeholder" role="row" key={`p${i}`} style={style}>
          <div class="vcell" role="cell">
            <span class="skeleton-line short" />
          </div>
        </div>,
      );
      continue;
    }
    const go = `/hosts/${encodeURIComponent(h.name)}`;
    rows.push(
      <div class="vrow" role="row" key={h.id} style={style} data-row={i} onClick={() => navigate(go)}>
        <div class="vcell" role="cell">
          <Link to={go} class="strong">
            {h.name}
          </Link>
          {unenforced.current.get(h.id) && (
            <span data-firewall="behind" title={unenforced.current.get(h.id)!.detail}>
              <Badge tone="amber" dot>
                policy {unenforced.current.get(h.id)!.label}
              </Badge>
            </span>
          )}
        </div>
        <div class="vcell" role="cell">
          <StatusBadge status={h.status} />
        </div>
        <div class="vcell muted" role="cell" title={h.last_seen ?? undefined}>
          {ago(h.last_seen, now)}
        </div>
        <div class="vcell" role="cell">
          {h.os ? `${h.os}/${h.arch ?? '?'}` : <span class="muted">—</span>}
        </div>
        <div class="vcell" role="cell">
          {h.agent_version ? <Mono>{h.agent_version}</Mono> : <span class="muted">—</span>}
        </div>
        <div class="vcell" role="cell">
          {h.backend || <span class="muted">—</span>}
        </div>
        <div class="vcell muted" role="cell" data-keyage>
          {keyAges.current.get(h.id) ?? <span class="skeleton-line tiny" />}
        </div>
      </div>,
    );
  }

  return (
    <div class="page page-fill">
      <PageHeader
        title="Hosts"
        subtitle={
          <>
            Machines running the Drago agent, with their last heartbeat.
            {behind > 0 && (
              <span class="behind-note" data-testid="hosts-firewall-behind">
                {' '}
                <Badge tone="amber" dot>
                  {behind.toLocaleString('en')} interface{behind === 1 ? '' : 's'} not enforcing the access policy
                </Badge>{' '}
                (flagged below; <code>drago status</code> lists them all)
              </span>
            )}
          </>
        }
      />
      <Card flush class="card-fill">
        <div class="toolbar">
          <div class="search">
            <IconSearch size={16} />
            <input type="search" placeholder="Filter by name prefix" value={q} onInput={(e) => setQ(e.currentTarget.value)} aria-label="Filter hosts" />
          </div>
          <select value={status} onChange={(e) => setStatus(e.currentTarget.value)} aria-label="Status" class="select-inline">
            <option value="">All statuses</option>
            <option value="ready">Ready</option>
            <option value="down">Down</option>
            <option value="pending">Pending</option>
          </select>
          <span class="toolbar-count muted" data-testid="hosts-total">
            {total === undefined ? '' : `${total.toLocaleString()} host${total === 1 ? '' : 's'}`}
          </span>
        </div>
        {error != null && total === undefined ? (
          <ErrorState error={error} onRetry={() => fetchPage(0, gen.current)} />
        ) : total === undefined ? (
          <Loading rows={6} />
        ) : total === 0 ? (
          dq || status ? (
            <Empty icon={<IconSearch />} title="No matching hosts">
              Nothing matches this filter.
            </Empty>
          ) : (
            <Empty icon={<IconHost />} title="No hosts yet" action={<Link to="/join-tokens" class="btn btn-primary btn-sm"><IconKey size={15} /> <span>Create a join token</span></Link>}>
              Hosts appear here when an agent registers with a join token.
            </Empty>
          )
        ) : (
          <div class="vtable" role="table" aria-rowcount={total} data-testid="hosts-table">
            <div class="vrow vhead" role="row">
              <div class="vcell" role="columnheader">Name</div>
              <div class="vcell" role="columnheader">Status</div>
              <div class="vcell" role="columnheader">Last seen</div>
              <div class="vcell" role="columnheader">OS / arch</div>
              <div class="vcell" role="columnheader">Agent</div>
              <div class="vcell" role="columnheader">Backend</div>
              <div class="vcell" role="columnheader">Key age</div>
            </div>
            <div
              class="vbody"
              ref={scroller}
              onScroll={(e) => {
                const top = e.currentTarget.scrollTop;
                requestAnimationFrame(() => setScrollTop(top));
              }}
            >
              <div class="vspacer" style={{ height: `${total * ROW_HEIGHT}px` }}>
                {rows}
              </div>
            </div>
          </div>
        )}
      </Card>
    </div>
  );
}
