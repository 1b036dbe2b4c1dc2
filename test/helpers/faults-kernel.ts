// What a fault trial reads from its namespace's kernel: swarmgate's objects per
// unit of transaction (the nft table; the SWARMGATE lines of iptables-save and
// of ip6tables-save), every other tool's rules, and the kernel settings
// swarmgate manages. Listings are read with the real tools, never the fake ones.
import type { Netns } from "../../src/system/netns.js";

export const SETTINGS = [
  "net.ipv4.tcp_syncookies",
  "net.ipv4.icmp_echo_ignore_broadcasts",
  "net.ipv6.icmp.echo_ignore_multicast",
  "net.ipv4.ip_forward",
  "net.ipv6.conf.all.forwarding",
] as const;

/** swarmgate's objects, one text per unit; "" where it has none. */
export interface Units { nft: string; v4: string; v6: string }

export interface Observed {
  units: Units;
  /** Everything that is not swarmgate's, as the other tools see it. */
  foreign: string;
  settings: Record<string, string>;
  /** A listing that failed or that iptables-save could not read. */
  problems: string[];
}

/** Tables iptables-nft makes; their content is compared through iptables-save. */
const XTABLES = /^table (ip|ip6) (filter|nat|mangle|raw|security) \{$/;
const OURS = "table inet swarmgate {";

/** Top-level `table … { … }` blocks of an nft listing, counters zeroed. */
function nftBlocks(listing: string): string[] {
  const blocks: string[] = [];
  let current: string[] | undefined;
  for (const line of listing.replace(/counter packets \d+ bytes \d+/g, "counter packets 0 bytes 0").split("\n")) {
    if (/^table /.test(line)) current = [];
    current?.push(line);
    if (line === "}" && current) { blocks.push(current.join("\n")); current = undefined; }
  }
  return blocks;
}

/** iptables-save without its date comments, counters zeroed. */
const saveText = (out: string) => out.split("\n").filter((l) => !l.startsWith("#") && l !== "").map((l) => l.replace(/\[\d+:\d+\]/g, "[0:0]"));

/** A table that holds nothing but built-in chains with policy ACCEPT: what iptables-nft leaves once its rules are gone. */
function emptyTables(lines: string[]): string[] {
  const out: string[] = [];
  let table: string[] = [];
  for (const line of lines) {
    table.push(line);
    if (line !== "COMMIT") continue;
    if (!table.every((l) => l.startsWith("*") || l === "COMMIT" || /^:[A-Z]+ ACCEPT \[0:0\]$/.test(l))) out.push(...table);
    table = [];
  }
  return out;
}

/**
 * swarmgate's lines in a canonical order: its chain declarations sorted (the
 * kernel lists them in creation order, which depends on history), its rules in
 * their order within each chain.
 */
function ownLines(lines: string[]): string {
  const out: string[] = [];
  let table = "";
  const flush = (decls: string[], rules: string[]) => { if (decls.length || rules.length) out.push(table, ...decls.sort(), ...stableByChain(rules)); };
  let decls: string[] = [];
  let rules: string[] = [];
  for (const line of lines) {
    if (line.startsWith("*")) { flush(decls, rules); table = line; decls = []; rules = []; continue; }
    if (!line.includes("SWARMGATE-")) continue;
    (line.startsWith(":") ? decls : rules).push(line);
  }
  flush(decls, rules);
  return out.join("\n");
}

const stableByChain = (rules: string[]) => rules.map((r, i) => ({ r, i, c: r.split(" ")[1] ?? "" }))
  .sort((a, b) => (a.c < b.c ? -1 : a.c > b.c ? 1 : a.i - b.i)).map((x) => x.r);

async function save(ns: Netns, tool: "iptables-save" | "ip6tables-save", problems: string[]): Promise<string[]> {
  const r = await ns.exec(tool, []);
  if (r.code !== 0 || /incompatible|nft' tool/i.test(r.stderr + r.stdout)) problems.push(`${tool} exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 300)}`);
  return saveText(r.stdout);
}

async function settings(ns: Netns): Promise<Record<string, string>> {
  const r = await ns.exec("cat", SETTINGS.map((k) => `/proc/sys/${k.replace(/\./g, "/")}`));
  const values = r.stdout.trim().split("\n");
  return Object.fromEntries(SETTINGS.map((k, i) => [k, values[i] ?? "?"]));
}

/** Reads the namespace's kernel: swarmgate's units, the foreign rules, the settings. */
export async function observe(ns: Netns): Promise<Observed> {
  const problems: string[] = [];
  const [nft, v4, v6, sysctl] = await Promise.all([ns.exec("nft", ["list", "ruleset"]), save(ns, "iptables-save", problems), save(ns, "ip6tables-save", problems), settings(ns)]);
  if (nft.code !== 0) problems.push(`nft list ruleset exited ${nft.code}: ${nft.stderr.trim()}`);
  const blocks = nftBlocks(nft.stdout);
  const foreignNft = blocks.filter((b) => !b.startsWith(OURS) && !XTABLES.test(b.split("\n")[0]!)).sort();
  const foreignSave = (lines: string[]) => emptyTables(lines.filter((l) => !l.includes("SWARMGATE-")));
  return {
    units: { nft: blocks.find((b) => b.startsWith(OURS)) ?? "", v4: ownLines(v4), v6: ownLines(v6) },
    foreign: ["# iptables-save", ...foreignSave(v4), "# ip6tables-save", ...foreignSave(v6), "# nft tables", ...foreignNft].join("\n"),
    settings: sysctl,
    problems,
  };
}

/** The whole kernel, for a failure report. */
export async function listing(ns: Netns): Promise<string> {
  const [nft, v4, v6] = await Promise.all([ns.exec("nft", ["list", "ruleset"]), ns.exec("iptables-save", []), ns.exec("ip6tables-save", [])]);
  return `--- nft list ruleset\n${nft.stdout}${nft.stderr}--- iptables-save\n${v4.stdout}${v4.stderr}--- ip6tables-save\n${v6.stdout}${v6.stderr}`;
}
