// The exposure report: every (protocol, port range, address set, interface)
// for which a new connection is accepted — inbound, forwarded to each LAN
// host, and outbound — computed exactly: the packet space is cut at every
// boundary the rules mention and the simulator judges one packet per cell.
import { formatAddress, type Address, type Family } from "../net/address.js";
import { formatPortRange } from "../net/port.js";
import { formatPrefix, type Prefix } from "../net/prefix.js";
import type { Match } from "../ir/match.js";
import type { Ruleset } from "../ir/ruleset.js";
import { compileForSim, type CompiledRuleset } from "../sim/compiled.js";
import type { Environment } from "../sim/environment.js";
import type { Packet, SimProtocol } from "../sim/packet.js";
import { simulate } from "../sim/simulate.js";
import { addressCells, portCells, rangeToPrefixes, runs, type Cells } from "./cells.js";

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
}

export const OTHER_INTERFACE = "(other)";

function collect(ruleset: Ruleset) {
  const matches: Match[] = ruleset.tables.flatMap((t) => t.chains.flatMap((c) => c.rules.flatMap((r) => r.matches)));
  const of = <K extends Match["kind"]>(k: K) => matches.filter((m) => m.kind === k) as Extract<Match, { kind: K }>[];
  return {
    saddr: of("saddr").flatMap((m) => m.prefixes),
    daddr: of("daddr").flatMap((m) => m.prefixes),
    dport: (p: string) => of("dport").filter((m) => m.protocol === p).flatMap((m) => m.ranges),
    sport: (p: string) => of("sport").filter((m) => m.protocol === p).flatMap((m) => m.ranges),
  };
}

interface Cell { accept: boolean; key: string; paths: string[]; intents: string[]; target?: string }

/** Judges every cell of one (direction, interface, family, protocol) slice. */
function slice(sim: CompiledRuleset, env: Environment, make: (addr: bigint, dport: number, sport: number) => Packet,
  addrs: Cells<bigint>, dports: Cells<number>, sports: Cells<number>): Cell[][][] {
  return dports.starts.map((dport) => addrs.starts.map((addr) => sports.starts.map((sport) => {
    const r = simulate(sim, make(addr, dport, sport), env);
    const rule = r.deciding?.rule;
    const target = r.path === "forward" && r.translated?.daddr ? formatAddress(r.translated.daddr) : undefined;
    const paths = rule ? [rule.origin.path] : [];
    const intents = rule ? [rule.origin.intent] : [];
    return { accept: r.verdict === "accept", key: `${target ?? ""}|${paths.join(",")}`, paths, intents, ...(target && { target }) };
  })));
}

export function exposure(ruleset: Ruleset, env: Environment, space: ExposureSpace): Exposure[] {
  const sim = compileForSim(ruleset);
  const found = collect(ruleset);
  const out: Exposure[] = [];
  const ifaces = [...space.interfaces, OTHER_INTERFACE];
  for (const family of [4, 6] as Family[]) {
    const local = space.local[family];
    for (const protocol of ["tcp", "udp", "icmp"] as const) {
      const simProto: SimProtocol = protocol === "icmp" ? (family === 4 ? "icmp" : "icmpv6") : protocol;
      const dports = protocol === "icmp" ? { starts: [0], end: 0 } : portCells(found.dport(protocol));
      const sports = protocol === "icmp" ? { starts: [0], end: 0 } : portCells(found.sport(protocol));
      const base: Base = (addr, dport, sport) => ({
        family, protocol: simProto, state: "new" as const,
        ...(protocol === "icmp" ? { icmpType: family === 4 ? 8 : 128 } : { dport, sport }),
        addr: { family, value: addr } as Address,
      });
      for (const iface of ifaces) {
        // Inbound, or forwarded after DNAT: addressed to this machine.
        const inSlice = slice(sim, env, (a, d, s) => { const b = base(a, d, s); return { ...b, iif: iface, saddr: b.addr, daddr: local }; },
          addressCells(family, found.saddr), dports, sports);
        out.push(...render(inSlice, "inbound", family, protocol, iface, addressCells(family, found.saddr), dports, sports));
        // Outbound from this machine.
        const outSlice = slice(sim, env, (a, d, s) => { const b = base(a, d, s); return { ...b, oif: iface, saddr: local, daddr: b.addr }; },
          addressCells(family, found.daddr), dports, sports);
        out.push(...render(outSlice, "outbound", family, protocol, iface, addressCells(family, found.daddr), dports, sports));
        if (space.forwards) out.push(...forwarded(sim, env, family, protocol, iface, found, space.routes, dports, sports, base));
      }
    }
  }
  const all = out.map((e) => (e.direction === "inbound" && e.target ? { ...e, direction: "forwarded" as const } : e));
  const other = (e: Exposure) => (e.interface === OTHER_INTERFACE ? 1 : 0);
  all.sort((a, b) => ORDER[a.direction] - ORDER[b.direction] || other(a) - other(b) || a.interface.localeCompare(b.interface));
  return mergeFamilies(all);
}

/** An address set as prefixes, or as "anywhere" with the fewer prefixes left out when that is shorter. */
function describeSet(family: Family, cells: Cells<bigint>, selected: (i: number) => boolean): { peers: string[]; except?: string[] } {
  const toPrefixes = (pick: (i: number) => boolean) => runs(cells, pick).flatMap(([a, b]) => rangeToPrefixes(family, a, b)).map(formatPrefix);
  const inside = toPrefixes(selected);
  const outside = toPrefixes((i) => !selected(i));
  if (outside.length === 0) return { peers: ["anywhere"] };
  return outside.length < inside.length ? { peers: ["anywhere"], except: outside } : { peers: inside };
}

type Base = (addr: bigint, dport: number, sport: number) => Omit<Packet, "saddr" | "daddr"> & { addr: Address };

/**
 * Connections through the machine to every destination cell the rules
 * mention; cells with the same openings are merged into one line whose
 * target is their prefixes.
 */
function forwarded(sim: CompiledRuleset, env: Environment, family: Family, protocol: Exposure["protocol"], iface: string,
  found: ReturnType<typeof collect>, routes: Prefix[], dports: Cells<number>, sports: Cells<number>, base: Base): Exposure[] {
  const dests = addressCells(family, [...found.daddr, ...routes]);
  const saddrs = addressCells(family, found.saddr);
  const byKey = new Map<string, { e: Exposure; cells: boolean[] }>();
  const skipped = dests.starts.map(() => false);
  dests.starts.forEach((d, di) => {
    const daddr: Address = { family, value: d };
    const oif = env.route(daddr);
    if (env.isLocal(daddr) || oif === undefined || oif === iface) { skipped[di] = true; return; }
    const cells = slice(sim, env, (a, dp, sp) => { const b = base(a, dp, sp); return { ...b, iif: iface, oif, saddr: b.addr, daddr }; }, saddrs, dports, sports);
    for (const e of render(cells, "forwarded", family, protocol, iface, saddrs, dports, sports)) {
      const key = JSON.stringify({ ...e, target: undefined });
      const entry = byKey.get(key) ?? { e, cells: dests.starts.map(() => false) };
      entry.cells[di] = true;
      byKey.set(key, entry);
    }
  });
  return [...byKey.values()].map(({ e, cells }) => {
    // Destinations that are this machine's own or on the arriving side were never asked: leave them out of "except".
    const d = describeSet(family, dests, (i) => cells[i]! || skipped[i]!);
    return { ...e, target: d.except ? `anywhere except ${d.except.join(", ")}` : d.peers.join(", ") };
  });
}

function render(cells: Cell[][][], direction: ExposureDirection, family: Family, protocol: Exposure["protocol"], iface: string,
  addrs: Cells<bigint>, dports: Cells<number>, sports: Cells<number>): Exposure[] {
  // For each port cell: accepted address cells grouped by (target, rule, source ports).
  const rows = cells.map((byAddr) => {
    const groups = new Map<string, { addrs: boolean[]; cell: Cell; sports: string }>();
    byAddr.forEach((bySport, ai) => {
      const accepted = bySport.map((c) => c.accept);
      if (!accepted.some(Boolean)) return;
      const first = bySport.find((c) => c.accept)!;
      const sportText = accepted.every(Boolean) ? "" : runs(sports, (i) => accepted[i]!).map(([a, b]) => formatPortRange({ first: a, last: b })).join(",");
      const key = `${first.key}|${sportText}`;
      const g = groups.get(key) ?? { addrs: addrs.starts.map(() => false), cell: first, sports: sportText };
      g.addrs[ai] = true;
      groups.set(key, g);
    });
    return groups;
  });
  const signature = (g: Map<string, { addrs: boolean[] }>) => [...g].map(([k, v]) => `${k}:${v.addrs.map(Number).join("")}`).sort().join(";");
  const out: Exposure[] = [];
  for (let i = 0; i < rows.length; ) {
    let j = i;
    while (j + 1 < rows.length && signature(rows[j + 1]!) === signature(rows[i]!)) j++;
    const ports = protocol === "icmp" ? "echo-request" : formatPortRange({ first: dports.starts[i]!, last: j + 1 < dports.starts.length ? dports.starts[j + 1]! - 1 : dports.end });
    for (const g of rows[i]!.values()) {
      const set = describeSet(family, addrs, (k) => g.addrs[k]!);
      out.push({ direction, family, families: `IPv${family}`, protocol, ports, ...set, ...(g.sports && { sourcePorts: g.sports }), interface: iface,
        ...(g.cell.target && { target: g.cell.target }), paths: g.cell.paths, intents: g.cell.intents });
    }
    i = j + 1;
  }
  return out;
}

/** An opening from anywhere on both families is one line. */
function mergeFamilies(list: Exposure[]): Exposure[] {
  const key = (e: Exposure) => JSON.stringify({ ...e, family: 0, families: "", target: e.target && "t" });
  const out: Exposure[] = [];
  const taken = new Set<number>();
  list.forEach((e, i) => {
    if (taken.has(i)) return;
    const twin = e.family === 4 && e.peers[0] === "anywhere" && !e.except && !e.target
      ? list.findIndex((o, j) => j > i && !taken.has(j) && o.family === 6 && key(o) === key(e)) : -1;
    if (twin >= 0) taken.add(twin);
    out.push({ ...e, families: twin >= 0 ? "IPv4+IPv6" : `IPv${e.family}` });
  });
  return out;
}
