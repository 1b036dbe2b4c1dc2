// Small constructors that keep the compiler modules readable.
import type { Family } from "../net/address.js";
import { formatPortRange, type PortRange } from "../net/port.js";
import { formatPrefix, type Prefix } from "../net/prefix.js";
import type { Match, Transport } from "../ir/match.js";
import type { PortSet, Rule } from "../ir/ruleset.js";
import type { Verdict } from "../ir/verdict.js";

export type ChainName = "input" | "forward" | "output" | "prerouting" | "postrouting";
/** Rules one compiler module adds, chain by chain, in order, and the named port sets they use. */
export type Contribution = Partial<Record<ChainName, Rule[]>> & { sets?: PortSet[] };

export const ACCEPT: Verdict = { kind: "accept" };
export const DROP: Verdict = { kind: "drop" };

export function rule(matches: Match[], verdict: Verdict, path: string, intent: string): Rule {
  return { matches, verdict, origin: { path, intent } };
}

export const iif = (name: string, negate = false): Match => ({ kind: "iifname", name, negate });
export const oif = (name: string, negate = false): Match => ({ kind: "oifname", name, negate });
export const dport = (protocol: Transport, ranges: readonly PortRange[], set?: string): Match => ({ kind: "dport", protocol, ranges, ...(set !== undefined && { set }) });
export const sport = (protocol: Transport, ranges: readonly PortRange[]): Match => ({ kind: "sport", protocol, ranges });
export const saddr = (family: Family, prefixes: readonly Prefix[]): Match => ({ kind: "saddr", family, prefixes });
export const daddr = (family: Family, prefixes: readonly Prefix[]): Match => ({ kind: "daddr", family, prefixes });
export const icmpTypes = (family: Family, types: number[]): Match => ({ kind: "icmptype", family, types });

/** Prefixes grouped by family, IPv4 first; families with none are left out. */
export function byFamily(prefixes: readonly Prefix[]): [Family, Prefix[]][] {
  return ([4, 6] as Family[])
    .map((f): [Family, Prefix[]] => [f, prefixes.filter((p) => p.family === f)])
    .filter(([, list]) => list.length > 0);
}

/** Interface scope: the named interface, or every interface but loopback. */
export function inboundScope(iface: string | undefined): Match {
  return iface === undefined ? iif("lo", true) : iif(iface);
}
export function outboundScope(iface: string | undefined): Match[] {
  return iface === undefined ? [] : [oif(iface)];
}

export const words = {
  proto: (p: Transport): string => p.toUpperCase(),
  ports: (ranges: readonly PortRange[]): string => ranges.map((r) => formatPortRange(r)).join(","),
  prefixes: (list: readonly Prefix[]): string => list.map(formatPrefix).join(", "),
};
