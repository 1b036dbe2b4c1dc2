// IR → nftables text for `nft -f`. The file first declares and deletes the
// swarmgate table, then defines it: nft runs the whole file as one
// transaction, so loading it replaces the previous swarmgate table atomically
// and touches no other table (nft(8), "TABLES"; the declare-then-delete idiom
// avoids an error when the table does not exist yet).
import { formatAddress, type Address } from "../net/address.js";
import { formatPortRange } from "../net/port.js";
import { formatPrefix } from "../net/prefix.js";
import { icmpName } from "../ir/icmp.js";
import type { InterfaceMatch, Match, MatchHandlers } from "../ir/match.js";
import type { Chain, PortSet, Rule, Ruleset, Table } from "../ir/ruleset.js";
import type { PortRange } from "../net/port.js";
import type { Verdict, VerdictHandlers } from "../ir/verdict.js";
import { foldRules, type RuleText } from "./nft-fold.js";
import { header, type Backend, type EmitOptions } from "./types.js";
import { checkedUid, impliedProtocol, interfaceName, nftComment, nftLogPrefix } from "./shared.js";

// Every string written here has been through quotedText (shared.ts) or is a checked interface name.
const quote = (s: string): string => `"${s}"`;

/** One value or an anonymous set: `22` or `{ 80, 443 }`. */
function set(items: readonly string[]): string {
  return items.length === 1 ? items[0]! : `{ ${items.join(", ")} }`;
}

const FAMILY_KEYWORD = { 4: "ip", 6: "ip6" } as const;

const match: MatchHandlers<string> = {
  iifname: (m) => `iifname ${m.negate ? "!= " : ""}${quote(ifname(m))}`,
  oifname: (m) => `oifname ${m.negate ? "!= " : ""}${quote(ifname(m))}`,
  family: (m) => `meta nfproto ${m.family === 4 ? "ipv4" : "ipv6"}`,
  saddr: (m) => `${FAMILY_KEYWORD[m.family]} saddr ${set(m.prefixes.map(formatPrefix))}`,
  daddr: (m) => `${FAMILY_KEYWORD[m.family]} daddr ${set(m.prefixes.map(formatPrefix))}`,
  protocol: (m) => `meta l4proto ${m.protocol === "icmpv6" ? "ipv6-icmp" : m.protocol}`,
  sport: (m) => `${m.protocol} sport ${set(m.ranges.map((r) => formatPortRange(r)))}`,
  dport: (m) => `${m.protocol} dport ${m.set !== undefined ? `@${setName(m.set)}` : set(m.ranges.map((r) => formatPortRange(r)))}`,
  ctstate: (m) => `ct state ${m.states.join(",")}`,
  ctdnat: () => "ct status dnat",
  tcpflags: (m) => `tcp flags & (${m.mask.join("|")}) ${m.negate ? "!=" : "=="} ${m.equal.length ? m.equal.join("|") : "0x0"}`,
  icmptype: (m) => `${m.family === 4 ? "icmp" : "icmpv6"} type ${set(m.types.map((t) => icmpName(m.family, t, "nft")))}`,
  localaddr: (m) => `fib ${m.field} type local`,
  limit: (m) => `limit rate ${m.count}/${m.unit} burst ${m.burst} packets`,
  unknown: (m) => notWritten(`the condition ${m.text}`),
  pkttype: (m) => notWritten(`meta pkttype ${m.types.join(",")}`),
  exthdr: (m) => notWritten(m.text),
  skuid: (m) => `meta skuid ${checkedUid(m.uid)}`,
};

/** nft's wildcard is a trailing `*` (iptables' `+`). */
const ifname = (m: InterfaceMatch): string => `${interfaceName(m.name)}${m.wildcard ? "*" : ""}`;

/** Only rulesets read from other tools hold these; swarmgate writes policies, never such rulesets. */
function notWritten(what: string): never {
  throw new Error(`${what} comes only from a ruleset read from another tool, and is never written`);
}

/** An address with its port: `10.0.0.2:80`, `[2001:db8::2]:80`. */
const withPort = (a: Address, port?: number): string => (port === undefined ? formatAddress(a) : a.family === 6 ? `[${formatAddress(a)}]:${port}` : `${formatAddress(a)}:${port}`);

const verdict: VerdictHandlers<string> = {
  accept: () => "accept",
  drop: () => "drop",
  jump: (v) => `jump ${v.chain}`,
  return: () => "return",
  log: (v) => `log prefix ${quote(nftLogPrefix(v.prefix))}`,
  dnat: (v) => `dnat ${FAMILY_KEYWORD[v.to.family]} to ${withPort(v.to, v.port)}`,
  masquerade: () => "masquerade",
  reject: (v) => notWritten(`reject${v.with ? ` with ${v.with}` : ""}`),
  goto: (v) => notWritten(`goto ${v.chain}`),
  notrack: () => notWritten("notrack"),
  snat: () => notWritten("snat"),
  redirect: () => notWritten("redirect"),
  other: (v) => notWritten(v.text),
};

// A protocol test that a later match implies (tcp dport …) would only be noise.
const written = (rule: Rule): readonly Match[] => rule.matches.filter((m) => !(m.kind === "protocol" && impliedProtocol(rule.matches, m)));

const text: RuleText = {
  match: (m) => (match[m.kind] as (x: Match) => string)(m),
  verdict: (v) => (verdict[v.kind] as (x: Verdict) => string)(v),
  comment: (r) => `comment ${quote(nftComment(r.origin))}`,
};

export function emitNftRule(rule: Rule): string {
  // Every rule counts its packets, so that `swarmgate status` can show them beside the rule's origin.
  return [...written(rule).map(text.match), "counter", text.verdict(rule.verdict), text.comment(rule)].join(" ");
}

function emitChain(chain: Chain): string[] {
  const lines = [`\tchain ${chain.name} {`];
  if (chain.base) {
    const b = chain.base;
    const priority = { 0: "filter", [-100]: "dstnat", 100: "srcnat" }[b.priority] ?? String(b.priority);
    lines.push(`\t\ttype ${b.type} hook ${b.hook} priority ${priority}; policy ${b.policy};`);
  }
  for (const line of foldRules(chain.rules, written, text, emitNftRule)) lines.push(`\t\t${line}`);
  lines.push("\t}");
  return lines;
}

/** Set names are the compiler's own (client_0_ports); checked all the same, as they go into the file unquoted. */
function setName(name: string): string {
  if (!/^[a-z][a-z0-9_]{0,30}$/.test(name)) throw new Error(`not a set name swarmgate writes: ${JSON.stringify(name)}`);
  return name;
}

/** A named port set, written the way `nft list` prints one, so that a listing reads the same way back. */
export function emitNftSet(s: PortSet): string[] {
  return [`\tset ${setName(s.name)} {`, "\t\ttype inet_service", "\t\tflags interval", `\t\telements = { ${setElements(s.ranges)} }`, "\t}"];
}

/** Elements as `nft list` prints them: ascending, ranges with a dash. */
export function setElements(ranges: readonly PortRange[]): string {
  return [...ranges].sort((a, b) => a.first - b.first).map((r) => formatPortRange(r)).join(", ");
}

export function emitNftTable(table: Table): string {
  const blocks = [...(table.sets ?? []).map(emitNftSet), ...table.chains.map(emitChain)];
  const body = blocks.flatMap((b, i) => (i === 0 ? b : ["", ...b]));
  return [`table ${table.family} ${table.name} {`, ...body, "}"].join("\n");
}

export function emitNft(ruleset: Ruleset, options?: EmitOptions): string {
  const head = header("#", options, [
    "Load with: nft -f FILE (one transaction: it replaces table inet swarmgate and nothing else).",
  ]);
  const tables = ruleset.tables.map((t) => [
    `table ${t.family} ${t.name}`,
    `delete table ${t.family} ${t.name}`,
    "",
    emitNftTable(t),
  ].join("\n"));
  return `#!/usr/sbin/nft -f\n${head}\n\n${tables.join("\n\n")}\n`;
}

export const nftBackend: Backend = {
  name: "nft",
  summary: "nftables ruleset for nft -f: one table inet swarmgate, loaded in one transaction",
  emit: (ruleset, options) => [{ suffix: "", reader: "nft -f", text: emitNft(ruleset, options), executable: false }],
};
