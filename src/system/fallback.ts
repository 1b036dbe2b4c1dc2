// What filters the machine once swarmgate's rules are gone, in one sentence:
// other nftables tables, and rules loaded through either iptables variant
// (nf_tables and legacy: a legacy FORWARD policy DROP filters as surely as
// any nft table, and `nft list ruleset` does not show it).
import { TABLE_NAME } from "../compile/index.js";
import { onPath, run } from "./run.js";

interface Seen { rules: number; dropPolicy: boolean; sources: string[] }

function countNft(text: string, seen: Seen): void {
  let ours = false;
  let found = 0;
  for (const line of text.split("\n")) {
    if (/^table /.test(line)) ours = line.startsWith(`table inet ${TABLE_NAME} `);
    if (ours) continue;
    if (/policy drop;/.test(line)) seen.dropPolicy = true;
    if (/^\s+\S/.test(line) && /\b(accept|drop|reject|jump|goto|xt target)\b/.test(line) && !/^\s*type /.test(line)) found++;
  }
  if (found) seen.sources.push("nftables");
  seen.rules += found;
}

function countSave(text: string, tool: string, seen: Seen): void {
  const lines = text.split("\n").filter((l) => !l.includes("SWARMGATE-"));
  const found = lines.filter((l) => /^(\[\d+:\d+\] )?-A /.test(l)).length;
  if (lines.some((l) => /^:(INPUT|FORWARD|OUTPUT) DROP/.test(l))) { seen.dropPolicy = true; if (!found) seen.sources.push(tool); }
  if (found) seen.sources.push(tool);
  seen.rules += found;
}

export async function fallback(): Promise<string> {
  const seen: Seen = { rules: 0, dropPolicy: false, sources: [] };
  if (onPath("nft")) {
    const r = await run("nft", ["list", "ruleset"]);
    if (r.code === 0) countNft(r.stdout, seen);
  }
  for (const tool of ["iptables-legacy-save", "ip6tables-legacy-save"]) {
    if (!onPath(tool)) continue;
    const r = await run(tool, []);
    if (r.code === 0) countSave(r.stdout, tool.replace("-save", ""), seen);
  }
  const from = seen.sources.length ? ` (${[...new Set(seen.sources)].join(", ")})` : "";
  if (seen.dropPolicy) return `other rules (${seen.rules})${from} and a default-drop policy still filter traffic`;
  if (seen.rules > 0) return `${seen.rules} rules of other tools remain${from}, with no default drop: check them before relying on them`;
  return "WARNING: no other firewall rules are loaded; this machine now accepts every connection";
}
