// What a ruleset opens, read from the IR: every accepting rule that the
// policy asked for, as (direction, protocol, ports, peers, interface, why).
// It reads rules, it does not simulate them; `audit` does the exact analysis.
import { formatPortRange } from "../net/port.js";
import { formatPrefix } from "../net/prefix.js";
import { icmpName } from "../ir/icmp.js";
import type { AddressMatch, IcmpTypeMatch, InterfaceMatch, L4Protocol, Match, MatchHandlers, PortMatch } from "../ir/match.js";
import { ruleFamilies, type Rule, type Ruleset } from "../ir/ruleset.js";
import { formatAddress } from "../net/address.js";

export type Direction = "inbound" | "forwarded" | "outbound" | "port-forward";

export interface Opening {
  direction: Direction;
  protocol: string;
  ports: string;
  /** Who may open it: sources (inbound, forwarded) or destinations (outbound). */
  peers: string;
  via: string;
  families: string;
  why: string;
  intent: string;
  path: string;
}

const DIRECTION: Record<string, Direction> = { input: "inbound", forward: "forwarded", output: "outbound", prerouting: "port-forward" };

export function openings(ruleset: Ruleset): Opening[] {
  const out: Opening[] = [];
  for (const chain of ruleset.tables.flatMap((t) => t.chains)) {
    const direction = chain.base ? DIRECTION[chain.base.hook] : undefined;
    if (!direction) continue;
    for (const rule of chain.rules) {
      const opens = rule.verdict.kind === "accept" || rule.verdict.kind === "dnat";
      if (!opens || rule.origin.path === "") continue;
      out.push(describe(rule, direction));
    }
  }
  return out;
}

/** The matches an opening shows, by kind; a rule may hold several of a kind (all must hold), so each is a list. */
interface Shown {
  dport: PortMatch<"dport">[];
  icmp: IcmpTypeMatch[];
  protocol: L4Protocol[];
  saddr: AddressMatch<"saddr">[];
  daddr: AddressMatch<"daddr">[];
  iif: InterfaceMatch<"iifname">[];
  oif: InterfaceMatch<"oifname">[];
}

type Note = (shown: Shown) => void;
const hidden: Note = () => {};

/** What each match kind adds to an opening. Keyed by kind, so a new kind is a compile error here until it says. */
const note: MatchHandlers<Note> = {
  dport: (m) => (s) => { s.dport.push(m); },
  icmptype: (m) => (s) => { s.icmp.push(m); },
  protocol: (m) => (s) => { s.protocol.push(m.protocol); },
  saddr: (m) => (s) => { s.saddr.push(m); },
  daddr: (m) => (s) => { s.daddr.push(m); },
  iifname: (m) => (s) => { s.iif.push(m); },
  oifname: (m) => (s) => { s.oif.push(m); },
  // Not part of an opening's line: the family column comes from ruleFamilies; states, flags, limits and source ports
  // narrow who gets in by a rule, but the opening is named by its ports and peers (audit gives the exact sets).
  family: () => hidden,
  sport: () => hidden,
  ctstate: () => hidden,
  ctdnat: () => hidden,
  tcpflags: () => hidden,
  localaddr: () => hidden,
  limit: () => hidden,
  // Policies compile to no unknown condition; an opening is named by what the simulator can decide.
  unknown: () => hidden,
  pkttype: () => hidden,
  exthdr: () => hidden,
  skuid: () => hidden,
};

function shown(rule: Rule): Shown {
  const s: Shown = { dport: [], icmp: [], protocol: [], saddr: [], daddr: [], iif: [], oif: [] };
  for (const m of rule.matches) (note[m.kind] as (x: Match) => Note)(m)(s);
  return s;
}

/** Several matches of a kind all hold: "a and b". */
const all = <T>(list: readonly T[], text: (x: T) => string): string => list.map(text).join(" and ");
const prefixes = (m: AddressMatch) => m.prefixes.map(formatPrefix).join(", ");

function describe(rule: Rule, direction: Direction): Opening {
  const s = shown(rule);
  const port = s.dport[0];
  const icmp = s.icmp[0];
  const peerMatches: readonly AddressMatch[] = direction === "outbound" ? s.daddr : s.saddr;
  const target: readonly AddressMatch[] = direction === "forwarded" ? s.daddr : [];
  const ifaces: readonly InterfaceMatch[] = direction === "outbound" ? s.oif : s.iif;
  const fams = ruleFamilies(rule);
  let peers = peerMatches.length ? all(peerMatches, prefixes) : "anywhere";
  if (target.length) peers += ` → ${all(target, prefixes)}`;
  if (rule.verdict.kind === "dnat") peers += ` → ${formatAddress(rule.verdict.to)}`;
  return {
    direction,
    protocol: port?.protocol ?? (icmp ? (icmp.family === 4 ? "icmp" : "icmpv6") : s.protocol[0] ?? "any"),
    ports: s.dport.length ? all(s.dport, (m) => m.ranges.map((r) => formatPortRange(r)).join(","))
      : s.icmp.length ? all(s.icmp, (m) => m.types.map((t) => icmpName(m.family, t, "nft")).join(",")) : "all",
    peers,
    via: ifaces.length ? all(ifaces, (m) => `${m.negate ? "not " : ""}${m.name}`) : "any",
    families: fams.length === 2 ? "IPv4+IPv6" : `IPv${fams[0]}`,
    // The intent's subject ends at ": " (an IPv6 address in it has colons, never followed by a space).
    why: rule.origin.intent.includes(": ") ? rule.origin.intent.slice(0, rule.origin.intent.indexOf(": ")) : rule.origin.intent,
    intent: rule.origin.intent,
    path: rule.origin.path,
  };
}
