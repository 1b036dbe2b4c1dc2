// The ruleset prepared for simulation: each rule becomes a list of small
// predicates over a packet context, cheapest first, so that most rules reject
// a packet after one comparison of two numbers.
import type { Address } from "../net/address.js";
import { prefixMask, type Prefix } from "../net/prefix.js";
import type { CtState, InterfaceMatch, LimitMatch, Match, MatchHandlers, PacketType, TcpFlag, UnknownMatch } from "../ir/match.js";
import type { BaseChainSpec, Chain, Hook, Rule, Ruleset } from "../ir/ruleset.js";
import type { Verdict } from "../ir/verdict.js";
import { userError } from "../errors.js";
import type { Environment } from "./environment.js";
import type { SimProtocol } from "./packet.js";
import { buildPortIndex, type PortScope, type Split } from "./port-index.js";

/** The packet as predicates read it; IPv4 addresses as plain numbers for speed. */
export interface Ctx {
  family: 4 | 6;
  iif: string | undefined;
  oif: string | undefined;
  protocol: SimProtocol;
  sport: number;
  dport: number;
  flags: number;
  icmpType: number;
  state: CtState;
  saddr: Address;
  daddr: Address;
  s4: number;
  d4: number;
  /** The connection's destination was rewritten by DNAT. */
  dnat: boolean;
  /** The sending socket's owner, for packets this machine sends. */
  uid: number | undefined;
  env: Environment;
  /** How this run takes each condition it cannot decide (sim/branches.ts); absent: it must meet none. */
  assume?: (m: UnknownMatch) => boolean;
  /** When set, how this run takes each rate limit (exceeded or not); absent: never exceeded. */
  assumeLimit?: (m: LimitMatch) => boolean;
}

type Pred = (c: Ctx) => boolean;

export interface SimRule { rule: Rule; index: number; test: Pred; verdict: Verdict }
export interface SimChain {
  name: string;
  table: string;
  /** The address family its table takes: an `ip` table never sees IPv6 packets, nor `ip6` IPv4 ones. */
  family?: 4 | 6;
  base?: BaseChainSpec;
  rules: SimRule[];
  /** The rules that can match this packet's protocol and destination port, in order. */
  candidates(c: Ctx): readonly SimRule[];
  /**
   * The same by protocol and destination port alone (the port is ignored
   * without one), split into the rules that hold for every port (one array per
   * protocol) and those whose port ranges hold dport.
   */
  rulesFor(protocol: SimProtocol, dport: number): Split<SimRule>;
}
export interface CompiledRuleset {
  ruleset: Ruleset;
  /** Base chains per hook, in priority order. */
  hooks: Record<Hook, SimChain[]>;
  /** Every chain by "table/name", for jumps. */
  chains: Map<string, SimChain>;
}

const FLAG_BITS: Record<TcpFlag, number> = { fin: 1, syn: 2, rst: 4, psh: 8, ack: 16, urg: 32 };
export const flagBits = (flags: readonly TcpFlag[]): number => flags.reduce((n, f) => n | FLAG_BITS[f], 0);

function prefixPred(field: "saddr" | "daddr", family: 4 | 6, prefixes: readonly Prefix[]): Pred {
  if (family === 4) {
    const nets = prefixes.map((p) => ({ mask: Number(prefixMask(4, p.length)) >>> 0, net: Number(p.network) >>> 0 }));
    const key = field === "saddr" ? "s4" : "d4";
    return (c) => c.family === 4 && nets.some((n) => ((c[key] & n.mask) >>> 0) === n.net);
  }
  const nets = prefixes.map((p) => ({ mask: prefixMask(6, p.length), net: p.network }));
  return (c) => c.family === 6 && nets.some((n) => (c[field].value & n.mask) === n.net);
}

const inRanges = (ranges: readonly { first: number; last: number }[]) =>
  ranges.length === 1
    ? ((f: number, l: number) => (p: number) => p >= f && p <= l)(ranges[0]!.first, ranges[0]!.last)
    : (p: number) => ranges.some((r) => p >= r.first && p <= r.last);

// Test order: the most selective cheap tests first, address tests last.
const COST: Record<Match["kind"], number> = {
  dport: 0, sport: 0, icmptype: 0, protocol: 1, family: 1, ctstate: 1, tcpflags: 1, iifname: 2, oifname: 2, ctdnat: 2,
  saddr: 3, daddr: 3, localaddr: 4, limit: 5, unknown: 6, pkttype: 3, exthdr: 0, skuid: 1,
};

const TRUE: Pred = () => true;

/** One function for the whole rule: fewer calls than a loop over predicates. */
function conjunction(preds: Pred[]): Pred {
  return preds.reduceRight<Pred>((rest, p) => (rest === TRUE ? p : (c) => p(c) && rest(c)), TRUE);
}

const pred: MatchHandlers<Pred> = {
  iifname: (m) => ifacePred(m, (c) => c.iif),
  oifname: (m) => ifacePred(m, (c) => c.oif),
  family: (m) => (c) => c.family === m.family,
  saddr: (m) => prefixPred("saddr", m.family, m.prefixes),
  daddr: (m) => prefixPred("daddr", m.family, m.prefixes),
  protocol: (m) => (c) => c.protocol === m.protocol,
  sport: (m) => { const ok = inRanges(m.ranges); return (c) => c.protocol === m.protocol && ok(c.sport); },
  dport: (m) => { const ok = inRanges(m.ranges); return (c) => c.protocol === m.protocol && ok(c.dport); },
  ctstate: (m) => (c) => m.states.includes(c.state),
  ctdnat: () => (c) => c.dnat,
  tcpflags: (m) => {
    const mask = flagBits(m.mask);
    const equal = flagBits(m.equal);
    return m.negate ? (c) => c.protocol === "tcp" && (c.flags & mask) !== equal : (c) => c.protocol === "tcp" && (c.flags & mask) === equal;
  },
  icmptype: (m) => {
    const proto = m.family === 4 ? "icmp" : "icmpv6";
    return (c) => c.protocol === proto && m.types.includes(c.icmpType);
  },
  localaddr: (m) => (m.field === "saddr" ? (c) => c.env.isLocal(c.saddr) : (c) => c.env.isLocal(c.daddr)),
  // Rate limits are assumed not exceeded: a verdict is about one packet, not a flood (unless a run asks, branches.ts).
  limit: (m) => (c) => (c.assumeLimit ? c.assumeLimit(m) : true),
  pkttype: (m) => (c) => m.types.includes(packetType(c.daddr)),
  // A packet here carries no IPv6 extension header.
  exthdr: () => () => false,
  // Only a packet this machine sends has an owner (explain's "uid N").
  skuid: (m) => (c) => c.uid === m.uid,
  // Decided by the run's assumptions (sim/branches.ts explores both ways); a run without them cannot decide it.
  unknown: (m) => (c) => {
    if (!c.assume) throw userError("SIM_UNKNOWN", `the verdict depends on a condition the simulator cannot decide: ${m.text}`);
    return c.assume(m);
  },
};

/** What a destination address makes a packet: multicast groups, the limited broadcast, or unicast. */
export function packetType(a: Address): PacketType {
  if (a.family === 4) {
    if (a.value === 0xffffffffn) return "broadcast";
    return (a.value >> 28n) === 0xen ? "multicast" : "unicast";
  }
  return (a.value >> 120n) === 0xffn ? "multicast" : "unicast";
}

/** A packet without the interface never matches, negated or not (nft: the expression breaks the rule). */
function ifacePred(m: InterfaceMatch, of: (c: Ctx) => string | undefined): Pred {
  const is = m.wildcard ? (name: string) => name.startsWith(m.name) : (name: string) => name === m.name;
  return m.negate ? (c) => { const n = of(c); return n !== undefined && !is(n); } : (c) => { const n = of(c); return n !== undefined && is(n); };
}

function compileRule(rule: Rule, index: number): SimRule {
  const preds: Pred[] = [...rule.matches]
    .sort((a, b) => COST[a.kind] - COST[b.kind])
    .map((m) => {
      const make = (pred as Record<string, ((x: Match) => Pred) | undefined>)[m.kind];
      // Never guess: a match the simulator cannot evaluate stops it with a clear message.
      if (!make) throw userError("SIM_UNSUPPORTED", `unsupported match ${m.kind} in rule ${index + 1} (${rule.origin.intent})`);
      return make(m);
    });
  // A translation to an address of one family (nft's `dnat ip to …`, iptables' per-family tables) only
  // ever takes packets of that family: an IPv6 packet passes an IPv4 DNAT by, as the kernel lets it.
  const v = rule.verdict;
  if ((v.kind === "dnat" || v.kind === "snat") && v.to) {
    const family = v.to.family;
    preds.push((c) => c.family === family);
  }
  return { rule, index, test: conjunction(preds), verdict: rule.verdict };
}

type Proto = "tcp" | "udp" | "other";
type Narrow = (proto: Proto) => PortScope;

/**
 * Which destination ports of a protocol each match can let through, judged by
 * the match alone ("other" is every protocol without ports). Keyed by match
 * kind, so that a new kind is a compile error here until it says how it
 * narrows the packet space.
 */
const narrow: MatchHandlers<Narrow> = {
  iifname: () => () => "any",
  oifname: () => () => "any",
  family: () => () => "any",
  saddr: () => () => "any",
  daddr: () => () => "any",
  protocol: (m) => (p) => ((p === "other" ? m.protocol !== "tcp" && m.protocol !== "udp" : m.protocol === p) ? "any" : "none"),
  dport: (m) => (p) => (m.protocol === p ? m.ranges : "none"),
  sport: (m) => (p) => (m.protocol === p ? "any" : "none"),
  ctstate: () => () => "any",
  ctdnat: () => () => "any",
  tcpflags: () => (p) => (p === "tcp" ? "any" : "none"),
  icmptype: () => (p) => (p === "other" ? "any" : "none"),
  localaddr: () => () => "any",
  limit: () => () => "any",
  unknown: () => () => "any",
  pkttype: () => () => "any",
  exthdr: () => () => "any",
  skuid: () => () => "any",
};

/** The ports of a protocol a rule can match: "none" if any match excludes them; the first port match's ranges narrow it (a superset of the exact set, which is enough for a candidate list). */
export function ruleScope(rule: Rule, proto: Proto): PortScope {
  let scope: PortScope = "any";
  for (const m of rule.matches) {
    const s = (narrow[m.kind] as (x: Match) => Narrow)(m)(proto);
    if (s === "none") return "none";
    if (s !== "any" && scope === "any") scope = s;
  }
  return scope;
}

/**
 * Partitions the destination-port space of each transport protocol at every
 * boundary the chain's rules mention, and lists the rules that can match in
 * each part, so a packet is tested only against rules that might apply.
 */
function candidateIndex(rules: SimRule[]): Pick<SimChain, "candidates" | "rulesFor"> {
  const tcp = buildPortIndex(rules, (r) => ruleScope(r.rule, "tcp"));
  const udp = buildPortIndex(rules, (r) => ruleScope(r.rule, "udp"));
  const other = rules.filter((r) => ruleScope(r.rule, "other") !== "none");
  const otherSplit: Split<SimRule> = { shared: other, own: [] };
  return {
    candidates: (c) => (c.protocol === "tcp" ? tcp.lookup(c.dport) : c.protocol === "udp" ? udp.lookup(c.dport) : other),
    rulesFor: (protocol, dport) => (protocol === "tcp" ? tcp.split(dport) : protocol === "udp" ? udp.split(dport) : otherSplit),
  };
}

// A frozen ruleset never changes, so what it compiles to is kept: audit's
// exposure, readiness and lint each simulate the same one.
const compiledOnce = new WeakMap<Ruleset, CompiledRuleset>();

export function compileForSim(ruleset: Ruleset): CompiledRuleset {
  if (!Object.isFrozen(ruleset)) return build(ruleset);
  let sim = compiledOnce.get(ruleset);
  if (!sim) { sim = build(ruleset); compiledOnce.set(ruleset, sim); }
  return sim;
}

function build(ruleset: Ruleset): CompiledRuleset {
  const hooks: Record<Hook, SimChain[]> = { prerouting: [], input: [], forward: [], output: [], postrouting: [] };
  const chains = new Map<string, SimChain>();
  for (const table of ruleset.tables) {
    const tableName = `${table.family} ${table.name}`;
    for (const chain of table.chains as Chain[]) {
      const rules = chain.rules.map(compileRule);
      const family = table.family === "ip" ? 4 : table.family === "ip6" ? 6 : undefined;
      const sim: SimChain = { name: chain.name, table: tableName, ...(family && { family }), ...(chain.base && { base: chain.base }), rules, ...candidateIndex(rules) };
      chains.set(`${tableName}/${chain.name}`, sim);
      if (chain.base) hooks[chain.base.hook].push(sim);
    }
  }
  for (const list of Object.values(hooks)) list.sort((a, b) => a.base!.priority - b.base!.priority);
  return { ruleset, hooks, chains };
}
