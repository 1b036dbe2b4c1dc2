// The flows a rehearsal tries, derived from the policy: every opening it names
// (at the edges of each port range), and what must stay closed around them —
// other ports, the ports just outside each range, admin ports from other
// sources and the other address family, UDP where only TCP is open, replies
// that a stateless rule would let in, unforwarded and non-DNAT paths.
import { formatAddress, type Family } from "../net/address.js";
import type { PortRange } from "../net/port.js";
import type { Policy } from "../policy/types.js";
import { forwardFor, inbound, outbound, type Proto, type Verdict } from "./oracle.js";
import { representative, type AddressBook } from "./topology.js";
import { vpnHostFlows } from "./vpn-flows.js";

export interface Flow {
  id: number;
  what: string;
  from: string;
  /** Source address the probe binds to. */
  bind: string;
  to: string;
  proto: Proto;
  port?: number;
  sport?: number;
  family: Family;
  expect: "open" | "closed";
  /** Node that must answer an open flow (forwarded flows arrive at a LAN host). */
  arriveAt?: string;
  /** Source address the answering node must see (masquerade). */
  seenFrom?: string;
  /** The policy path that decides the flow; "" means the default drop. */
  path: string;
  /** vpn policies: the uid the probe runs as (root when absent), the user's name, the host interface the flow leaves or arrives by. */
  uid?: number;
  user?: string;
  via?: string;
  /** vpn policies: confined traffic that only the kill switch stops. */
  leak?: boolean;
}

export const FAMILIES: Family[] = [4, 6];
export const PROTOS = ["tcp", "udp"] as const;
const fam = (address: string): Family => (address.includes(":") ? 6 : 4);
export const label = (proto: Proto, port?: number) => (proto === "icmp" ? "ping" : `${proto.toUpperCase()} ${port}`);

/** The first and last port of a range, and the ports just outside it. */
export function edges(r: PortRange): { inside: number[]; outside: number[] } {
  return {
    inside: r.first === r.last ? [r.first] : [r.first, r.last],
    outside: [r.first - 1, r.last + 1].filter((p) => p >= 1 && p <= 65535),
  };
}

// Ports no example opens, and source ports that classic stateless "return
// traffic" rules (--sport 53, 80, 443, 6881:65535) would let in.
export const OTHER_PORTS: [Proto, number][] = [["tcp", 23], ["tcp", 3389], ["tcp", 8080], ["udp", 40000], ["udp", 5353]];
export const STATELESS: [Proto, number, number][] = [["udp", 53, 40001], ["tcp", 80, 40002], ["udp", 6881, 40003], ["tcp", 443, 40004], ["udp", 123, 40005]];

export class FlowList {
  readonly flows: Flow[] = [];
  private readonly seen = new Set<string>();

  add(f: Omit<Flow, "id" | "expect" | "path" | "family">, v: Verdict, arriveAt?: string): void {
    const key = `${f.from}|${f.uid ?? 0}|${f.bind}|${f.to}|${f.proto}|${f.port}|${f.sport}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.flows.push({ ...f, id: this.flows.length + 1, family: fam(f.to), expect: v.open ? "open" : "closed", path: v.path,
      ...(v.open && { arriveAt: arriveAt ?? f.arriveAt }) });
  }
}

export function deriveFlows(policy: Policy, book: AddressBook): Flow[] {
  const list = new FlowList();
  if (policy.role === "gateway") gatewayFlows(policy, book, list);
  else if (policy.vpn) vpnHostFlows(policy, policy.vpn, book, list);
  else hostFlows(policy, book, list);
  return list.flows;
}

function hostFlows(p: Policy, book: AddressBook, list: FlowList): void {
  for (const f of FAMILIES) {
    const fw = book.firewall[f];
    const peer = book.peer[f];
    const v = `IPv${f}`;
    const fromPeer = (what: string, proto: Proto, port?: number, sport?: number) =>
      list.add({ what: `${what} (${v})`, from: "internet", bind: peer, to: fw, proto, port, sport, arriveAt: "host" }, inbound(p, proto, peer, port));
    for (const c of p.clients) {
      const e = edges(c.ports);
      for (const proto of PROTOS) {
        for (const port of e.inside) fromPeer(`peer → client ${c.name}, ${label(proto, port)}`, proto, port);
        for (const port of e.outside) fromPeer(`peer → next to client ${c.name}, ${label(proto, port)}`, proto, port);
      }
    }
    adminFlows(p, book, list, f, fw, "host");
    for (const [proto, port] of OTHER_PORTS) fromPeer(`peer → ${label(proto, port)}`, proto, port);
    for (const [proto, sport, port] of STATELESS) {
      const src = book.scanner[f];
      list.add({ what: `scanner from port ${sport} → ${label(proto, port)} (${v})`, from: "scanner", bind: src, to: fw, proto, port, sport, arriveAt: "host" },
        inbound(p, proto, src, port));
    }
    fromPeer("peer → ping", "icmp");
    outboundFlows(p, book, list, f, "host", fw);
  }
}

/** Admin services from each source, from a stranger, and from the sources' other-family addresses. */
export function adminFlows(p: Policy, book: AddressBook, list: FlowList, f: Family, fw: string, fwNode: string, lanSide?: string,
  verdict = (proto: Proto, src: string, port: number): Verdict => inbound(p, proto, src, port)): void {
  for (const s of p.admin) {
    const port = s.ports.first;
    for (const proto of PROTOS) {
      const sources = [...s.from.map(representative), ...[...book.owner.keys()].filter((x) => book.owner.get(x)!.startsWith("admin"))];
      for (const src of new Set(sources)) {
        if (fam(src) !== f) continue;
        const owner = book.owner.get(src);
        if (!owner) continue;
        const target = lanSide && owner !== "internet" ? lanSide : fw;
        list.add({ what: `${owner} ${src} → admin ${s.name}, ${label(proto, port)}`, from: owner, bind: src, to: target, proto, port, arriveAt: fwNode },
          verdict(proto, src, port));
      }
      const stranger = book.stranger[f];
      list.add({ what: `stranger → admin ${s.name}, ${label(proto, port)} (IPv${f})`, from: "internet", bind: stranger, to: fw, proto, port, arriveAt: fwNode },
        verdict(proto, stranger, port));
    }
  }
}

/** Where this machine opens connections to, for the outbound flows: peers, trackers, DNS, and what must stay closed. */
export function outboundTargets(p: Policy, book: AddressBook, f: Family): { what: string; dst: string; proto: Proto; port?: number }[] {
  const peer = book.peer[f];
  const stranger = book.stranger[f];
  const out: { what: string; dst: string; proto: Proto; port?: number }[] = [];
  const to = (what: string, dst: string, proto: Proto, port?: number) => out.push({ what, dst, proto, port });
  for (const proto of PROTOS) for (const port of [1023, 1024, 51413]) to("peer", peer, proto, port);
  for (const t of p.outbound.trackers) {
    const targets = t.to.length ? t.to.filter((n) => n.family === f).map(representative) : [peer];
    for (const r of t.ports) {
      for (const proto of PROTOS) {
        for (const dst of targets) to("tracker", dst, proto, r.first);
        to("another address", stranger, proto, r.first);
      }
    }
  }
  if (p.outbound.dns !== "any") {
    for (const server of p.outbound.dns.filter((d) => d.family === f)) {
      for (const proto of PROTOS) to("DNS server", formatAddress(server), proto, 53);
    }
  }
  for (const proto of PROTOS) to("another DNS server", stranger, proto, 53);
  to("peer (SMTP)", peer, "tcp", 25);
  to("peer", peer, "icmp");
  return out;
}

function outboundFlows(p: Policy, book: AddressBook, list: FlowList, f: Family, from: string, bind: string): void {
  for (const t of outboundTargets(p, book, f)) {
    list.add({ what: `${from} → ${t.what}, ${label(t.proto, t.port)} (IPv${f})`, from, bind, to: t.dst, proto: t.proto, port: t.port, arriveAt: "internet" },
      outbound(p, t.proto, t.dst, t.port));
  }
}

function gatewayFlows(p: Policy, book: AddressBook, list: FlowList): void {
  const wan = book.firewall;
  const gwIn = (proto: Proto, src: string, port?: number): [Verdict, string] => {
    const fwd = forwardFor(p, proto, port);
    if (fwd) return [{ open: true, path: fwd.path }, hostOf(fwd).node];
    return [inbound(p, proto, src, port), "gateway"];
  };
  const peer4 = book.peer[4];
  // The LAN machine a forward goes to (several forwards may name one).
  function hostOf(fwd: Policy["forward"][number]) { return book.lanHosts.find((h) => h.v4 === formatAddress(fwd.host))!; }
  // Names say where a port is forwarded, when it is, whichever range the probe came from.
  const toWan = (what: string, proto: Proto, port?: number) => {
    const [verdict, node] = gwIn(proto, peer4, port);
    const host = book.lanHosts.find((h) => h.node === node);
    const name = host ? `${label(proto, port)} (forward to ${host.v4})` : what;
    list.add({ what: `peer → WAN ${name}`, from: "internet", bind: peer4, to: wan[4], proto, port }, verdict, node);
  };
  p.forward.forEach((fwd) => {
    const host = hostOf(fwd);
    const e = edges(fwd.ports);
    for (const proto of PROTOS) {
      for (const port of e.inside) toWan(`${label(proto, port)} (forward to ${host.v4})`, proto, port);
      for (const port of e.outside) toWan(`${label(proto, port)} (next to the range forwarded to ${host.v4})`, proto, port);
      // IPv6 has no NAT: the host's own address, open only when the forward names it.
      const port = fwd.ports.first;
      const open = fwd.host6 !== undefined && fwd.protocols.includes(proto);
      list.add({ what: `peer → ${host.node} ${host.v6}, ${label(proto, port)} (IPv6)`, from: "internet", bind: book.peer[6], to: host.v6, proto, port },
        open ? { open, path: `${fwd.path}.host6` } : { open: false, path: "" }, host.node);
    }
    // Straight to the LAN address, without DNAT: must not be forwarded.
    list.add({ what: `peer → ${host.node} ${host.v4} directly, ${label("tcp", fwd.ports.first)}`, from: "internet", bind: peer4, to: host.v4, proto: "tcp", port: fwd.ports.first },
      { open: false, path: "" });
  });
  for (const [proto, port] of OTHER_PORTS) toWan(label(proto, port), proto, port);
  for (const [proto, sport, port] of STATELESS) {
    const [verdict, node] = gwIn(proto, book.scanner[4], port);
    list.add({ what: `scanner from port ${sport} → WAN ${label(proto, port)}`, from: "scanner", bind: book.scanner[4], to: wan[4], proto, port, sport }, verdict, node);
  }
  for (const c of p.clients) for (const proto of c.protocols) toWan(`client ${c.name}, ${label(proto, c.ports.first)}`, proto, c.ports.first);
  toWan("ping", "icmp");
  for (const f of FAMILIES) adminFlows(p, book, list, f, wan[f], "gateway", book.gatewayLan![f]);
  // LAN hosts reach the internet, masqueraded behind the WAN address.
  const lan = book.lanClient!;
  const gw = p.gateway!;
  list.add({ what: `LAN ${lan.v4} → peer, TCP 443 (IPv4, ${gw.masquerade ? "masqueraded" : "not masqueraded"})`, from: lan.node, bind: lan.v4, to: peer4, proto: "tcp", port: 443,
    seenFrom: gw.masquerade ? wan[4] : lan.v4 }, { open: true, path: "gateway.lan_network" }, "internet");
  list.add({ what: `LAN ${lan.v4} → peer, UDP 6881 (IPv4)`, from: lan.node, bind: lan.v4, to: peer4, proto: "udp", port: 6881,
    seenFrom: gw.masquerade ? wan[4] : lan.v4 }, { open: true, path: "gateway.lan_network" }, "internet");
  list.add({ what: `LAN ${lan.v6} → peer, TCP 443 (IPv6)`, from: lan.node, bind: lan.v6, to: book.peer[6], proto: "tcp", port: 443, seenFrom: lan.v6 },
    { open: true, path: gw.lanNetwork6 ? "gateway.lan_network6" : "gateway.lan" }, "internet");
  list.add({ what: `LAN ${lan.v4} → gateway, TCP 8080`, from: lan.node, bind: lan.v4, to: book.gatewayLan![4], proto: "tcp", port: 8080 },
    inbound(p, "tcp", lan.v4, 8080), "gateway");
  for (const f of FAMILIES) outboundFlows(p, book, list, f, "gateway", wan[f]);
}
