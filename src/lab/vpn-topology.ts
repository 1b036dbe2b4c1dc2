// A vpn policy's tunnel in the sandbox. The real tunnel (WireGuard, its keys
// and encryption) is not needed to test the firewall: what the ruleset sees is
// an interface named vpn.interface. So the host gets a veth of that name on a
// "tunnel" segment to a node standing for the internet as seen through the VPN
// — the same peers, trackers and DNS servers as the internet node behind the
// physical interface, so that an answer's node names the way a flow went. The
// tunnel's endpoints live on the internet node, behind the physical interface,
// as in life.
//
// The way out is chosen by source address (policy routing): the host has an
// address of its own on the tunnel, and `ip rule from <that address> lookup
// 51820` sends whatever a socket bound to it sends through the tunnel, while a
// socket bound to the physical address follows the main table out of the
// physical interface. Any user's socket can so try either way — the confined
// user's sockets bound to the physical address are the leak flows — without
// marks (SO_MARK needs CAP_NET_ADMIN) or SO_BINDTODEVICE, which Node's sockets
// cannot set. The kill switch matches the output interface and the socket's
// owner, never the source address, so choosing the way by source does not
// change its decision. The uid a flow runs as is the probe agent's (rehearse.ts).
import { formatAddress, type Family } from "../net/address.js";
import type { Prefix } from "../net/prefix.js";
import type { Policy } from "../policy/types.js";
import type { VpnSection } from "../policy/vpn.js";
import type { LabNode, Topology } from "./topology.js";
import { vpnLanOf } from "./vpn-oracle.js";

export const TUNNEL_TABLE = 51820;
const HOST_ON_TUNNEL = { 4: "10.2.0.2", 6: "fd00:2::2" } as const;
const FAR_ON_TUNNEL = { 4: "10.2.0.1", 6: "fd00:2::1" } as const;
const FULL: Record<Family, number> = { 4: 32, 6: 128 };
const single = (addr: string): string => `${addr}/${addr.includes(":") ? 128 : 32}`;
const ownAddresses = (n: LabNode) => n.interfaces.flatMap((i) => i.addresses.map((x) => x.split("/")[0]!));

/** Adds the tunnel to a host topology: the host's second interface, the far node, the endpoints, a LAN address. */
export function addTunnel(p: Policy, vpn: VpnSection, t: Topology, internetAddrs: string[]): void {
  const host = t.nodes.find((n) => n.role === "firewall")!;
  const internet = t.nodes.find((n) => n.id === "internet")!;
  const physical = host.interfaces[0]!.name;
  host.interfaces.push({ name: vpn.interface, segment: "tunnel", addresses: [`${HOST_ON_TUNNEL[4]}/24`, `${HOST_ON_TUNNEL[6]}/64`] });
  for (const family of [4, 6] as Family[]) {
    host.routes.push({ family, to: "default", dev: vpn.interface, table: TUNNEL_TABLE });
    (host.rules ??= []).push({ family, from: HOST_ON_TUNNEL[family], table: TUNNEL_TABLE });
  }
  t.nodes.push({
    id: "tunnel", role: "internet", forwarding: false,
    interfaces: [{ name: "eth0", segment: "tunnel", addresses: [`${FAR_ON_TUNNEL[4]}/24`, `${FAR_ON_TUNNEL[6]}/64`, ...internetAddrs.map(single)] }],
    routes: [{ family: 4, to: "default", dev: "eth0" }, { family: 6, to: "default", dev: "eth0" }],
  });
  const used = new Set(t.nodes.flatMap(ownAddresses));
  const place = (addr: string) => {
    if (!ownAddresses(internet).includes(addr)) internet.interfaces[0]!.addresses.push(single(addr));
    t.book.owner.set(addr, "internet");
    used.add(addr);
  };
  for (const e of vpn.endpoints) place(formatAddress(e.address));
  const lan: Partial<Record<Family, string>> = {};
  for (const family of [4, 6] as Family[]) {
    const addr = lanAddress(vpnLanOf(p, vpn).filter((n) => n.family === family), used, new Set(ownAddresses(host)));
    if (addr) { place(addr); lan[family] = addr; }
  }
  t.book.tunnel = { interface: vpn.interface, physical, firewall: { ...HOST_ON_TUNNEL }, lan };
}

/** An address on the LAN that no node has yet: in a network if there is one, else a single host named. */
function lanAddress(nets: Prefix[], used: Set<string>, mine: Set<string>): string | undefined {
  for (const n of nets) {
    const size = 1n << BigInt(FULL[n.family] - n.length);
    for (let i = 1n; i < size - 1n && i < 64n; i++) {
      const cand = formatAddress({ family: n.family, value: n.network + i });
      if (!used.has(cand)) return cand;
    }
  }
  return nets.filter((x) => x.length === FULL[x.family]).map((x) => formatAddress({ family: x.family, value: x.network })).find((x) => !mine.has(x));
}
