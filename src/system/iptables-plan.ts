// The iptables side of apply and stop as one iptables-restore --noflush
// transaction per family: swarmgate's chains are declared (which empties
// them) and refilled, each jump into them is added only when missing (and
// duplicates left by earlier hand loads removed), and SWARMGATE-* chains the
// new ruleset no longer has are unhooked and deleted. Nothing else is touched.
import { builtinOf, CHAIN_PREFIX, emitIptables, iptablesChainName } from "../backend/iptables.js";
import type { Ruleset } from "../ir/ruleset.js";
import type { Family } from "../net/address.js";

interface TableState { chains: Set<string>; jumps: Map<string, number> }

/** Swarmgate's chains and the jumps into them ("INPUT SWARMGATE-INPUT" → count), per table, from iptables-save. */
export function parseSave(save: string): Map<string, TableState> {
  const tables = new Map<string, TableState>();
  let current: TableState | undefined;
  for (const line of save.split("\n")) {
    if (line.startsWith("*")) { current = { chains: new Set(), jumps: new Map() }; tables.set(line.slice(1).trim(), current); continue; }
    if (!current) continue;
    const decl = /^:(\S+)/.exec(line);
    if (decl && decl[1]!.startsWith(CHAIN_PREFIX)) current.chains.add(decl[1]!);
    const jump = /^-A (\S+) -j (SWARMGATE-\S+)$/.exec(line);
    if (jump) { const k = `${jump[1]} ${jump[2]}`; current.jumps.set(k, (current.jumps.get(k) ?? 0) + 1); }
  }
  return tables;
}

/** Splits restore input into its tables' bodies (without *table and COMMIT). */
function sections(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of text.split("\n")) {
    if (line.startsWith("*")) { current = []; out.set(line.slice(1).trim(), current); }
    else if (line === "COMMIT") current = undefined;
    else if (current && line) current.push(line);
  }
  return out;
}

/** Restore input that turns the current state into `ruleset` (or removes swarmgate when it is undefined); "" when nothing is to do. */
export function planRestore(ruleset: Ruleset | undefined, family: Family, currentSave: string): string {
  const current = parseSave(currentSave);
  const desired = ruleset ? sections(emitIptables(ruleset, family, { jumps: false })) : new Map<string, string[]>();
  const wantedJumps = new Map<string, string[]>(); // table → "BUILTIN CHAIN"
  for (const chain of ruleset?.tables.flatMap((t) => t.chains) ?? []) {
    const b = builtinOf(chain);
    const name = iptablesChainName(chain);
    if (b && desired.get(b.table)?.some((l) => l.startsWith(`:${name} `))) wantedJumps.set(b.table, [...(wantedJumps.get(b.table) ?? []), `${b.chain} ${name}`]);
  }
  const out: string[] = [];
  for (const table of new Set([...desired.keys(), ...current.keys()])) {
    const have = current.get(table) ?? { chains: new Set<string>(), jumps: new Map<string, number>() };
    const body = [...(desired.get(table) ?? [])];
    const keep = new Set(body.filter((l) => l.startsWith(":")).map((l) => l.slice(1).split(" ")[0]!));
    const jumps = wantedJumps.get(table) ?? [];
    for (const j of jumps) {
      const n = have.jumps.get(j) ?? 0;
      const [builtin, chain] = j.split(" ");
      if (n === 0) body.push(`-I ${builtin} 1 -j ${chain}`);
      for (let k = 1; k < n; k++) body.push(`-D ${builtin} -j ${chain}`);
    }
    const stale = [...have.chains].filter((c) => !keep.has(c));
    for (const [j, n] of have.jumps) {
      const [builtin, chain] = j.split(" ") as [string, string];
      if (!keep.has(chain)) for (let k = 0; k < n; k++) body.push(`-D ${builtin} -j ${chain}`);
    }
    for (const c of stale) body.push(`:${c} - [0:0]`, `-X ${c}`);
    if (body.length === 0) continue;
    // Declarations first: iptables-restore wants a chain declared before a rule uses it.
    out.push(`*${table}`, ...body.filter((l) => l.startsWith(":")), ...body.filter((l) => !l.startsWith(":")), "COMMIT");
  }
  return out.length ? `${out.join("\n")}\n` : "";
}
