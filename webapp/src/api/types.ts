// Wire types of Drago's REST API, mirrored from server/api/*.go. Field names
// are the Go json tags; times are RFC 3339 strings; `?` marks omitempty.

export type Topology = 'none' | 'mesh' | 'hub';
export type HostStatus = 'pending' | 'ready' | 'down';

/** Meta is carried by every stored object. */
export interface Meta {
  id: string;
  created_at: string;
  updated_at: string;
  modify_index: number;
}

export interface Network extends Meta {
  name: string;
  ipv4_range: string;
  ipv6_range?: string;
  listen_port: number;
  mtu: number;
  dns?: string[];
  persistent_keepalive: number;
  topology: Topology;
  hub_interface_id?: string;
}

export interface Host extends Meta {
  name: string;
  labels?: Record<string, string>;
  advertise_address?: string;
  observed_address?: string;
  os?: string;
  arch?: string;
  agent_version?: string;
  backend?: string;
  status: HostStatus;
  last_seen?: string;
  rotate_keys?: boolean;
}

export interface Interface extends Meta {
  host_id: string;
  network_id: string;
  name: string;
  addresses: string[];
  listen_port: number;
  mtu: number;
  routed_subnets?: string[];
  public_key?: string;
  key_rotated_at?: string;
  device_name?: string;
}

export interface ConnectionSide {
  interface_id: string;
  allowed_ips?: string[];
  endpoint?: string;
}

export interface Connection extends Meta {
  network_id: string;
  a: ConnectionSide;
  b: ConnectionSide;
  persistent_keepalive?: number | null;
  implicit?: boolean;
}

export interface Policy {
  resource: string;
  access: 'read' | 'write';
  networks?: string[];
}

export interface Token extends Meta {
  name: string;
  policies: Policy[];
  root?: boolean;
  secret?: string;
}

export interface JoinToken extends Meta {
  name: string;
  /** Without expires_at, never_expires or max_uses a join token expires 24 h after creation. */
  expires_at?: string;
  never_expires?: boolean;
  max_uses?: number;
  uses: number;
  labels?: Record<string, string>;
  networks?: string[];
  /** Shell pattern limiting the host names agents may register, e.g. "web-*". */
  name_pattern?: string;
  secret?: string;
}

/** List is a page of objects: items start at offset of total matching ones. */
export interface List<T> {
  items: T[];
  offset: number;
  total: number;
}

export interface ErrorBody {
  error: { message: string; field?: string };
}

export interface Health {
  status: string;
  version: string;
}

export interface Overview {
  version: string;
  index: number;
  networks: number;
  hosts: number;
  hosts_ready: number;
  hosts_down: number;
  hosts_pending: number;
  interfaces: number;
  devices: number;
}

export type EventKind = 'network' | 'host' | 'interface' | 'connection' | 'token' | 'join_token';

export interface Event {
  index: number;
  time: string;
  kind: EventKind | string;
  action: 'created' | 'updated' | 'deleted' | string;
  id: string;
  name?: string;
  /** Ids of the networks the object is in (they decide which tokens see the event). */
  networks?: string[];
}

export interface Events {
  index: number;
  events: Event[];
}

export interface TopologyNode {
  interface_id: string;
  host_id?: string;
  name: string;
  device?: boolean;
  addresses: string[];
  status: string;
}

export interface TopologyEdge {
  a: string;
  b: string;
  implicit?: boolean;
  connection_id?: string;
  last_handshake?: string;
}

export interface TopologyGraph {
  network: Network;
  nodes: TopologyNode[];
  edges: TopologyEdge[];
}

export interface DeviceRequest {
  network: string;
  name: string;
  public_key: string;
  address?: string;
}

// Agent-side types: the dashboard reads StatusReport from /hosts/{h}/status.
export interface RegisterRequest {
  name: string;
  labels?: Record<string, string>;
  advertise_address?: string;
  os?: string;
  arch?: string;
  agent_version?: string;
}

export interface RegisterResponse {
  host_id: string;
  credential: string;
}

export interface PeerStatus {
  public_key: string;
  endpoint?: string;
  last_handshake?: string;
  rx_bytes: number;
  tx_bytes: number;
}

export interface InterfaceStatus {
  id: string;
  public_key: string;
  listen_port: number;
  peers?: PeerStatus[];
}

export interface StatusReport {
  backend?: string;
  advertise_address?: string;
  agent_version?: string;
  os?: string;
  arch?: string;
  applied_index: number;
  interfaces: InterfaceStatus[];
}
