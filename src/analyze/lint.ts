// Lint: rules that can never match because an earlier rule takes every packet
// they would; openings on one address family but not the other; accepts by
// source port alone, which open every destination port to anyone who sends
// from that port (the classic stateless "return traffic" rule).
import { emitNftRule } from "../backend/nft.js";
import type { Match } from "../ir/match.js";
import type { Rule, Ruleset } from "../ir/ruleset.js";
import { prefixCovers } from "../net/prefix.js";
import { buildPortIndex, type PortScope } from "../sim/port-index.js";
import type { Exposure } from "./exposure.js";

export interface Finding {
  kind: "shadowed" | "family-asymmetry" | "stateless-accept";
  message: string;
  rule?: string;
}

/** Whether every packet that satisfies `m` is guaranteed by one of `other`'s matches to satisfy `general`. */
function implied(general: Match, specific: readonly Match[]): boolean {
  return specific.some((m) => {
    switch (general.kind) {
      case "saddr": case "daddr":
        return m.kind === general.kind && m.family === general.family && m.prefixes.every((p) => general.prefixes.some((g) => prefixCovers(g, p)));
      case "dport": case "sport":
        return m.kind === general.kind && m.protocol === general.protocol && m.ranges.every((r) => general.ranges.some((g) => g.first <= r.first && r.last <= g.last));
      case "protocol":
        return (m.kind === "protocol" && m.protocol === general.protocol) || ((m.kind === "dport" || m.kind === "sport") && m.protocol === general.protocol)
          || (m.kind === "tcpflags" && general.protocol === "tcp") || (m.kind === "icmptype" && general.protocol === (m.family === 4 ? "icmp" : "icmpv6"));
      case "family":
        return (m.kind === "family" || m.kind === "saddr" || m.kind === "daddr" || m.kind === "icmptype") && m.family === general.family;
      case "ctstate":
        return m.kind === "ctstate" && m.states.every((st) => general.states.includes(st));
      case "icmptype":
        return m.kind === "icmptype" && m.family === general.family && m.types.every((t) => general.types.includes(t));
      // An unknown condition implies only itself: the same test, written the same way.
      case "iifname": case "oifname": case "ctdnat": case "tcpflags": case "localaddr": case "limit": case "unknown": case "pkttype": case "exthdr": case "skuid":
        return same(m, general);
      default:
        // A new match kind is a compile error here: guessing would call a reachable rule shadowed.
        return unhandled(general);
    }
  });
}

function unhandled(m: never): never {
  throw new Error(`lint: unhandled match kind ${(m as { kind: string }).kind}`);
}

/** The same match, field by field (matches are plain data: strings, numbers, booleans, bigints and arrays of them); no JSON per call. */
const same = (a: unknown, b: unknown): boolean => {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
};

function covers(earlier: Rule, later: Rule): boolean {
  if (earlier.verdict.kind !== "accept" && earlier.verdict.kind !== "drop") return false;
  // A rate limit lets some packets through to later rules.
  if (earlier.matches.some((m) => m.kind === "limit")) return false;
  return earlier.matches.every((m) => implied(m, later.matches));
}

/**
 * The first earlier rule that covers a rule, or -1. A rule with a port match
 * can only be covered by a rule without one or by one whose ports include its
 * first port, so only those are tried (the simulator's port index), instead of
 * every earlier rule: linear for the rules a policy compiles to.
 */
export function shadowIndex(rules: readonly Rule[]): (rule: Rule, i: number) => number {
  const items = rules.map((rule, index) => ({ rule, index }));
  const dports = (r: Rule) => r.matches.filter((m) => m.kind === "dport");
  const index = (["tcp", "udp"] as const).map((proto) => buildPortIndex(items, ({ rule }): PortScope => {
    const d = dports(rule)[0];
    return d === undefined ? "any" : d.protocol === proto ? d.ranges : "none";
  }));
  const portFree = items.filter(({ rule }) => dports(rule).length === 0);
  return (rule, i) => {
    const d = dports(rule);
    const tried = d.length === 0 ? portFree : d.length === 1 ? index[d[0]!.protocol === "tcp" ? 0 : 1]!.lookup(d[0]!.ranges[0]?.first ?? 0) : items;
    for (const e of tried) {
      if (e.index >= i) break;
      if (covers(e.rule, rule)) return e.index;
    }
    return -1;
  };
}

export function lint(ruleset: Ruleset, exposures: Exposure[]): Finding[] {
  const findings: Finding[] = [];
  for (const table of ruleset.tables) {
    for (const chain of table.chains) {
      const earlierCovering = shadowIndex(chain.rules);
      chain.rules.forEach((rule, i) => {
        const by = earlierCovering(rule, i);
        if (by >= 0) {
          findings.push({ kind: "shadowed", rule: emitNftRule(rule),
            message: `rule ${i + 1} of ${chain.name} can never match: rule ${by + 1} (${chain.rules[by]!.origin.intent}) takes every packet it would` });
        }
        const sportOnly = rule.matches.some((m) => m.kind === "sport") && !rule.matches.some((m) => m.kind === "dport" || m.kind === "ctstate");
        if (rule.verdict.kind === "accept" && sportOnly && chain.base?.hook !== "output") {
          findings.push({ kind: "stateless-accept", rule: emitNftRule(rule),
            message: `rule ${i + 1} of ${chain.name} accepts by source port alone: anyone sending from that port reaches every port (use connection tracking for replies)` });
        }
      });
    }
  }
  // Openings from anywhere on one family only.
  const key = (e: Exposure) => `${e.direction}|${e.protocol}|${e.ports}|${e.interface}|${e.target ?? ""}`;
  const anywhere = (e: Exposure) => e.peers[0] === "anywhere" && e.direction !== "outbound";
  const byFamily = (f: 4 | 6) => new Set(exposures.filter((e) => anywhere(e) && (e.family === f || e.families === "IPv4+IPv6")).map(key));
  const v4 = byFamily(4);
  const v6 = byFamily(6);
  const said = new Set<string>();
  for (const e of exposures.filter(anywhere)) {
    const k = key(e);
    if (e.target || said.has(k)) continue; // DNAT is IPv4 only; IPv6 forwards name their own address
    said.add(k);
    if (v4.has(k) !== v6.has(k) && e.protocol !== "icmp") {
      findings.push({ kind: "family-asymmetry", message: `${e.protocol.toUpperCase()} ${e.ports} on ${e.interface} is open from anywhere over IPv${v4.has(k) ? 4 : 6} but not over IPv${v4.has(k) ? 6 : 4}` });
    }
  }
  return findings;
}
