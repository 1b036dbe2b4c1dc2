// IR → iptables-restore and ip6tables-restore input. Only swarmgate's own
// chains (SWARMGATE-INPUT, …) are declared, so `iptables-restore --noflush`
// replaces their contents in one commit per table and leaves every other
// chain alone. A rule with several addresses, ICMP types or more ports than
// one multiport match holds becomes several rules (iptables-extensions(8),
// "multiport": at most 15 ports, a range counting as two).
//
// Allowed traffic RETURNs to the built-in chain instead of ACCEPTing there:
// other tools' rules (fail2ban, libvirt) still see it, exactly as a separate
// nftables table would. Everything not allowed is dropped in our chain.
import { formatAddress, type Family } from "../net/address.js";
import { formatPortRange, type PortRange } from "../net/port.js";
import { formatPrefix, type Prefix } from "../net/prefix.js";
import { icmpName } from "../ir/icmp.js";
import type { AddressMatch, CtDnatMatch, CtStateMatch, IcmpTypeMatch, InterfaceMatch, LimitMatch, LocalAddressMatch, Match, MatchHandlers, PortMatch, SocketUidMatch, TcpFlagsMatch } from "../ir/match.js";
import { ruleFamilies, type Chain, type Rule, type Ruleset } from "../ir/ruleset.js";
import type { Verdict, VerdictHandlers } from "../ir/verdict.js";
import { header, type Backend, type EmitOptions } from "./types.js";
import { checkedUid, interfaceName, iptablesComment, iptablesLogPrefix, protocolOf } from "./shared.js";

export const CHAIN_PREFIX = "SWARMGATE-";

export function iptablesChainName(chain: Chain): string {
  return `${CHAIN_PREFIX}${chain.name.toUpperCase()}`;
}

/** The built-in table and chain a base chain hangs from. */
export function builtinOf(chain: Chain): { table: "filter" | "nat"; chain: string } | undefined {
  return chain.base ? { table: chain.base.type, chain: chain.base.hook.toUpperCase() } : undefined;
}

/**
 * A rule's matches sorted by what iptables does with them. Every IR match kind
 * has a handler here, so a new kind is a compile error until iptables prints
 * it; a kind iptables can test only once per rule that appears twice is a bug
 * in the caller and stops the emitter rather than silently dropping a match
 * (which would widen an accept).
 */
interface Gathered {
  saddr?: AddressMatch<"saddr">; daddr?: AddressMatch<"daddr">; iif?: InterfaceMatch<"iifname">; oif?: InterfaceMatch<"oifname">;
  sport?: PortMatch<"sport">; dport?: PortMatch<"dport">; icmp?: IcmpTypeMatch; flags?: TcpFlagsMatch;
  ct?: CtStateMatch; dnat?: CtDnatMatch; limit?: LimitMatch; local: LocalAddressMatch[]; uid?: SocketUidMatch;
}

function once<K extends keyof Gathered>(g: Gathered, key: K, value: Gathered[K]): void {
  if (g[key] !== undefined) throw new Error(`iptables emitter: a rule with two ${String(key)} matches cannot be written as one iptables rule`);
  g[key] = value;
}

const gatherers: MatchHandlers<(g: Gathered) => void> = {
  iifname: (m) => (g) => once(g, "iif", m),
  oifname: (m) => (g) => once(g, "oif", m),
  family: () => () => { /* the rule goes only into its family's file (ruleFamilies) */ },
  saddr: (m) => (g) => once(g, "saddr", m),
  daddr: (m) => (g) => once(g, "daddr", m),
  protocol: () => () => { /* printed from protocolOf, which every port, ICMP or flags match implies too */ },
  sport: (m) => (g) => once(g, "sport", m),
  dport: (m) => (g) => once(g, "dport", m),
  ctstate: (m) => (g) => once(g, "ct", m),
  ctdnat: (m) => (g) => once(g, "dnat", m),
  tcpflags: (m) => (g) => once(g, "flags", m),
  icmptype: (m) => (g) => once(g, "icmp", m),
  localaddr: (m) => (g) => { g.local.push(m); },
  limit: (m) => (g) => once(g, "limit", m),
  unknown: (m) => () => notWritten(`the condition ${m.text}`),
  pkttype: (m) => () => notWritten(`-m pkttype --pkt-type ${m.types.join(",")}`),
  exthdr: (m) => () => notWritten(m.text),
  skuid: (m) => (g) => once(g, "uid", m),
};

/** Only rulesets read from other tools hold these; swarmgate writes policies, never such rulesets. */
function notWritten(what: string): never {
  throw new Error(`${what} comes only from a ruleset read from another tool, and is never written`);
}

/** iptables' wildcard is a trailing `+`. */
const ifname = (m: InterfaceMatch): string => `${interfaceName(m.name)}${m.wildcard ? "+" : ""}`;

function gather(rule: Rule): Gathered {
  const g: Gathered = { local: [] };
  for (const m of rule.matches) (gatherers[m.kind] as (x: Match) => (g: Gathered) => void)(m)(g);
  return g;
}

/** One concrete iptables rule: a single value for every multi-valued match. */
interface Concrete { saddr?: Prefix; daddr?: Prefix; icmp?: number; sports?: PortRange[]; dports?: PortRange[] }

function expand(g: Gathered): Concrete[] {
  let out: Concrete[] = [{}];
  const each = <T>(values: readonly T[] | undefined, put: (c: Concrete, v: T) => Concrete) => {
    if (values) out = out.flatMap((c) => values.map((v) => put(c, v)));
  };
  each(g.saddr?.prefixes, (c, saddr) => ({ ...c, saddr }));
  each(g.daddr?.prefixes, (c, daddr) => ({ ...c, daddr }));
  each(g.icmp?.types, (c, icmp) => ({ ...c, icmp }));
  each(g.sport && multiportChunks(g.sport.ranges), (c, sports) => ({ ...c, sports }));
  each(g.dport && multiportChunks(g.dport.ranges), (c, dports) => ({ ...c, dports }));
  return out;
}

function multiportChunks(ranges: readonly PortRange[]): PortRange[][] {
  const chunks: PortRange[][] = [[]];
  let used = 0;
  for (const r of ranges) {
    const cost = r.first === r.last ? 1 : 2;
    if (used + cost > 15) { chunks.push([]); used = 0; }
    chunks[chunks.length - 1]!.push(r);
    used += cost;
  }
  return chunks;
}

const FLAG = (f: string): string => f.toUpperCase();

function ports(dir: "s" | "d", list: PortRange[]): string {
  if (list.length === 1) return `--${dir}port ${formatPortRange(list[0]!, ":")}`;
  return `-m multiport --${dir}ports ${list.map((r) => formatPortRange(r, ":")).join(",")}`;
}

/** Options in the order iptables-save prints them, so a readback diff stays small. */
function options(rule: Rule, g: Gathered, c: Concrete, family: Family): string[] {
  const out: string[] = [];
  if (c.saddr) out.push(`-s ${formatPrefix(c.saddr)}`);
  if (c.daddr) out.push(`-d ${formatPrefix(c.daddr)}`);
  const i = g.iif;
  if (i) out.push(`${i.negate ? "! " : ""}-i ${ifname(i)}`);
  const o = g.oif;
  if (o) out.push(`${o.negate ? "! " : ""}-o ${ifname(o)}`);
  const proto = protocolOf(rule.matches);
  if (proto) out.push(`-p ${proto === "icmpv6" ? "ipv6-icmp" : proto}`);
  const flags = g.flags;
  if (proto === "tcp" || proto === "udp") {
    const plain = [c.sports?.length === 1 ? ports("s", c.sports) : "", c.dports?.length === 1 ? ports("d", c.dports) : ""].filter(Boolean);
    const flagText = flags ? `${flags.negate ? "! " : ""}--tcp-flags ${flags.mask.map(FLAG).join(",")} ${flags.equal.length ? flags.equal.map(FLAG).join(",") : "NONE"}` : "";
    if (plain.length || flagText) out.push(`-m ${proto} ${[...plain, flagText].filter(Boolean).join(" ")}`);
    if (c.sports && c.sports.length > 1) out.push(ports("s", c.sports));
    if (c.dports && c.dports.length > 1) out.push(ports("d", c.dports));
  }
  if (c.icmp !== undefined) {
    out.push(family === 4 ? `-m icmp --icmp-type ${icmpName(4, c.icmp, "iptables")}` : `-m icmp6 --icmpv6-type ${icmpName(6, c.icmp, "iptables")}`);
  }
  const ct = g.ct;
  const dnat = g.dnat;
  if (ct || dnat) out.push(`-m conntrack --ctstate ${[...(ct?.states ?? []), ...(dnat ? ["dnat"] : [])].map((s) => s.toUpperCase()).join(",")}`);
  for (const a of g.local) {
    out.push(`-m addrtype --${a.field === "saddr" ? "src" : "dst"}-type LOCAL`);
  }
  if (g.uid) out.push(`-m owner --uid-owner ${checkedUid(g.uid.uid)}`);
  const limit = g.limit;
  if (limit) out.push(`-m limit --limit ${limit.count}/${limit.unit} --limit-burst ${limit.burst}`);
  out.push(`-m comment --comment "${iptablesComment(rule.origin)}"`);
  return out;
}

function target(v: Verdict, filter: boolean): string {
  const handlers: VerdictHandlers<string> = {
    accept: () => (filter ? "-j RETURN" : "-j ACCEPT"),
    drop: () => "-j DROP",
    jump: (j) => `-j ${CHAIN_PREFIX}${j.chain.toUpperCase()}`,
    return: () => "-j RETURN",
    log: (l) => `-j LOG --log-prefix "${iptablesLogPrefix(l.prefix)}"`,
    dnat: (d) => `-j DNAT --to-destination ${d.port === undefined ? formatAddress(d.to) : d.to.family === 6 ? `[${formatAddress(d.to)}]:${d.port}` : `${formatAddress(d.to)}:${d.port}`}`,
    masquerade: () => "-j MASQUERADE",
    reject: (r) => notWritten(`REJECT${r.with ? ` --reject-with ${r.with}` : ""}`),
    goto: (g) => notWritten(`-g ${g.chain}`),
    notrack: () => notWritten("NOTRACK"),
    snat: () => notWritten("SNAT"),
    redirect: () => notWritten("REDIRECT"),
    other: (o) => notWritten(o.text),
  };
  return (handlers[v.kind] as (x: Verdict) => string)(v);
}

export interface IptablesEmitOptions extends EmitOptions {
  /** Add `-I BUILTIN 1 -j SWARMGATE-…` jumps (for a first load); the script checks and adds them itself. */
  jumps?: boolean;
}

/** The restore input for one address family, or "" when nothing applies to it. */
export function emitIptables(ruleset: Ruleset, family: Family, opts: IptablesEmitOptions = {}): string {
  const sections: string[] = [];
  for (const table of ["filter", "nat"] as const) {
    const chains = ruleset.tables.flatMap((t) => t.chains).filter((c) => (c.base?.type ?? "filter") === table);
    const lines: string[] = [];
    for (const chain of chains) {
      const name = iptablesChainName(chain);
      const body = chain.rules
        .filter((r) => ruleFamilies(r).includes(family))
        .flatMap((r) => { const g = gather(r); return expand(g).map((c) => `-A ${name} ${[...options(r, g, c, family), target(r.verdict, table === "filter")].join(" ")}`); });
      if (chain.base?.policy === "drop") body.push(`-A ${name} -m comment --comment "default: drop what no rule above allowed" -j DROP`);
      if (body.length === 0 && chain.base?.type === "nat") continue;
      lines.push(`:${name} - [0:0]`, ...body);
      const builtin = builtinOf(chain);
      if (opts.jumps !== false && builtin) lines.push(`-I ${builtin.chain} 1 -j ${name}`);
    }
    if (lines.length === 0) continue;
    sections.push([`*${table}`, ...sortDeclarations(lines), "COMMIT"].join("\n"));
  }
  return sections.join("\n");
}

/** iptables-restore wants every chain declared before the first rule that uses it. */
function sortDeclarations(lines: string[]): string[] {
  return [...lines.filter((l) => l.startsWith(":")), ...lines.filter((l) => !l.startsWith(":"))];
}

export const iptablesBackend: Backend = {
  name: "iptables",
  summary: "iptables-restore (.v4) and ip6tables-restore (.v6) input for swarmgate's own SWARMGATE-* chains",
  emit(ruleset, options) {
    const note = (tool: string) => header("#", options, [
      `Load with: ${tool} --noflush FILE (replaces the SWARMGATE-* chains only; it adds the jumps into them,`,
      "so load it once, or use the script backend or swarmgate apply, which add each jump only when it is missing).",
    ]);
    return ([4, 6] as const).map((family) => ({
      suffix: `v${family}`,
      reader: family === 4 ? "iptables-restore" : "ip6tables-restore",
      text: `${note(family === 4 ? "iptables-restore" : "ip6tables-restore")}\n${emitIptables(ruleset, family, options)}\n`,
      executable: false,
    }));
  },
};
