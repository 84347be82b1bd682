// The dashboard's only way to the server: a typed client of the REST API
// documented in docs/api-routes.md. The management token travels in the
// Authorization header, never in a URL.

import type {
  AuditEntry,
  Cluster,
  Connection,
  ConnectionHistory,
  DeviceRequest,
  Events,
  Health,
  Host,
  HostHistory,
  Interface,
  JoinToken,
  List,
  Meta,
  Network,
  Overview,
  Rule,
  RuleCheck,
  RuleRequest,
  RuleVerdict,
  StatusReport,
  Token,
  Topology,
} from './types';

export const API_PREFIX = '/api/v1';

/** ApiError is a failed request: the server's message and the field at fault. */
export class ApiError extends Error {
  readonly status: number;
  readonly field?: string;

  constructor(status: number, message: string, field?: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.field = field || undefined;
  }
}

/** isAbort reports whether err comes from an aborted request. */
export function isAbort(err: unknown): boolean {
  return err instanceof DOMException && err.name === 'AbortError';
}

export type Query = Record<string, string | number | boolean | undefined | null>;

export interface PageQuery extends Query {
  limit?: number;
  offset?: number;
}

/** AuditQuery filters GET /audit: times are RFC 3339 or durations back from now ("24h"). */
export interface AuditQuery extends PageQuery {
  since?: string;
  until?: string;
  token?: string;
  object?: string;
  kind?: string;
  method?: string;
}

/** TopologyQuery selects what GET /networks/{network}/topology answers. */
export interface TopologyQuery extends PageQuery {
  edges?: 'all' | 'problems' | 'none';
  node?: string;
  edge_limit?: number;
  edge_offset?: number;
}

interface RequestOptions {
  query?: Query;
  body?: unknown;
  signal?: AbortSignal;
  text?: boolean;
}

type Fetch = typeof fetch;

export function queryString(query?: Query): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null || v === '') continue;
    params.set(k, String(v));
  }
  const s = params.toString();
  return s ? `?${s}` : '';
}

const seg = encodeURIComponent;

/** Client talks to one Drago server with one management token. */
export class Client {
  private readonly token: string;
  private readonly fetchImpl: Fetch;
  private readonly origin: string;
  /** onUnauthorized is called when the server rejects the token (401). */
  onUnauthorized?: () => void;

  constructor(token: string, opts: { fetch?: Fetch; origin?: string } = {}) {
    this.token = token;
    this.fetchImpl = opts.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.origin = opts.origin ?? '';
  }

  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const headers: Record<string, string> = {
      Authorization: `Bearer ${this.token}`,
      Accept: opts.text ? 'text/plain' : 'application/json',
    };
    let body: string | undefined;
    if (opts.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(opts.body);
    }
    const url = `${this.origin}${API_PREFIX}${path}${queryString(opts.query)}`;
    const res = await this.fetchImpl(url, {
      method,
      headers,
      body,
      signal: opts.signal,
      credentials: 'omit',
      cache: 'no-store',
    });
    if (!res.ok) {
      throw await errorFrom(res, () => this.onUnauthorized?.());
    }
    if (res.status === 204) return undefined as T;
    if (opts.text) return (await res.text()) as T;
    const raw = await res.text();
    return (raw ? JSON.parse(raw) : undefined) as T;
  }

  private get<T>(path: string, query?: Query, signal?: AbortSignal) {
    return this.request<T>('GET', path, { query, signal });
  }

  // Overview and changes.
  health = (signal?: AbortSignal) => this.get<Health>('/health', undefined, signal);
  status = (signal?: AbortSignal) => this.get<Overview>('/status', undefined, signal);
  /** events answers the changes after index; with wait it is a blocking query. */
  events = (index?: number, wait?: string, signal?: AbortSignal) =>
    this.get<Events>('/events', { index, wait }, signal);
  tokenSelf = (signal?: AbortSignal) => this.get<Token>('/tokens/self', undefined, signal);
  /** cluster answers the servers sharing the store (it answers while this server is cut off). */
  cluster = (signal?: AbortSignal) => this.get<Cluster>('/cluster', undefined, signal);

  // Networks.
  listNetworks = (q: PageQuery & { q?: string } = {}, signal?: AbortSignal) =>
    this.get<List<Network>>('/networks', q, signal);
  getNetwork = (n: string, signal?: AbortSignal) => this.get<Network>(`/networks/${seg(n)}`, undefined, signal);
  createNetwork = (body: Partial<Network>) => this.request<Network>('POST', '/networks', { body });
  updateNetwork = (n: string, body: Partial<Network>) =>
    this.request<Network>('PATCH', `/networks/${seg(n)}`, { body });
  deleteNetwork = (n: string) => this.request<void>('DELETE', `/networks/${seg(n)}`);
  /** topology answers a summary, a page of nodes and the edges asked for (see TopologyQuery). */
  topology = (n: string, q: TopologyQuery = {}, signal?: AbortSignal) =>
    this.get<Topology>(`/networks/${seg(n)}/topology`, q, signal);

  // Hosts.
  listHosts = (q: PageQuery & { q?: string; status?: string; label?: string } = {}, signal?: AbortSignal) =>
    this.get<List<Host>>('/hosts', q, signal);
  getHost = (h: string, signal?: AbortSignal) => this.get<Host>(`/hosts/${seg(h)}`, undefined, signal);
  updateHost = (h: string, body: Partial<Pick<Host, 'name' | 'labels' | 'advertise_address'>>) =>
    this.request<Host>('PATCH', `/hosts/${seg(h)}`, { body });
  deleteHost = (h: string) => this.request<void>('DELETE', `/hosts/${seg(h)}`);
  hostStatus = (h: string, signal?: AbortSignal) =>
    this.get<StatusReport>(`/hosts/${seg(h)}/status`, undefined, signal);
  /** hostHistory answers the last hour of the host's counters, a point a minute. */
  hostHistory = (h: string, signal?: AbortSignal) => this.get<HostHistory>(`/hosts/${seg(h)}/history`, undefined, signal);
  rotateKeys = (h: string) => this.request<Host>('POST', `/hosts/${seg(h)}/rotate-keys`);

  // Interfaces.
  /** listInterfaces answers a page of interfaces; firewall 'behind' keeps those that do not enforce their policy. */
  listInterfaces = (q: PageQuery & { network?: string; host?: string; firewall?: 'behind' } = {}, signal?: AbortSignal) =>
    this.get<List<Interface>>('/interfaces', q, signal);
  getInterface = (id: string, signal?: AbortSignal) =>
    this.get<Interface>(`/interfaces/${seg(id)}`, undefined, signal);
  createInterface = (body: Partial<Interface>) => this.request<Interface>('POST', '/interfaces', { body });
  updateInterface = (id: string, body: Partial<Interface>) =>
    this.request<Interface>('PATCH', `/interfaces/${seg(id)}`, { body });
  deleteInterface = (id: string) => this.request<void>('DELETE', `/interfaces/${seg(id)}`);
  /** interfaceConfig answers the wg-quick text of an interface, without its private key. */
  interfaceConfig = (id: string, signal?: AbortSignal) =>
    this.request<string>('GET', `/interfaces/${seg(id)}/config`, { text: true, signal });

  // Plain WireGuard devices.
  listDevices = (q: PageQuery & { network?: string } = {}, signal?: AbortSignal) =>
    this.get<List<Interface>>('/devices', q, signal);
  createDevice = (body: DeviceRequest) => this.request<Interface>('POST', '/devices', { body });
  deleteDevice = (id: string) => this.request<void>('DELETE', `/devices/${seg(id)}`);

  // Connections.
  listConnections = (q: PageQuery & { network?: string; interface?: string } = {}, signal?: AbortSignal) =>
    this.get<List<Connection>>('/connections', q, signal);
  createConnection = (body: Partial<Connection>) => this.request<Connection>('POST', '/connections', { body });
  updateConnection = (id: string, body: Partial<Connection>) =>
    this.request<Connection>('PATCH', `/connections/${seg(id)}`, { body });
  /** connectionHistory answers the last hour of a connection's counters, as each side reports them. */
  connectionHistory = (id: string, signal?: AbortSignal) =>
    this.get<ConnectionHistory>(`/connections/${seg(id)}/history`, undefined, signal);
  /** peeringHistory answers the same for two interfaces of a network, connected or not (implicit connections have no id). */
  peeringHistory = (iface: string, peer: string, signal?: AbortSignal) =>
    this.get<ConnectionHistory>(`/interfaces/${seg(iface)}/history`, { peer }, signal);
  deleteConnection = (id: string) => this.request<void>('DELETE', `/connections/${seg(id)}`);

  // Access rules (docs/policies.md).
  listRules = (q: PageQuery & { network?: string } = {}, signal?: AbortSignal) => this.get<List<Rule>>('/rules', q, signal);
  createRule = (body: Omit<RuleRequest, keyof Meta>) => this.request<Rule>('POST', '/rules', { body });
  /** updateRule changes a rule; a new position moves it. */
  updateRule = (id: string, body: Partial<Rule>) => this.request<Rule>('PATCH', `/rules/${seg(id)}`, { body });
  deleteRule = (id: string) => this.request<void>('DELETE', `/rules/${seg(id)}`);
  /** checkRule answers which action the network's policy takes for one flow, and which rule decides. */
  checkRule = (body: RuleCheck, signal?: AbortSignal) => this.request<RuleVerdict>('POST', '/rules/check', { body, signal });

  // Join tokens.
  listJoinTokens = (q: PageQuery = {}, signal?: AbortSignal) => this.get<List<JoinToken>>('/join-tokens', q, signal);
  createJoinToken = (body: Partial<JoinToken>) => this.request<JoinToken>('POST', '/join-tokens', { body });
  deleteJoinToken = (id: string) => this.request<void>('DELETE', `/join-tokens/${seg(id)}`);

  // The audit trail of management writes, newest first.
  listAudit = (q: AuditQuery = {}, signal?: AbortSignal) => this.get<List<AuditEntry>>('/audit', q, signal);
}

async function errorFrom(res: Response, unauthorized: () => void): Promise<ApiError> {
  let message = `${res.status} ${res.statusText || 'request failed'}`.trim();
  let field: string | undefined;
  try {
    const raw = await res.text();
    const body = raw ? JSON.parse(raw) : undefined;
    if (body && typeof body.error === 'object' && body.error) {
      if (typeof body.error.message === 'string' && body.error.message) message = body.error.message;
      if (typeof body.error.field === 'string') field = body.error.field;
    }
  } catch {
    // Not JSON: keep the status line.
  }
  if (res.status === 401) unauthorized();
  return new ApiError(res.status, message, field);
}
