// Small helpers that more than one backend needs.
import type { L4Protocol, Match } from "../ir/match.js";
import type { Origin } from "../ir/ruleset.js";

/** The protocol that a port, flag or ICMP-type match in the rule already implies. */
export function protocolOf(matches: readonly Match[]): L4Protocol | undefined {
  for (const m of matches) {
    if (m.kind === "protocol") return m.protocol;
    if (m.kind === "dport" || m.kind === "sport") return m.protocol;
    if (m.kind === "tcpflags") return "tcp";
    if (m.kind === "icmptype") return m.family === 4 ? "icmp" : "icmpv6";
  }
  return undefined;
}

/** True when another match of the rule implies this protocol match. */
export function impliedProtocol(matches: readonly Match[], m: Match & { kind: "protocol" }): boolean {
  return matches.some((o) => o !== m && o.kind !== "protocol" && protocolOf([o]) === m.protocol);
}

/**
 * The rule comment: the intent, then the policy path in brackets. nft limits comments to
 * 128 bytes; text is ASCII after the compiler's own formatting, but names and
 * log prefixes come from the user, so we cut on bytes, not characters.
 */
export function ruleComment(origin: Origin, maxBytes: number): string {
  const text = (origin.path ? `${origin.intent} [${origin.path}]` : origin.intent).replace(/["\\]/g, "'");
  if (Buffer.byteLength(text) <= maxBytes) return text;
  let cut = text;
  while (Buffer.byteLength(`${cut}...`) > maxBytes) cut = cut.slice(0, -1);
  return `${cut}...`;
}

export const nftComment = (o: Origin): string => ruleComment(o, 128);
export const iptablesComment = (o: Origin): string => ruleComment(o, 256);
