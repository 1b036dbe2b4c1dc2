// What a ruleset opens, read from the IR: every accepting rule that the
// policy asked for, as (direction, protocol, ports, peers, interface, why).
// It reads rules, it does not simulate them; `audit` does the exact analysis.
import { formatPortRange } from "../net/port.js";
import { formatPrefix } from "../net/prefix.js";
import { icmpName } from "../ir/icmp.js";
import type { Match } from "../ir/match.js";
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

function describe(rule: Rule, direction: Direction): Opening {
  const find = <K extends Match["kind"]>(k: K) => rule.matches.find((m) => m.kind === k) as Extract<Match, { kind: K }> | undefined;
  const port = find("dport");
  const icmp = find("icmptype");
  const peerMatch = direction === "outbound" ? find("daddr") : find("saddr");
  const target = direction === "forwarded" ? find("daddr") : undefined;
  const iface = direction === "outbound" ? find("oifname") : find("iifname");
  const fams = ruleFamilies(rule);
  let peers = peerMatch ? peerMatch.prefixes.map(formatPrefix).join(", ") : "anywhere";
  if (target) peers += ` → ${target.prefixes.map(formatPrefix).join(", ")}`;
  if (rule.verdict.kind === "dnat") peers += ` → ${formatAddress(rule.verdict.to)}`;
  return {
    direction,
    protocol: port?.protocol ?? (icmp ? (icmp.family === 4 ? "icmp" : "icmpv6") : "any"),
    ports: port ? port.ranges.map((r) => formatPortRange(r)).join(",") : icmp ? icmp.types.map((t) => icmpName(icmp.family, t, "nft")).join(",") : "all",
    peers,
    via: iface ? `${iface.negate ? "not " : ""}${iface.name}` : "any",
    families: fams.length === 2 ? "IPv4+IPv6" : `IPv${fams[0]}`,
    why: rule.origin.intent.includes(":") ? rule.origin.intent.slice(0, rule.origin.intent.indexOf(":")) : rule.origin.intent,
    intent: rule.origin.intent,
    path: rule.origin.path,
  };
}
