// The exposure report: every (protocol, port range, address set, interface)
// for which a new connection is accepted — inbound, forwarded to each LAN
// host, and outbound — computed exactly: the packet space is cut at every
// boundary the rules mention and the simulator judges one packet per cell.
import { addressKey, formatAddress, type Address, type Family } from "../net/address.js";
import { prefixContains, type Prefix } from "../net/prefix.js";
import type { PortRange } from "../net/port.js";
import type { Ruleset } from "../ir/ruleset.js";
import { compileForSim, type CompiledRuleset } from "../sim/compiled.js";
import type { Environment } from "../sim/environment.js";
import type { Packet, SimProtocol } from "../sim/packet.js";
import { simulateAll } from "../sim/branches.js";
import { simulate } from "../sim/simulate.js";
import { addressCells, portCells, type Cells } from "./cells.js";
import { ARRIVING, chainsOn, cutsFor, LEAVING, type Cuts } from "./relevant.js";
import { groupCells, mergePorts, setDescriber, type Describe, type Group, type Judged } from "./rows.js";

const ORDER: Record<ExposureDirection, number> = { inbound: 0, forwarded: 1, outbound: 2 };

export type ExposureDirection = "inbound" | "forwarded" | "outbound";

export interface Exposure {
  direction: ExposureDirection;
  family: Family;
  /** "IPv4", "IPv6", or "IPv4+IPv6" when one line stands for both. */
  families: string;
  protocol: "tcp" | "udp" | "icmp";
  /** "6881", "6890-6899" or, for ICMP, "echo-request". */
  ports: string;
  /** Who may open it (inbound, forwarded) or where to (outbound): ["anywhere"] or prefixes. */
  peers: string[];
  /** With peers ["anywhere"]: the prefixes left out. */
  except?: string[];
  /** When only some source ports are let in: those ranges. */
  sourcePorts?: string;
  interface: string;
  /** Forwarded: where the connection goes (a LAN host after DNAT, or destination prefixes). */
  target?: string;
  /** Policy paths of the rules that accept it. */
  paths: string[];
  intents: string[];
  /** Open only as far as these conditions allow (a rate per source, a mark): rulesets read from other tools. */
  depends?: string[];
}

export interface ExposureSpace {
  /** Interfaces packets arrive or leave by; "(other)" stands for every interface not named. */
  interfaces: string[];
  /** An address of this machine per family, as inbound packets' destination. */
  local: Record<Family, Address>;
  /** Whether the machine forwards (a gateway): then connections through it are judged too. */
  forwards: boolean;
  /** Networks where routing changes (a gateway's LAN): destinations are cut there too. */
  routes: Prefix[];
  /** Every address the environment takes as this machine's own: addresses are cut there too (fib … type local). */
  own?: Address[];
}

export const OTHER_INTERFACE = "(other)";

/** One (direction, interface, family, protocol) slice: how to build its packets and judge them. */
interface Slice {
  sim: CompiledRuleset;
  /** The ruleset tests what no packet decides: each packet is run every way those tests can fall. */
  branches: boolean;
  env: Environment;
  family: Family;
  protocol: Exposure["protocol"];
  simProto: SimProtocol;
  iface: string;
  local: Address;
  describe: Describe;
  where: (value: bigint) => { local: boolean; oif: string | undefined };
}

/** Every dropped cell is alike to the grouping; accepted ones are shared per (deciding rule, target). */
const DROPPED: Judged = { accept: false, key: "", paths: [], intents: [] };
const NO_RULE = {};
const acceptedBy = new WeakMap<object, Map<string, Judged>>();

function judge(s: Slice, p: Packet): Judged {
  let depends: string[] | undefined;
  let r;
  if (s.branches) {
    const all = simulateAll(s.sim, p, s.env);
    if (all.verdict !== "accept" && all.verdict !== "depends") return DROPPED;
    // Reported by the first way it is accepted, with every condition met on the way. A verdict that
    // depends only between ways of not getting in (drop or reject, as firewalld's rules have it) is no opening.
    const accepted = all.branches.find((b) => b.result.verdict === "accept");
    if (!accepted) return DROPPED;
    r = accepted.result;
    if (all.verdict === "depends") depends = all.conditions.map((c) => `${c.condition.text}${c.rule ? ` [${c.rule.origin.path}]` : ""}`);
  } else {
    r = simulate(s.sim, p, s.env);
  }
  if (r.verdict !== "accept") return DROPPED;
  const rule = r.deciding?.rule;
  const target = r.path === "forward" && r.translated?.daddr ? formatAddress(r.translated.daddr) : undefined;
  let byTarget = acceptedBy.get(rule ?? NO_RULE);
  if (!byTarget) { byTarget = new Map(); acceptedBy.set(rule ?? NO_RULE, byTarget); }
  const dependsKey = depends ? `|${depends.join("\u0001")}` : "";
  let j = byTarget.get(`${target ?? ""}${dependsKey}`);
  if (!j) {
    const paths = rule ? [rule.origin.path] : [];
    const intents = rule ? [rule.origin.intent] : [];
    j = { accept: true, key: `${target ?? ""}|${paths.join(",")}${dependsKey}`, paths, intents, ...(target && { target }), ...(depends && { depends }) };
    byTarget.set(`${target ?? ""}${dependsKey}`, j);
  }
  return j;
}

type Make = (peer: bigint, sport: number) => Packet;

/** Judges every (peer address cell × source-port cell) of one port cell and groups the accepted ones. */
function judgeCells(s: Slice, addrs: Cells<bigint>, sports: Cells<number>, make: Make): Group[] {
  const judged = addrs.starts.map((a) => sports.starts.map((sp) => judge(s, make(a, sp))));
  return groupCells(judged, s.family, addrs, sports, s.describe);
}

/** A new connection's first packet, every field present (one object shape for the simulator's hot path; absent is undefined). */
function packet(s: Slice, dport: number, sport: number, iif: string | undefined, oif: string | undefined, saddr: Address, daddr: Address): Packet {
  const icmp = s.protocol === "icmp";
  return {
    family: s.family, protocol: s.simProto, state: "new", iif, oif, saddr, daddr,
    sport: icmp ? undefined : sport, dport: icmp ? undefined : dport, icmpType: icmp ? (s.family === 4 ? 8 : 128) : undefined,
  };
}

const addr = (family: Family, value: bigint): Address => ({ family, value });

/** Where routing sends each destination, asked once per address (the same cell starts recur in every port cell). */
function routeCache(env: Environment, family: Family): Slice["where"] {
  const memo = new Map<bigint, { local: boolean; oif: string | undefined }>();
  return (value) => {
    const key = addressKey(value);
    let w = memo.get(key);
    if (!w) { const a = addr(family, value); w = { local: env.isLocal(a), oif: env.route(a) }; memo.set(key, w); }
    return w;
  };
}

export function exposure(ruleset: Ruleset, env: Environment, space: ExposureSpace): Exposure[] {
  const sim = compileForSim(ruleset);
  const branches = ruleset.tables.some((t) => t.chains.some((c) => c.rules.some((r) => r.matches.some((m) => m.kind === "unknown"))));
  const dportsOf = globalPortCuts(ruleset);
  const out: Exposure[] = [];
  const own = space.own ?? [space.local[4], space.local[6]];
  const arriving = chainsOn(sim, ARRIVING);
  const leaving = chainsOn(sim, LEAVING);
  const describe = setDescriber();
  for (const family of [4, 6] as Family[]) {
    const where = routeCache(env, family);
    for (const protocol of ["tcp", "udp", "icmp"] as const) {
      const simProto: SimProtocol = protocol === "icmp" ? (family === 4 ? "icmp" : "icmpv6") : protocol;
      const dports = protocol === "icmp" ? { starts: [0], end: 0 } : dportsOf(protocol);
      for (const iface of [...space.interfaces, OTHER_INTERFACE]) {
        // Arriving (and forwarded) packets come in by iface and pass other chains than the ones this machine sends by it.
        const cutsIn = dports.starts.map(cutsFor({ family, protocol: simProto, chains: arriving, iif: { name: iface } }, own));
        const cutsOut = dports.starts.map(cutsFor({ family, protocol: simProto, chains: leaving, iif: { name: undefined }, oif: { name: iface } }, own));
        const s: Slice = { sim, branches, env, family, protocol, simProto, iface, local: space.local[family], describe, where };
        out.push(...lines(s, "inbound", dports, cutsIn, (c, d) => inboundRow(s, c, d)));
        out.push(...lines(s, "outbound", dports, cutsOut, (c, d) => outboundRow(s, c, d)));
        if (space.forwards) out.push(...lines(s, "forwarded", dports, cutsIn, (c, d) => forwardedRow(s, c, d, space.routes)));
      }
    }
  }
  // The entries are this call's own (lines() makes each): set in place, not copied (at 10,000 forwards, copies of
  // 90,000 entries were what the report's peak memory was made of).
  for (const e of out) if (e.direction === "inbound" && e.target) e.direction = "forwarded";
  const other = (e: Exposure) => (e.interface === OTHER_INTERFACE ? 1 : 0);
  out.sort((a, b) => ORDER[a.direction] - ORDER[b.direction] || other(a) - other(b) || a.interface.localeCompare(b.interface));
  return mergeFamilies(out);
}

/** Destination-port cells of a protocol: cut at every port range any rule mentions. */
function globalPortCuts(ruleset: Ruleset): (protocol: "tcp" | "udp") => Cells<number> {
  const ranges = { tcp: [] as PortRange[], udp: [] as PortRange[] };
  for (const t of ruleset.tables) for (const c of t.chains) for (const r of c.rules) {
    for (const m of r.matches) if (m.kind === "dport") ranges[m.protocol].push(...m.ranges);
  }
  return (protocol) => portCells(ranges[protocol]);
}

/** Rows per port cell (reused across cells judged alike), merged over adjacent ports into report lines. */
function lines(s: Slice, direction: ExposureDirection, dports: Cells<number>, cuts: Cuts[], row: (c: Cuts, dport: number) => Group[]): Exposure[] {
  const memo = new Map<string, Group[]>();
  const rows = dports.starts.map((d, i) => {
    const c = cuts[i]!;
    let r = memo.get(c.key);
    if (!r) { r = row(c, d); memo.set(c.key, r); }
    return r;
  });
  return mergePorts(dports, rows, s.protocol === "icmp").flatMap(({ ports, groups }) => groups.map((g) => ({
    direction, family: s.family, families: `IPv${s.family}`, protocol: s.protocol, ports, peers: g.peers, ...(g.except && { except: g.except }),
    ...(g.sourcePorts && { sourcePorts: g.sourcePorts }), interface: s.iface, ...(g.target && { target: g.target }), paths: g.paths, intents: g.intents,
    ...(g.depends && { depends: g.depends }),
  })));
}

/** Inbound, or forwarded after DNAT: addressed to this machine. */
function inboundRow(s: Slice, c: Cuts, dport: number): Group[] {
  return judgeCells(s, addressCells(s.family, c.saddr), portCells(c.sport), (a, sp) =>
    packet(s, dport, sp, s.iface, undefined, addr(s.family, a), s.local));
}

/** Outbound from this machine. */
function outboundRow(s: Slice, c: Cuts, dport: number): Group[] {
  return judgeCells(s, addressCells(s.family, c.daddr), portCells(c.sport), (a, sp) =>
    packet(s, dport, sp, undefined, s.iface, s.local, addr(s.family, a)));
}

/**
 * Connections through the machine to every destination cell; destinations
 * with the same openings are merged into one line whose target is their
 * prefixes.
 */
function forwardedRow(s: Slice, c: Cuts, dport: number, routes: Prefix[]): Group[] {
  const dests = addressCells(s.family, [...c.daddr, ...routes]);
  const saddrs = addressCells(s.family, c.saddr);
  const sports = portCells(c.sport);
  const byKey = new Map<string, { g: Group; cells: boolean[] }>();
  const skipped = dests.starts.map(() => false);
  const columns = new Map<string, Group[]>();
  const inside = c.daddr.filter((p) => p.family === s.family);
  dests.starts.forEach((d, di) => {
    const { local, oif } = s.where(d);
    if (local || oif === undefined || oif === s.iface) { skipped[di] = true; return; }
    const daddr = addr(s.family, d);
    // A destination reaches the rules only through the prefixes they test (own addresses included) and its route:
    // destinations alike in both are judged alike, so each such column is judged once.
    const sig = `${oif}|${inside.map((p) => (prefixContains(p, daddr) ? 1 : 0)).join("")}`;
    let groups = columns.get(sig);
    if (!groups) {
      groups = judgeCells(s, saddrs, sports, (a, sp) => packet(s, dport, sp, s.iface, oif, addr(s.family, a), daddr));
      columns.set(sig, groups);
    }
    for (const g of groups) {
      const key = groupKey(g);
      const entry = byKey.get(key) ?? { g, cells: dests.starts.map(() => false) };
      entry.cells[di] = true;
      byKey.set(key, entry);
    }
  });
  return [...byKey.values()].map(({ g, cells }) => {
    // Destinations that are this machine's own or on the arriving side were never asked: leave them out of "except".
    const d = s.describe(s.family, dests, (i) => cells[i]! || skipped[i]!);
    return { ...g, target: d.except ? `anywhere except ${d.except.join(", ")}` : d.peers.join(", ") };
  });
}

/** Everything a group says, as one string (the fields are plain strings; "\u0000" never occurs in them). */
const groupKey = (g: Group): string =>
  [g.peers.join(","), g.except?.join(",") ?? "-", g.sourcePorts ?? "-", g.target ?? "-", g.paths.join("\u0001"), g.intents.join("\u0001"), g.depends?.join("\u0001") ?? "-"].join("\u0000");

/** An opening from anywhere on both families is one line. */
function mergeFamilies(list: Exposure[]): Exposure[] {
  const key = (e: Exposure) => JSON.stringify({ ...e, family: 0, families: "", target: e.target && "t" });
  // Only a line open to anyone, to no target, has a twin: keys are made for those alone.
  const mergeable = (e: Exposure) => e.peers[0] === "anywhere" && !e.except && !e.target;
  // IPv6 lines by key, in order, so that each IPv4 line finds its first unused twin without a scan.
  const twins = new Map<string, number[]>();
  list.forEach((e, i) => {
    if (e.family !== 6 || !mergeable(e)) return;
    const k = key(e);
    const queue = twins.get(k);
    if (queue) queue.push(i); else twins.set(k, [i]);
  });
  const taken = new Set<number>();
  const out: Exposure[] = [];
  list.forEach((e, i) => {
    if (taken.has(i)) return;
    let twin = -1;
    if (e.family === 4 && mergeable(e)) {
      const queue = twins.get(key(e));
      while (queue?.length && (queue[0]! <= i || taken.has(queue[0]!))) queue.shift();
      twin = queue?.shift() ?? -1;
    }
    if (twin >= 0) taken.add(twin);
    e.families = twin >= 0 ? "IPv4+IPv6" : `IPv${e.family}`;
    out.push(e);
  });
  return out;
}
