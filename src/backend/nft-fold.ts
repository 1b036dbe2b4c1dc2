// Many alike rules as one rule with a set (or a map): a gateway with 1,000
// forwards compiles to 4,000 rules that differ only in a host and a port
// range, and nft's cost to load and, above all, to list a table grows with
// its rules (10,000 forwards: 8 s for one `nft list table`, 0.3 s once they
// are four rules with sets). So the nft emitter writes such rules as
//   ip daddr . tcp dport { 10.0.0.2 . 20000-20001, … } accept
//   tcp dport { 20000-20001, … } dnat ip to tcp dport map { 20000-20001 : 10.0.0.2, … }
// The IR keeps one rule per intent (explain, the simulator and the iptables
// backend see them one by one); only the text nft loads changes.
//
// Why it is exact: rules with the same terminal verdict, one after the other,
// accept (or drop) a packet when any one of them matches, which is what one
// rule with the union of their sets does. Rules are folded across others only
// where the order cannot matter: the rules passed over have the same verdict,
// or no packet can match both (another protocol or address family). A map
// replaces rules whose target differs only when no key appears twice, so that
// the first match and the map lookup always agree. Concatenated sets must
// not hold overlapping elements (the kernel refuses them), so such a group is
// written rule by rule instead. Elements stay in policy order (nft keeps
// interval sets sorted itself).
import { formatPortRange, type PortRange } from "../net/port.js";
import { formatPrefix, prefixLast, type Prefix } from "../net/prefix.js";
import type { Match } from "../ir/match.js";
import type { Rule } from "../ir/ruleset.js";
import type { Verdict } from "../ir/verdict.js";
import { protocolOf } from "./shared.js";

/** Fewer alike rules than this stay one per intent: they read better, and `status` counts each. */
export const FOLD_AT = 16;

/** A match that can become a set: its header ("ip daddr", "tcp dport") and its values as intervals. */
interface Keyed { header: string; values: Interval[] }
/** Written only when a group folds: most rules are never folded, and writing an IPv6 prefix costs. */
interface Interval { first: Bound; last: Bound; prefix?: Prefix; range?: PortRange }
/** A number for ports and IPv4 (compared fast), a bigint for IPv6; one header's values are all of one kind. */
type Bound = number | bigint;

/** How the emitter writes the parts of a rule that folding does not touch. */
export interface RuleText {
  match: (m: Match) => string;
  verdict: (v: Verdict) => string;
  comment: (r: Rule) => string;
}

const FAMILY = { 4: "ip", 6: "ip6" } as const;

function keyed(m: Match): Keyed | undefined {
  switch (m.kind) {
    case "saddr":
    case "daddr":
      return { header: `${FAMILY[m.family]} ${m.kind}`, values: m.prefixes.map(prefixInterval) };
    case "sport":
    case "dport":
      // A named set's reference stays a reference: its elements are swapped in place (follow).
      if (m.set !== undefined) return undefined;
      return { header: `${m.protocol} ${m.kind}`, values: m.ranges.map(portInterval) };
    default:
      // Every other match is compared as written: rules differing there are never folded together.
      return undefined;
  }
}

const prefixInterval = (p: Prefix): Interval => (p.family === 4
  ? { first: Number(p.network), last: Number(prefixLast(p)), prefix: p }
  : { first: p.network, last: prefixLast(p), prefix: p });
const portInterval = (r: PortRange): Interval => ({ first: r.first, last: r.last, range: r });
const textOf = (v: Interval): string => (v.prefix ? formatPrefix(v.prefix) : formatPortRange(v.range!));
const keyOf = (v: Interval): string => `${v.first}-${v.last}`;

/** One rule taken apart: fixed text per position, or a keyed match. */
interface Parsed {
  rule: Rule;
  parts: (string | Keyed)[];
  /** Everything but the keyed values (and a DNAT target): rules with the same shape can fold. */
  shape: string;
  dnatTo?: string;
  /** The verdict as written, or "dnat ip"/"dnat ip6" when it rewrites to a target. */
  outcome: string;
  /** Protocol and family the rule is limited to, to prove two shapes disjoint. */
  protocol?: string;
  family?: 4 | 6;
}

const FOLDABLE: ReadonlySet<Verdict["kind"]> = new Set(["accept", "drop", "return", "masquerade", "dnat"]);

function parse(rule: Rule, matches: readonly Match[], text: RuleText): Parsed | undefined {
  if (!FOLDABLE.has(rule.verdict.kind)) return undefined;
  const parts = matches.map((m) => keyed(m) ?? text.match(m));
  const dnatTo = rule.verdict.kind === "dnat" ? text.verdict(rule.verdict) : undefined;
  const verdictShape = rule.verdict.kind === "dnat" ? `dnat ${FAMILY[rule.verdict.to.family]}` : text.verdict(rule.verdict);
  const shape = `${parts.map((p) => (typeof p === "string" ? p : `${p.header} ?`)).join(" ")} => ${verdictShape}`;
  const family = familyOf(matches, rule.verdict);
  return { rule, parts, shape, outcome: verdictShape, ...(dnatTo && { dnatTo }), ...(protocolOf(matches) && { protocol: protocolOf(matches) }), ...(family && { family }) };
}

function familyOf(matches: readonly Match[], v: Verdict): 4 | 6 | undefined {
  if (v.kind === "dnat") return v.to.family;
  for (const m of matches) if (m.kind === "family" || m.kind === "saddr" || m.kind === "daddr" || m.kind === "icmptype") return m.family;
  return undefined;
}

/** No packet can match both: both name a protocol, or an address family, and they differ. */
const disjoint = (a: Parsed, b: Parsed): boolean =>
  (a.protocol !== undefined && b.protocol !== undefined && a.protocol !== b.protocol)
  || (a.family !== undefined && b.family !== undefined && a.family !== b.family);

/** Whichever comes first, a packet's fate is the same. */
const sameOutcome = (a: Parsed, b: Parsed): boolean =>
  a.dnatTo === undefined && b.dnatTo === undefined && a.outcome === b.outcome;

interface Group { members: Parsed[]; first: number; last: number }

/**
 * The lines of a chain's rules: runs of rules that may be reordered among
 * themselves are grouped by shape, and a group of FOLD_AT or more alike rules
 * becomes one line. `single` writes one rule as usual.
 */
export function foldRules(rules: readonly Rule[], matchesOf: (r: Rule) => readonly Match[], text: RuleText, single: (r: Rule) => string): string[] {
  const out: string[] = [];
  let block: Group[] = [];
  let byShape = new Map<string, Group>();
  let blockRules: Rule[] = [];
  const flush = () => {
    out.push(...writeBlock(block, blockRules, text, single));
    block = []; byShape = new Map(); blockRules = [];
  };
  rules.forEach((rule, index) => {
    const p = parse(rule, matchesOf(rule), text);
    if (!p) { flush(); out.push(single(rule)); return; }
    const g = byShape.get(p.shape);
    // Joining g moves this rule up to g's first member, past every rule of another group placed since;
    // protocol, family and verdict are the same for a whole group (they are part of its shape).
    if (g && block.some((o) => o !== g && o.last > g.first && !disjoint(o.members[0]!, p) && !sameOutcome(o.members[0]!, p))) flush();
    const group = byShape.get(p.shape);
    if (group) { group.members.push(p); group.last = index; } else {
      const fresh = { members: [p], first: index, last: index };
      block.push(fresh); byShape.set(p.shape, fresh);
    }
    blockRules.push(rule);
  });
  flush();
  return out;
}

function writeBlock(block: Group[], rules: Rule[], text: RuleText, single: (r: Rule) => string): string[] {
  // A folded group is written where its first rule was; every other rule stays where it was.
  const lineAt = new Map<Rule, string>();
  const skip = new Set<Rule>();
  for (const g of block) {
    const line = g.members.length >= FOLD_AT ? foldGroup(g.members, text) : undefined;
    if (line === undefined) continue;
    lineAt.set(g.members[0]!.rule, line);
    for (const m of g.members.slice(1)) skip.add(m.rule);
  }
  return rules.flatMap((r) => (skip.has(r) ? [] : [lineAt.get(r) ?? single(r)]));
}

/** The one line for a group of alike rules, or undefined when they cannot be one. */
function foldGroup(members: Parsed[], text: RuleText): string | undefined {
  const head = members[0]!;
  const texts = (k: number) => (members.map((m) => (m.parts[k] as Keyed).values.map(keyOf).join(",")));
  const varying = head.parts.map((p, k) => (typeof p !== "string" && new Set(texts(k)).size > 1 ? k : -1)).filter((k) => k >= 0);
  const targets = new Set(members.map((m) => m.dnatTo));
  if (varying.length === 0 || varying.length > 2) return undefined;
  let verdict = text.verdict(head.rule.verdict);
  let replaced: string;
  if (targets.size > 1) {
    // Each target by its key: a map, when there is one key and no key value is shared.
    if (varying.length !== 1) return undefined;
    const k = varying[0]!;
    const entries = members.flatMap((m) => (m.parts[k] as Keyed).values.map((v) => ({ v, to: m.dnatTo!.replace(/^dnat (ip6?) to /, "") })));
    if (!disjointIntervals(entries.map((e) => e.v))) return undefined;
    const header = (head.parts[k] as Keyed).header;
    const family = /^dnat (ip6?) to /.exec(head.dnatTo!)?.[1];
    replaced = `${header} { ${entries.map((e) => textOf(e.v)).join(", ")} }`;
    verdict = `dnat ${family} to ${header} map { ${entries.map((e) => `${textOf(e.v)} : ${e.to}`).join(", ")} }`;
  } else if (varying.length === 1) {
    const k = varying[0]!;
    const values = unique(members.flatMap((m) => (m.parts[k] as Keyed).values));
    replaced = `${(head.parts[k] as Keyed).header} { ${values.map(textOf).join(", ")} }`;
  } else {
    const [a, b] = varying as [number, number];
    const pairs = uniquePairs(members.flatMap((m) => (m.parts[a] as Keyed).values.flatMap((x) => (m.parts[b] as Keyed).values.map((y) => [x, y] as const))));
    if (!concatenationFits(pairs)) return undefined;
    replaced = `${(head.parts[a] as Keyed).header} . ${(head.parts[b] as Keyed).header} { ${pairs.map(([x, y]) => `${textOf(x)} . ${textOf(y)}`).join(", ")} }`;
  }
  const parts = head.parts.flatMap((p, k) => {
    if (k === varying[0]) return [replaced];
    if (varying.includes(k)) return [];
    return [typeof p === "string" ? p : `${p.header} ${p.values.length === 1 ? textOf(p.values[0]!) : `{ ${p.values.map(textOf).join(", ")} }`}`];
  });
  return [...parts, "counter", verdict, text.comment(foldedRule(members))].join(" ");
}

/** The rule a folded line stands for in comments and counters: the first intent, how many, and the paths. */
function foldedRule(members: Parsed[]): Rule {
  const first = members[0]!.rule;
  const last = members[members.length - 1]!.rule;
  const path = first.origin.path === last.origin.path ? first.origin.path : `${first.origin.path}…${last.origin.path}`;
  // The paths first: a comment is cut at 128 bytes, and they say where in the policy the rules are.
  return { ...first, origin: { path: "", intent: `${members.length} alike rules in one set (${path}), the first: ${first.origin.intent}` } };
}

const cmp = (a: Interval, b: Interval): number => (a.first < b.first ? -1 : a.first > b.first ? 1 : a.last < b.last ? -1 : a.last > b.last ? 1 : 0);

function unique(values: Interval[]): Interval[] {
  const seen = new Map<string, Interval>();
  for (const v of values) seen.set(keyOf(v), v);
  return [...seen.values()];
}

function uniquePairs(pairs: (readonly [Interval, Interval])[]): (readonly [Interval, Interval])[] {
  const seen = new Map<string, readonly [Interval, Interval]>();
  for (const p of pairs) seen.set(`${keyOf(p[0])}/${keyOf(p[1])}`, p);
  return [...seen.values()];
}

/** No two intervals share a value. */
function disjointIntervals(values: Interval[]): boolean {
  const sorted = [...values].sort(cmp);
  return sorted.every((v, i) => i === 0 || sorted[i - 1]!.last < v.first);
}

/**
 * Elements of a concatenated set that the kernel takes: first fields equal or
 * apart, and within one first field the second fields apart (so no two
 * elements overlap in both).
 */
function concatenationFits(pairs: (readonly [Interval, Interval])[]): boolean {
  const byFirst = new Map<string, { first: Interval; seconds: Interval[] }>();
  for (const [x, y] of pairs) {
    const key = keyOf(x);
    const entry = byFirst.get(key) ?? { first: x, seconds: [] };
    entry.seconds.push(y);
    byFirst.set(key, entry);
  }
  const entries = [...byFirst.values()];
  return disjointIntervals(entries.map((e) => e.first)) && entries.every((e) => disjointIntervals(e.seconds));
}
