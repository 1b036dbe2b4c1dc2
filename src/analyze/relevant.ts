// The boundaries that matter for one destination-port cell: only the rules
// that can match a packet of that protocol and port (the simulator's own
// candidate lists) cut the address and source-port spaces there. A policy
// with N admin services therefore cuts each service's port at its own
// sources only, instead of every port at every source (N² cells).
import type { Family } from "../net/address.js";
import type { PortRange } from "../net/port.js";
import { builtinPrefix, hostPrefix, type Prefix } from "../net/prefix.js";
import type { Address } from "../net/address.js";
import type { InterfaceMatch, Match, MatchHandlers, Transport } from "../ir/match.js";
import type { Hook } from "../ir/ruleset.js";
import type { CompiledRuleset, SimChain, SimRule } from "../sim/compiled.js";
import type { Split } from "../sim/port-index.js";
import type { SimProtocol } from "../sim/packet.js";

export interface Cuts {
  saddr: Prefix[];
  daddr: Prefix[];
  sport: PortRange[];
  /** Identity of the rules that can match: cells with the same key are judged alike (see `cutsFor`). */
  key: string;
}

type Acc = { saddr: Prefix[]; daddr: Prefix[]; sport: PortRange[] };
const PACKET_TYPE_EDGES = ["224.0.0.0/4", "255.255.255.255/32", "ff00::/8"].map((t) => builtinPrefix(t));
type Cutter = (acc: Acc, family: Family, protocol: Transport | undefined) => void;

/**
 * How each match kind cuts the space a cell is judged over. Keyed by kind, so
 * a new kind is a compile error until it says what it cuts: a kind that cut
 * nothing while the verdict depended on it would make one cell's packets
 * differ, and the exposure would be wrong.
 */
const none: Cutter = () => {};
const cutters: MatchHandlers<Cutter> = {
  saddr: (m) => (acc, f) => { if (m.family === f) acc.saddr.push(...m.prefixes); },
  daddr: (m) => (acc, f) => { if (m.family === f) acc.daddr.push(...m.prefixes); },
  sport: (m) => (acc, _f, p) => { if (m.protocol === p) acc.sport.push(...m.ranges); },
  // Destination ports are cut globally (exposure.ts); interfaces are enumerated (space.interfaces plus "(other)").
  dport: () => none,
  iifname: () => none,
  oifname: () => none,
  // Own addresses are cut wherever an address is judged (exposure.ts), for fib … type local.
  localaddr: () => none,
  // Constant over the space the exposure reports: new connections (a first SYN, echo requests), rate limits not exceeded.
  family: () => none,
  protocol: () => none,
  ctstate: () => none,
  ctdnat: () => none,
  tcpflags: () => none,
  icmptype: () => none,
  limit: () => none,
  // Read from another tool's ruleset only: the exposure of such a ruleset branches on it instead of cutting.
  unknown: () => none,
  // The class changes where the destination enters or leaves the multicast groups or is the limited broadcast.
  pkttype: () => (acc, f) => { acc.daddr.push(...PACKET_TYPE_EDGES.filter((p) => p.family === f)); },
  exthdr: () => none,
  // The exposure is of packets without an owner (arriving ones, and what anyone here may send): a user's confinement is checked by readiness.
  skuid: () => none,
};

/** An interface test on packets whose interface is known (undefined: they have none); as the simulator judges it. */
const ifaceHolds = (m: InterfaceMatch, name: string | undefined): boolean => {
  if (name === undefined) return false;
  const is = m.wildcard ? name.startsWith(m.name) : name === m.name;
  return m.negate ? !is : is;
};

type Possible = (v: View) => boolean;
const always: Possible = () => true;

/**
 * Whether a match can hold for some packet of a view. Keyed by kind, so a new
 * kind is a compile error until it says; a wrong "never" would hide a rule
 * from the cuts while it still decides, so only tests fixed by the view say it.
 */
const possible: MatchHandlers<Possible> = {
  iifname: (m) => (v) => v.iif === undefined || ifaceHolds(m, v.iif.name),
  oifname: (m) => (v) => v.oif === undefined || ifaceHolds(m, v.oif.name),
  family: (m) => (v) => m.family === v.family,
  saddr: (m) => (v) => m.family === v.family,
  daddr: (m) => (v) => m.family === v.family,
  icmptype: (m) => (v) => m.family === v.family,
  // The candidate lists already hold only rules whose protocol and ports can match; the rest vary within a view.
  protocol: () => always,
  sport: () => always,
  dport: () => always,
  ctstate: () => always,
  ctdnat: () => always,
  tcpflags: () => always,
  localaddr: () => always,
  limit: () => always,
  unknown: () => always,
  pkttype: () => always,
  // The packets judged carry no extension header.
  exthdr: () => () => false,
  skuid: () => always,
};

/** What is fixed for the packets a slice of the exposure judges. */
export interface View {
  family: Family;
  protocol: SimProtocol;
  /** The chains those packets can pass. */
  chains: readonly SimChain[];
  /** When every packet has this input (or output) interface; name undefined: it has none. */
  iif?: { name: string | undefined };
  oif?: { name: string | undefined };
}

const ids = new WeakMap<object, number>();
let lastId = 0;
const idOf = (o: object): number => {
  let id = ids.get(o);
  if (id === undefined) { id = ++lastId; ids.set(o, id); }
  return id;
};

/**
 * The cuts for the packets of a view, per destination port. Only the rules
 * that can match there count: the chain's candidate list for the port, less
 * the rules the view rules out (another interface or family). Port cells
 * whose remaining rules are the same get the same key, and the same verdicts:
 * every other rule fails on every packet of the view. So a forward's port,
 * seen from the LAN side or over IPv6 without a host6, is judged like any
 * port without a forward, once.
 */
export function cutsFor(view: View, own: readonly Address[]): (dport: number) => Cuts {
  // Asked once per rule: a rule sits in the candidate list of every port cell its ports span.
  const decided = new Map<SimRule, boolean>();
  const canMatch = (r: SimRule) => {
    let ok = decided.get(r);
    if (ok === undefined) {
      // A translation to one family's address never takes the other family's packets (as the simulator has it).
      const v = r.rule.verdict;
      ok = !((v.kind === "dnat" || v.kind === "snat") && v.to.family !== view.family) && r.rule.matches.every((m) => (possible[m.kind] as (x: Match) => Possible)(m)(view));
      decided.set(r, ok);
    }
    return ok;
  };
  // Each distinct remaining rule list gets a small number, so a port cell's key is a few numbers, not every rule's.
  // A chain's candidates are its port-independent rules (one array, filtered once) and the few whose ports hold
  // the cell: only the latter are filtered per cell, so a cell costs its own rules, not the whole chain.
  const numbers = new Map<string, number>();
  const numberOf = (text: string) => {
    let n = numbers.get(text);
    if (n === undefined) { n = numbers.size; numbers.set(text, n); }
    return n;
  };
  // The chains a packet of the view can reach: the base chains, and those the kept rules jump or go to.
  const byName = new Map(view.chains.map((c) => [`${c.table}/${c.name}`, c]));
  /** A chain's rules that can match in a port cell, with what the walk needs of them worked out once. */
  type Kept = { rules: readonly SimRule[]; key: number; next: readonly SimChain[]; rewrites: readonly number[] };
  const kept = (chain: SimChain, rules: readonly SimRule[], key: number): Kept => {
    const next: SimChain[] = [];
    const rewrites: number[] = [];
    for (const r of rules) {
      const v = r.rule.verdict;
      const to = v.kind === "jump" || v.kind === "goto" ? byName.get(`${chain.table}/${v.chain}`) : undefined;
      if (to) next.push(to);
      // A DNAT or redirect to another port: the rules after it see that port.
      if ((v.kind === "dnat" || v.kind === "redirect") && v.port !== undefined) rewrites.push(v.port);
    }
    return { rules, key, next, rewrites };
  };
  const sharedKept = new Map<readonly SimRule[], Kept>();
  const ownKept = new Map<readonly SimRule[], Kept>();
  const keep = (chain: SimChain, { shared, own }: Split<SimRule>): Kept => {
    let base = sharedKept.get(shared);
    if (!base) {
      const rules = shared.filter(canMatch);
      base = kept(chain, rules, numberOf(rules.map(idOf).join(",")));
      sharedKept.set(shared, base);
    }
    if (own.length === 0) return base;
    let k = ownKept.get(own);
    if (!k) {
      const mine = own.filter(canMatch);
      k = mine.length === 0 ? base : kept(chain, [...base.rules, ...mine], numberOf(`${base.key}+${mine.map(idOf).join(",")}`));
      ownKept.set(own, k);
    }
    return k;
  };
  const bases = view.chains.filter((c) => c.base);
  const reached = (dport: number): { chain: SimChain; kept: Kept }[] => {
    const out: { chain: SimChain; kept: Kept }[] = [];
    const seen = new Set<SimChain>();
    const visit = (chain: SimChain) => {
      if (seen.has(chain)) return;
      seen.add(chain);
      const k = keep(chain, chain.rulesFor(view.protocol, dport));
      out.push({ chain, kept: k });
      for (const next of k.next) visit(next);
    };
    bases.forEach(visit);
    return out;
  };
  const memo = new Map<string, Cuts>();
  return (dport) => {
    // Only the chains this port's packets can reach count: a chain behind a jump on another port (a service's
    // chain of allowed sources, say) neither cuts nor changes the key of this one.
    const here = reached(dport);
    // Numbers joined once: a key grown with += is a rope of small strings, and the memo would keep one per
    // distinct port cell.
    const parts: number[] = [];
    for (const { chain, kept } of here) parts.push(idOf(chain), kept.key);
    // A DNAT or redirect to another port: the rules after it see that port, so they cut too.
    const ports = new Set<number>();
    for (const { kept: k } of here) for (const p of k.rewrites) if (p !== dport) ports.add(p);
    const after = [...ports].sort((a, b) => a - b).map((p) => ({ p, chains: reached(p) }));
    for (const { p, chains } of after) { parts.push(-p); for (const { chain, kept } of chains) parts.push(idOf(chain), kept.key); }
    const key = parts.join(",");
    let cuts = memo.get(key);
    if (!cuts) {
      const rules = [...here, ...after.flatMap((a) => a.chains)].flatMap(({ kept }) => kept.rules);
      cuts = cutsOf(rules, view, own, key);
      memo.set(key, cuts);
    }
    return cuts;
  };
}

function cutsOf(rules: readonly SimRule[], view: View, own: readonly Address[], key: string): Cuts {
  const acc: Acc = { saddr: [], daddr: [], sport: [] };
  const transport = view.protocol === "tcp" || view.protocol === "udp" ? view.protocol : undefined;
  for (const r of rules) for (const m of r.rule.matches) (cutters[m.kind] as (x: Match) => Cutter)(m)(acc, view.family, transport);
  for (const a of own) if (a.family === view.family) { const p = hostPrefix(a); acc.saddr.push(p); acc.daddr.push(p); }
  return { ...acc, key };
}

/** The hooks a direction's packets pass (a DNAT can turn an arriving packet into a forwarded one, or the reverse). */
export const ARRIVING: readonly Hook[] = ["prerouting", "input", "forward", "postrouting"];
export const LEAVING: readonly Hook[] = ["output", "postrouting"];

/** The base chains on the hooks and every chain they jump to: the only chains that can judge those packets. */
export function chainsOn(sim: CompiledRuleset, hooks: readonly Hook[]): SimChain[] {
  const seen = new Set<SimChain>();
  const visit = (chain: SimChain) => {
    if (seen.has(chain)) return;
    seen.add(chain);
    for (const r of chain.rules) {
      const target = r.verdict.kind === "jump" ? sim.chains.get(`${chain.table}/${r.verdict.chain}`) : undefined;
      if (target) visit(target);
    }
  };
  for (const hook of hooks) for (const chain of sim.hooks[hook]) visit(chain);
  return [...seen];
}

/** The cuts at one destination port over every chain, for any packet of the family and protocol (readiness checks). */
export function relevantCuts(sim: CompiledRuleset, family: Family, protocol: SimProtocol, dport: number, own: readonly Address[]): Cuts {
  return cutsFor({ family, protocol, chains: [...sim.chains.values()] }, own)(dport);
}
