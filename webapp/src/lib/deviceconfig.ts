// The wg-quick config of a new device: the server's text for the interface
// (GET /interfaces/{id}/config) with the browser's private key put in, or,
// when the server has no such text, one assembled from the network's graph.

import { ApiError, type Client } from '../api/client';
import type { Interface, Network } from '../api/types';
import { renderConfig, withPrivateKey, type PeerConfig } from './wgconfig';

/** hostRoute narrows an interface address to the single address (/32 or /128). */
export function hostRoute(cidr: string): string {
  const ip = cidr.split('/')[0];
  return ip.includes(':') ? `${ip}/128` : `${ip}/32`;
}

/** endpointOf joins a host address and port, bracketing IPv6 literals. */
export function endpointOf(address: string | undefined, port: number): string | undefined {
  if (!address) return undefined;
  if (/^\[.*\]:\d+$/.test(address) || /^[^:]+:\d+$/.test(address)) return address; // has a port
  const host = address.includes(':') ? `[${address}]` : address;
  return port ? `${host}:${port}` : undefined;
}

export async function deviceConfig(api: Client, device: Interface, network: Network, privateKey: string): Promise<{ text: string; source: 'server' | 'assembled' }> {
  try {
    const text = await api.interfaceConfig(device.id);
    if (text.trim()) return { text: withPrivateKey(text, privateKey), source: 'server' };
  } catch (err) {
    if (!(err instanceof ApiError) || err.status === 401 || err.status === 403) throw err;
  }
  return { text: await assembleConfig(api, device, network, privateKey), source: 'assembled' };
}

/** assembleConfig builds the config from the topology: one [Peer] per interface the device connects to. */
export async function assembleConfig(api: Client, device: Interface, network: Network, privateKey: string): Promise<string> {
  const topo = await api.topology(network.id);
  const names = new Map(topo.nodes.map((n) => [n.interface_id, n.name]));
  const peerIds = topo.edges.filter((e) => e.a === device.id || e.b === device.id).map((e) => (e.a === device.id ? e.b : e.a));
  const peers: PeerConfig[] = [];
  for (const id of peerIds) {
    const i = await api.getInterface(id);
    if (!i.public_key) continue; // its agent has not reported a key yet
    let endpoint: string | undefined;
    if (i.host_id && !i.device_name) {
      const h = await api.getHost(i.host_id).catch(() => undefined);
      endpoint = endpointOf(h?.advertise_address || h?.observed_address, i.listen_port || network.listen_port);
    }
    peers.push({
      comment: names.get(id) ?? i.name,
      publicKey: i.public_key,
      endpoint,
      allowedIPs: [...i.addresses.map(hostRoute), ...(i.routed_subnets ?? [])],
      persistentKeepalive: network.persistent_keepalive || 25,
    });
  }
  return renderConfig({
    comment: `${device.device_name ?? device.name} in ${network.name} (Drago)`,
    privateKey,
    addresses: device.addresses,
    mtu: network.mtu || undefined,
    dns: network.dns,
    peers,
  });
}
