// The sandbox a policy is rehearsed in, as plain data: nodes (one network
// namespace each), their interfaces on named segments, addresses and routes.
// A segment with two members is a veth pair; with more, a bridge in a switch
// namespace of its own. Nothing here connects to the machine's own network:
// the default routes point into the sandbox and lead nowhere else.
import { formatAddress, parseAddress, type Address, type Family } from "../net/address.js";
import { builtinPrefix, prefixContains, type Prefix } from "../net/prefix.js";
import type { Policy } from "../policy/types.js";
import { addTunnel } from "./vpn-topology.js";

export interface LabInterface {
  name: string;
  segment: string;
  addresses: string[];
  /** Multicast groups the interface joins (Local Service Discovery). */
  groups?: string[];
}
export interface LabRoute { family: Family; to: string; via?: string; dev: string; /** A routing table other than main. */ table?: number }
/** Policy routing: packets from this source address look up this table (ip rule). */
export interface LabRule { family: Family; from: string; table: number }
export interface LabNode {
  id: string;
  role: "firewall" | "internet" | "admin" | "lan";
  interfaces: LabInterface[];
  routes: LabRoute[];
  rules?: LabRule[];
  forwarding: boolean;
}

/** A vpn policy's tunnel in the sandbox (see vpn-topology.ts). */
export interface LabTunnel {
  /** The tunnel interface (vpn.interface) and the host's physical one. */
  interface: string;
  physical: string;
  /** The host's address on the tunnel: a socket bound to it leaves through the tunnel. */
  firewall: Record<Family, string>;
  /** A LAN address outside the host, by family (absent when the LAN has none of that family). */
  lan: Partial<Record<Family, string>>;
}

/** Addresses the flows use, by family. */
export interface AddressBook {
  /** The firewall's own address that inbound flows target (on a gateway, its WAN address). */
  firewall: Record<Family, string>;
  peer: Record<Family, string>;
  stranger: Record<Family, string>;
  /** A node that never listens, for probes from well-known source ports (53, 80, …). */
  scanner: Record<Family, string>;
  /** A source that owns a given address (admin sources, LAN hosts). */
  owner: Map<string, string>;
  /** Gateway only: each forward's LAN host node and its IPv4 and IPv6 addresses. */
  lanHosts: { node: string; v4: string; v6: string }[];
  /** Gateway only: its LAN-side addresses. */
  gatewayLan?: Record<Family, string>;
  /** Gateway only: a LAN machine without forwards, that opens connections out. */
  lanClient?: { node: string; v4: string; v6: string };
  /** Host with a vpn section only: the tunnel. */
  tunnel?: LabTunnel;
}

export interface Topology { nodes: LabNode[]; book: AddressBook }

const a = (text: string): Address => parseAddress(text)!;
const DOC = {
  host: { 4: "192.0.2.51", 6: "2001:db8::51" },
  peer: { 4: "198.51.100.7", 6: "2001:db8:100::7" },
  stranger: { 4: "198.51.100.66", 6: "2001:db8:100::66" },
  wan: { 4: "203.0.113.1", 6: "2001:db8:ffff::1" },
  upstream: { 4: "203.0.113.2", 6: "2001:db8:ffff::2" },
  scanner: { 4: "198.51.100.99", 6: "2001:db8:100::99" },
  lan6: "2001:db8:1::/64",
} as const;
const FULL: Record<Family, number> = { 4: 32, 6: 128 };

/** A representative address inside a prefix: a documentation address when one fits, else the second address. */
export function representative(p: Prefix): string {
  const candidates = p.family === 4 ? ["192.0.2.21", "198.51.100.21", "203.0.113.21"] : ["2001:db8::21", "2001:db8:100::21"];
  if (p.length === FULL[p.family]) return formatAddress({ family: p.family, value: p.network });
  if (p.length < (p.family === 4 ? 8 : 16)) {
    const fit = candidates.find((c) => prefixContains(p, a(c)));
    if (fit) return fit;
  }
  return formatAddress({ family: p.family, value: p.network + 1n });
}

const single = (addr: string): string => `${addr}/${addr.includes(":") ? 128 : 32}`;

export function planTopology(policy: Policy): Topology {
  return policy.role === "gateway" ? gatewayTopology(policy) : hostTopology(policy);
}

function adminSources(policy: Policy): string[] {
  return [...new Set(policy.admin.flatMap((s) => s.from.map(representative)))];
}

function hostTopology(policy: Policy): Topology {
  const host = policy.host!;
  // Without an interface named, the host's is eth0 — unless that is the tunnel's name.
  const iface = host.interface ?? (policy.vpn?.interface === "eth0" ? "eth1" : "eth0");
  const mine = host.addresses.map((x) => `${formatAddress(x.address)}/${x.network.length === FULL[x.address.family] ? (x.address.family === 4 ? 24 : 64) : x.network.length}`);
  const firewall = { 4: "", 6: "" } as Record<Family, string>;
  for (const f of [4, 6] as Family[]) {
    const own = host.addresses.find((x) => x.address.family === f);
    firewall[f] = own ? formatAddress(own.address) : DOC.host[f];
    if (!own) mine.push(`${DOC.host[f]}/${f === 4 ? 24 : 64}`);
  }
  const onLink = (dev: string): LabRoute[] => [{ family: 4, to: "default", dev }, { family: 6, to: "default", dev }];
  const dns = policy.outbound.dns === "any" ? [] : policy.outbound.dns.map(formatAddress);
  const trackerTargets = policy.outbound.trackers.flatMap((t) => t.to.map(representative));
  const internetAddrs = [...Object.values(DOC.peer), ...Object.values(DOC.stranger), ...dns, ...trackerTargets];
  const owner = new Map<string, string>();
  const nodes: LabNode[] = [
    { id: "host", role: "firewall", interfaces: [{ name: iface, segment: "lan", addresses: mine }], routes: onLink(iface), forwarding: false },
    { id: "internet", role: "internet", interfaces: [{ name: "eth0", segment: "lan", addresses: [...new Set(internetAddrs)].map(single) }], routes: onLink("eth0"), forwarding: false },
  ];
  for (const addr of internetAddrs) owner.set(addr, "internet");
  nodes.push({ id: "scanner", role: "internet", interfaces: [{ name: "eth0", segment: "lan", addresses: Object.values(DOC.scanner).map(single) }], routes: onLink("eth0"), forwarding: false });
  adminSources(policy).forEach((src, i) => {
    // Each admin node also has an address of the other family, to show the service is closed there.
    const other = src.includes(":") ? `192.0.2.${200 + i}` : `2001:db8:ad::${i + 1}`;
    const id = `admin${i + 1}`;
    nodes.push({ id, role: "admin", interfaces: [{ name: "eth0", segment: "lan", addresses: [single(src), single(other)] }], routes: onLink("eth0"), forwarding: false });
    owner.set(src, id);
    owner.set(other, id);
  });
  const topology: Topology = { nodes, book: { firewall, peer: DOC.peer, stranger: DOC.stranger, scanner: DOC.scanner, owner, lanHosts: [] } };
  if (policy.vpn) addTunnel(policy, policy.vpn, topology, [...new Set(internetAddrs)]);
  return topology;
}

function gatewayTopology(policy: Policy): Topology {
  const gw = policy.gateway!;
  const lan6 = gw.lanNetwork6 ?? builtinPrefix(DOC.lan6);
  const used = new Set(policy.forward.flatMap((f) => [formatAddress(f.host), ...(f.host6 ? [formatAddress(f.host6)] : [])]));
  const freeIn = (p: Prefix, from: number): string => {
    for (let i = BigInt(from); ; i++) {
      const cand = formatAddress({ family: p.family, value: p.network + i });
      if (!used.has(cand)) { used.add(cand); return cand; }
    }
  };
  // Admin sources inside the LAN keep their address; everything else is placed around them.
  const owner = new Map<string, string>();
  const internetAddrs: string[] = [...Object.values(DOC.peer), ...Object.values(DOC.stranger)];
  const lanAdmins: { id: string; src: string; family: Family }[] = [];
  adminSources(policy).forEach((src, i) => {
    const addr = a(src);
    if (!prefixContains(addr.family === 4 ? gw.lanNetwork : lan6, addr)) { internetAddrs.push(src); return; }
    const forwardHost = policy.forward.findIndex((f) => formatAddress(f.host) === src || (f.host6 && formatAddress(f.host6) === src));
    if (forwardHost >= 0) { owner.set(src, `lan${forwardHost + 1}`); return; }
    lanAdmins.push({ id: `admin${i + 1}`, src, family: addr.family });
    used.add(src);
  });
  const gwLan = { 4: freeIn(gw.lanNetwork, 1), 6: freeIn(lan6, 1) } as Record<Family, string>;
  // One machine per LAN host, however many forwards name it (one per client it runs, say).
  const byHost = new Map<string, { node: string; v4: string; v6?: string }>();
  policy.forward.forEach((f, i) => {
    const v4 = formatAddress(f.host);
    const h = byHost.get(v4) ?? { node: `lan${i + 1}`, v4 };
    if (f.host6 && !h.v6) h.v6 = formatAddress(f.host6);
    byHost.set(v4, h);
  });
  const lanHosts = [...byHost.values()].map((h, i) => {
    const v6 = h.v6 ?? freeIn(lan6, 0x100 + i);
    owner.set(h.v4, h.node);
    owner.set(v6, h.node);
    return { node: h.node, v4: h.v4, v6 };
  });
  const lanClient = { node: "lanclient", v4: freeIn(gw.lanNetwork, 2), v6: freeIn(lan6, 2) };
  const viaGateway = (dev: string): LabRoute[] => [{ family: 4, to: "default", via: gwLan[4], dev }, { family: 6, to: "default", via: gwLan[6], dev }];
  const nodes: LabNode[] = [
    {
      id: "gateway", role: "firewall", forwarding: true,
      interfaces: [
        { name: gw.wan, segment: "wan", addresses: [`${DOC.wan[4]}/24`, `${DOC.wan[6]}/64`] },
        { name: gw.lan, segment: "lan", addresses: [`${gwLan[4]}/${gw.lanNetwork.length}`, `${gwLan[6]}/${lan6.length}`] },
      ],
      routes: [{ family: 4, to: "default", dev: gw.wan }, { family: 6, to: "default", dev: gw.wan }],
    },
    ...[...lanHosts, lanClient].map((h): LabNode => ({
      id: h.node, role: "lan", forwarding: false,
      interfaces: [{ name: "eth0", segment: "lan", addresses: [`${h.v4}/${gw.lanNetwork.length}`, `${h.v6}/${lan6.length}`] }],
      routes: viaGateway("eth0"),
    })),
  ];
  for (const adm of lanAdmins) {
    nodes.push({ id: adm.id, role: "admin", forwarding: false, routes: viaGateway("eth0").filter((r) => r.family === adm.family),
      interfaces: [{ name: "eth0", segment: "lan", addresses: [`${adm.src}/${adm.family === 4 ? gw.lanNetwork.length : lan6.length}`] }] });
    owner.set(adm.src, adm.id);
  }
  for (const addr of internetAddrs) owner.set(addr, "internet");
  nodes.push({
    id: "internet", role: "internet", forwarding: false,
    interfaces: [{ name: "eth0", segment: "wan", addresses: [`${DOC.upstream[4]}/24`, `${DOC.upstream[6]}/64`, ...[...new Set(internetAddrs)].map(single)] }],
    // Through the gateway: replies find their way back, and a peer can try to reach a LAN host directly.
    routes: [{ family: 4, to: "default", via: DOC.wan[4], dev: "eth0" }, { family: 6, to: "default", via: DOC.wan[6], dev: "eth0" }],
  });
  nodes.push({
    id: "scanner", role: "internet", forwarding: false,
    interfaces: [{ name: "eth0", segment: "wan", addresses: ["203.0.113.3/24", "2001:db8:ffff::3/64", ...Object.values(DOC.scanner).map(single)] }],
    routes: [{ family: 4, to: "default", via: DOC.wan[4], dev: "eth0" }, { family: 6, to: "default", via: DOC.wan[6], dev: "eth0" }],
  });
  return { nodes, book: { firewall: DOC.wan, peer: DOC.peer, stranger: DOC.stranger, scanner: DOC.scanner, owner, lanHosts, gatewayLan: gwLan, lanClient } };
}

