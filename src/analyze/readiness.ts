// BitTorrent readiness: the connections a working client needs, each judged
// by the simulator with the rule that decides it. A failing check names what
// breaks (peers cannot connect in, HTTPS trackers unreachable, …).
import { emitNftRule } from "../backend/nft.js";
import { formatAddress, parseAddress, type Address, type Family } from "../net/address.js";
import { prefixContains } from "../net/prefix.js";
import type { Ruleset } from "../ir/ruleset.js";
import type { AdminService, Policy } from "../policy/types.js";
import type { VpnSection } from "../policy/vpn.js";
import { vpnLan } from "../compile/vpn.js";
import { compileForSim, type CompiledRuleset } from "../sim/compiled.js";
import type { Environment } from "../sim/environment.js";
import type { Packet } from "../sim/packet.js";
import { simulate } from "../sim/simulate.js";
import { addressCells } from "./cells.js";
import { cutsFor, type Cuts } from "./relevant.js";
import type { ExposureSpace } from "./exposure.js";

export interface Check {
  /** A stable name for the checks scripts may look for ("vpn-kill-switch"). */
  id?: string;
  title: string;
  status: "pass" | "fail" | "skip";
  detail: string;
  /** The deciding rule, as nft text. */
  rule?: string;
}

const PEER: Record<Family, string> = { 4: "198.51.100.7", 6: "2001:db8:100::7" };
const TRACKER: Record<Family, string> = { 4: "203.0.113.80", 6: "2001:db8:80::80" };
const FAMILIES: Family[] = [4, 6];
const a = (s: string): Address => parseAddress(s)!;

class Judge {
  readonly sim: CompiledRuleset;
  private readonly cutters = new Map<string, (port: number) => Cuts>();
  constructor(ruleset: Ruleset, readonly env: Environment, readonly space: ExposureSpace, readonly inIf: string, readonly outIf: string) {
    this.sim = compileForSim(ruleset);
  }

  /** The cuts at a port for a family and protocol; one cutter per pair, shared by every admin service. */
  cutsAt(f: Family, proto: "tcp" | "udp", port: number): Cuts {
    const key = `${f}/${proto}`;
    let at = this.cutters.get(key);
    if (!at) { at = cutsFor({ family: f, protocol: proto, chains: [...this.sim.chains.values()] }, this.space.own ?? [this.space.local[4], this.space.local[6]]); this.cutters.set(key, at); }
    return at(port);
  }

  run(p: Packet) {
    return simulate(this.sim, p, this.env);
  }

  /** A new connection and its first reply must both pass. */
  roundTrip(title: string, p: Packet, check?: (r: ReturnType<Judge["run"]>) => string | undefined): Check {
    const there = this.run(p);
    const rule = there.deciding?.rule ? emitNftRule(there.deciding.rule) : there.deciding?.action;
    if (there.verdict !== "accept") return { title, status: "fail", detail: "the connection is dropped", ...(rule && { rule }) };
    const problem = check?.(there);
    if (problem) return { title, status: "fail", detail: problem, ...(rule && { rule }) };
    const replyFrom = there.translated?.daddr ?? p.daddr;
    const reply: Packet = { ...p, saddr: replyFrom, daddr: there.translated?.saddr ?? p.saddr, sport: p.dport, dport: p.sport, state: "established",
      iif: p.oif !== undefined ? (there.translated?.oif ?? p.oif) : undefined, oif: p.iif, ...(p.icmpType !== undefined && { icmpType: p.family === 4 ? 0 : 129 }) };
    if (reply.iif === undefined) delete reply.iif;
    if (reply.oif === undefined) delete reply.oif;
    const back = this.run(reply);
    if (back.verdict !== "accept") return { title, status: "fail", detail: "the answer is dropped", ...(back.deciding?.rule && { rule: emitNftRule(back.deciding.rule) }) };
    return { title, status: "pass", detail: "connection and answer pass", ...(rule && { rule }) };
  }

  inbound(f: Family, proto: "tcp" | "udp", from: string, port: number, iif = this.inIf): Packet {
    return { family: f, iif, saddr: a(from), daddr: this.space.local[f], protocol: proto, sport: 40000, dport: port, state: "new" };
  }

  outbound(f: Family, proto: "tcp" | "udp", to: string, port: number): Packet {
    return { family: f, oif: this.outIf, saddr: this.space.local[f], daddr: a(to), protocol: proto, sport: 40000, dport: port, state: "new" };
  }
}

export function readiness(policy: Policy, ruleset: Ruleset, env: Environment, space: ExposureSpace): Check[] {
  const gw = policy.gateway;
  const inIf = gw?.wan ?? policy.host?.interface ?? "eth0";
  const j = new Judge(ruleset, env, space, inIf, inIf);
  const checks: Check[] = [];
  const vpn = policy.vpn;
  for (const c of policy.clients) {
    for (const proto of ["tcp", "udp"] as const) {
      for (const f of FAMILIES) {
        const title = `peers reach client ${c.name} over ${proto.toUpperCase()} (IPv${f}${vpn ? `, through ${vpn.interface}` : ""})`;
        if (!c.protocols.includes(proto)) { checks.push({ title, status: "skip", detail: `the policy opens ${c.protocols.join(" and ")} only` }); continue; }
        if (vpn && f === 6 && !vpn.ipv6) { checks.push({ title, status: "skip", detail: `the tunnel ${vpn.interface} carries no IPv6 (vpn.ipv6)` }); continue; }
        checks.push(j.roundTrip(title, j.inbound(f, proto, PEER[f], c.ports.last, vpn?.interface)));
      }
    }
  }
  if (vpn) checks.push(...vpnChecks(j, policy, vpn));
  if (policy.clients.length > 0 || policy.role === "host") {
    for (const f of FAMILIES) for (const proto of ["tcp", "udp"] as const) {
      checks.push(j.roundTrip(`this machine reaches peers over ${proto.toUpperCase()} (IPv${f})`, j.outbound(f, proto, PEER[f], 51413)));
    }
    const trackerTo = (f: Family) => policy.outbound.trackers.flatMap((t) => t.to.filter((n) => n.family === f)).map((n) => formatAddress({ family: f, value: n.network + (n.length < (f === 4 ? 32 : 128) ? 1n : 0n) }))[0] ?? TRACKER[f];
    // The usual UDP tracker port when the policy lists it, else its first UDP tracker port.
    const udp = policy.outbound.trackers.filter((t) => t.protocols.includes("udp"));
    const udpTracker = udp.some((t) => t.ports.some((r) => r.first <= 6969 && 6969 <= r.last)) ? 6969 : udp[0]?.ports[0]?.first ?? 6969;
    for (const [what, proto, port] of [["HTTP", "tcp", 80], ["HTTPS", "tcp", 443], ["UDP", "udp", udpTracker]] as const) {
      for (const f of FAMILIES) checks.push(j.roundTrip(`${what} trackers answer (${proto.toUpperCase()} ${port}, IPv${f})`, j.outbound(f, proto, trackerTo(f), port)));
    }
    const servers = policy.outbound.dns === "any" || policy.outbound.any ? [PEER[4], PEER[6]] : policy.outbound.dns.map(formatAddress);
    if (servers.length === 0) checks.push({ title: "DNS resolves", status: "fail", detail: "no DNS server is allowed (outbound.dns is empty): trackers cannot be resolved" });
    for (const server of servers) {
      for (const proto of ["udp", "tcp"] as const) checks.push(j.roundTrip(`DNS over ${proto.toUpperCase()} to ${server}`, j.outbound(server.includes(":") ? 6 : 4, proto, server, 53)));
    }
  }
  for (const s of policy.admin) checks.push(...adminChecks(j, policy, s));
  if (gw) {
    for (const f of policy.forward) {
      for (const proto of f.protocols) {
        for (const port of [...new Set([f.ports.first, f.ports.last])]) {
          const host = formatAddress(f.host);
          checks.push(j.roundTrip(`peers reach ${host} through the WAN address (${proto.toUpperCase()} ${port})`, j.inbound(4, proto, PEER[4], port, gw.wan),
            (r) => (r.translated?.daddr && formatAddress(r.translated.daddr) === host ? undefined : `it reaches ${r.translated?.daddr ? formatAddress(r.translated.daddr) : "this machine"}, not ${host}`)));
          if (f.host6) {
            const p: Packet = { family: 6, iif: gw.wan, oif: gw.lan, saddr: a(PEER[6]), daddr: f.host6, protocol: proto, sport: 40000, dport: port, state: "new" };
            checks.push(j.roundTrip(`peers reach ${formatAddress(f.host6)} over IPv6 (${proto.toUpperCase()} ${port})`, p));
          }
        }
      }
    }
    const lanHost = formatAddress({ family: 4, value: gw.lanNetwork.network + 1n });
    const p: Packet = { family: 4, iif: gw.lan, oif: gw.wan, saddr: a(lanHost), daddr: a(PEER[4]), protocol: "tcp", sport: 40000, dport: 443, state: "new" };
    checks.push(j.roundTrip("LAN hosts reach the internet (TCP 443)", p));
  }
  return checks;
}

/** A check that passes when the packet is dropped (a leak that must not happen). */
function mustDrop(j: Judge, id: string, title: string, p: Packet): Check {
  const r = j.run(p);
  const rule = r.deciding?.rule ? emitNftRule(r.deciding.rule) : r.deciding?.action;
  return r.verdict === "accept"
    ? { id, title, status: "fail", detail: "it leaves outside the tunnel", ...(rule && { rule }) }
    : { id, title, status: "pass", detail: "dropped", ...(rule && { rule }) };
}

/**
 * The kill switch, judged with the confined user's own packets (a uid on
 * what this machine sends): through the tunnel they pass; outside it — new or
 * established, TCP, UDP, DNS to the LAN resolver, IPv6 — they are dropped;
 * the tunnel's endpoint stays reachable, and peers reach the client's port
 * only through the tunnel.
 */
function vpnChecks(j: Judge, policy: Policy, vpn: VpnSection): Check[] {
  const out: Check[] = [];
  const who = vpn.scope === "machine" ? "this machine" : `user ${vpn.users[0]!.name}`;
  const uid = vpn.scope === "machine" ? 0 : vpn.users[0]!.uid;
  const phys = j.outIf;
  const from = (f: Family, proto: "tcp" | "udp", to: string, port: number, oif: string, state: Packet["state"] = "new"): Packet =>
    ({ family: f, oif, saddr: j.space.local[f], daddr: a(to), protocol: proto, sport: 40000, dport: port, state, uid });
  for (const f of FAMILIES) {
    if (f === 6 && !vpn.ipv6) {
      out.push(mustDrop(j, "vpn-ipv6", `vpn: ${who}'s IPv6 is dropped outside the tunnel (${vpn.interface} carries none)`, from(6, "tcp", PEER[6], 51413, phys)));
      continue;
    }
    out.push({ ...j.roundTrip(`vpn: ${who} reaches peers through ${vpn.interface} (TCP, IPv${f})`, from(f, "tcp", PEER[f], 51413, vpn.interface)), id: "vpn-tunnel" });
    for (const proto of ["tcp", "udp"] as const) {
      out.push(mustDrop(j, "vpn-kill-switch", `vpn: ${who}'s new ${proto.toUpperCase()} connections outside the tunnel are dropped (via ${phys}, IPv${f})`, from(f, proto, PEER[f], 51413, phys)));
    }
    out.push(mustDrop(j, "vpn-kill-switch", `vpn: ${who}'s established connections outside the tunnel are cut too (via ${phys}, IPv${f})`, from(f, "tcp", PEER[f], 51413, phys, "established")));
  }
  // The LAN's resolver (the first DNS server the policy names, else the LAN's first address) must not get confined DNS.
  const lan4 = vpnLan(policy, vpn).find((n) => n.family === 4);
  const listed = vpnLan(policy, vpn).filter((n) => n.length === (n.family === 4 ? 32 : 128));
  const resolver = policy.outbound.dns !== "any" ? policy.outbound.dns.find((d) => d.family === 4) : undefined;
  const lanResolver = resolver ?? (lan4 ? { family: 4 as const, value: lan4.network + 1n } : undefined);
  if (lanResolver && !listed.some((n) => prefixContains(n, lanResolver))) {
    out.push(mustDrop(j, "vpn-dns", `vpn: ${who}'s DNS to ${formatAddress(lanResolver)} outside the tunnel is dropped (no DNS leak)`, from(4, "udp", formatAddress(lanResolver), 53, phys)));
  }
  for (const e of vpn.endpoints) {
    const p: Packet = { family: e.address.family, oif: phys, saddr: j.space.local[e.address.family], daddr: e.address, protocol: e.protocol, sport: 40000, dport: e.port, state: "new", uid: 0 };
    out.push({ ...j.roundTrip(`vpn: the tunnel's endpoint ${formatAddress(e.address)} ${e.protocol.toUpperCase()} ${e.port} is reachable via ${phys}`, p), id: "vpn-endpoint" });
  }
  for (const c of policy.clients) {
    const proto = c.protocols[0]!;
    out.push(mustDrop(j, "vpn-peer-port", `vpn: client ${c.name}'s port ${c.ports.first} is closed outside the tunnel (${proto.toUpperCase()} via ${phys})`, j.inbound(4, proto, PEER[4], c.ports.first, phys)));
  }
  return out;
}

/**
 * An admin service is reachable from each of its sources, and from no other
 * address: judged over every source cell that the rules able to match its
 * port cut (and the machine's own addresses), so each service costs the
 * rules at its port, not the whole ruleset.
 */
function adminChecks(j: Judge, policy: Policy, s: AdminService): Check[] {
  const iif = policy.gateway ? undefined : j.inIf;
  const out: Check[] = [];
  for (const proto of s.protocols) {
    const port = s.ports.first;
    for (const f of FAMILIES) {
      const cuts = j.cutsAt(f, proto, port);
      const cells = addressCells(f, [...cuts.saddr, ...s.from]);
      const wrong: string[] = [];
      for (const start of cells.starts) {
        const src = { family: f, value: start };
        // Loopback and this machine's own addresses never come from outside (the anti-spoofing rules drop them).
        if (prefixContains({ family: 4, network: 0x7f000000n, length: 8 }, src) || (f === 6 && start === 1n) || j.env.isLocal(src)) continue;
        const inside = s.from.some((n) => prefixContains(n, src));
        const via = iif ?? gatewaySide(policy, src);
        const r = j.run({ family: f, iif: via, saddr: src, daddr: j.space.local[f], protocol: proto, sport: 40000, dport: port, state: "new" });
        if ((r.verdict === "accept") !== inside) wrong.push(`${inside ? "closed to" : "open to"} ${formatAddress(src)}`);
      }
      out.push(adminCheck(s, f, proto, port, wrong));
    }
  }
  return out;
}

function adminCheck(s: AdminService, f: Family, proto: string, port: number, wrong: string[]): Check {
  const fromHere = s.from.filter((n) => n.family === f);
  const title = `admin ${s.name} (${proto.toUpperCase()} ${port}) is open to ${fromHere.length ? fromHere.map((n) => formatAddress({ family: f, value: n.network }) + (n.length < (f === 4 ? 32 : 128) ? `/${n.length}` : "")).join(", ") : "nobody"} over IPv${f}, and to no one else`;
  return wrong.length ? { title, status: "fail", detail: wrong.slice(0, 5).join("; ") } : { title, status: "pass", detail: "every source cell behaves as listed" };
}

/** On a gateway, sources inside the LAN arrive on the LAN side; all others on the WAN. */
function gatewaySide(policy: Policy, src: Address): string {
  const gw = policy.gateway!;
  const lan = [gw.lanNetwork, ...(gw.lanNetwork6 ? [gw.lanNetwork6] : [])];
  return lan.some((n) => prefixContains(n, src)) ? gw.lan : gw.wan;
}
