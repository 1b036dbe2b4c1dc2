// The iptables backend in the kernel: swarmgate owns its SWARMGATE-* chains
// and the one jump into each from a built-in chain, per address family. Its
// objects are read out of iptables-save; every change is one
// `iptables-restore --noflush` commit per family that declares (and so
// empties) swarmgate's chains, refills them, adds each jump only when it is
// missing, and unhooks and deletes the SWARMGATE-* chains the target has not.
// Another tool's chain is never declared, flushed or rewritten.
import { userError } from "../errors.js";
import type { Ruleset } from "../ir/ruleset.js";
import { CHAIN_PREFIX, emitIptables } from "./iptables.js";
import type { KernelBackend, Owned, Step, StepOutput } from "./kernel-types.js";

const FAMILIES = [["v4", "iptables"], ["v6", "ip6tables"]] as const;
const COUNTS = /^\[(\d+):(\d+)\] /;
const COMMENT = /--comment (?:"((?:[^"\\]|\\.)*)"|(\S+))/;
/** A comment as written, without the backslashes iptables-save puts before quotes (it prints ' as \'). */
const unescapeComment = (text: string): string => text.replace(/\\(.)/g, "$1");

interface TableObjects { chains: string[]; rules: string[]; jumps: string[] }

/** swarmgate's lines of an iptables-save (or restore) text, by table; jumps as "BUILTIN CHAIN". */
function objects(text: string): Map<string, TableObjects> {
  const tables = new Map<string, TableObjects>();
  let current: TableObjects | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trimEnd();
    if (line.startsWith("*")) { current = { chains: [], rules: [], jumps: [] }; tables.set(line.slice(1), current); continue; }
    if (!current) continue;
    const decl = /^:(\S+) /.exec(line);
    if (decl?.[1]!.startsWith(CHAIN_PREFIX)) current.chains.push(decl[1]!);
    const body = line.replace(COUNTS, "");
    if (body.startsWith(`-A ${CHAIN_PREFIX}`)) current.rules.push(line);
    const jump = /^-[AI] (\S+)(?: 1)? -j (SWARMGATE-\S+)$/.exec(body);
    if (jump && !jump[1]!.startsWith(CHAIN_PREFIX)) current.jumps.push(`${jump[1]} ${jump[2]}`);
  }
  for (const [name, t] of tables) if (t.chains.length === 0 && t.jumps.length === 0) tables.delete(name);
  return tables;
}

/** The canonical text of swarmgate's objects: what a backup holds. */
function render(tables: Map<string, TableObjects>): string {
  const out: string[] = [];
  for (const [name, t] of tables) {
    out.push(`*${name}`, ...t.chains.map((c) => `:${c} - [0:0]`), ...t.rules, ...t.jumps.map((j) => `-A ${j.replace(" ", " -j ")}`), "COMMIT");
  }
  return out.length ? `${out.join("\n")}\n` : "";
}

const withoutCounts = (text: string) => text.split("\n").map((l) => l.replace(COUNTS, "")).join("\n");

function parseOwned(outputs: readonly StepOutput[]): Owned {
  const owned: Record<string, string> = {};
  FAMILIES.forEach(([unit, tool], i) => {
    const o = outputs[i];
    if (!o || o.code !== 0) throw userError("TOOL_FAILED", `${tool}-save failed: ${o?.stderr.trim() || `exit status ${o?.code}`}`);
    owned[unit] = render(objects(o.stdout));
  });
  return owned;
}

/** The restore input that turns `current` into `target` for one family; "" when both are empty. */
export function planFamily(target: string, current: string, written?: string): string {
  const want = objects(target);
  const have = objects(current);
  if (withoutCounts(render(want)) === withoutCounts(render(have))) return ""; // already so: no transaction
  // Compared with what swarmgate wrote (when the kernel holds just that), a rule the kernel spells its own way is no change.
  const was = written === undefined ? undefined : objects(written);
  const inPlace = was && replacements(was, have, true) === "" ? replacements(want, was) : replacements(want, have);
  if (inPlace !== undefined) return inPlace;
  const out: string[] = [];
  for (const table of new Set([...want.keys(), ...have.keys()])) {
    const w = want.get(table) ?? { chains: [], rules: [], jumps: [] };
    const h = have.get(table) ?? { chains: [], rules: [], jumps: [] };
    const keep = new Set(w.chains);
    const body: string[] = w.rules.map((r) => r.replace(COUNTS, ""));
    for (const j of new Set(w.jumps)) {
      const n = h.jumps.filter((x) => x === j).length;
      const [builtin, chain] = j.split(" ");
      if (n === 0) body.push(`-I ${builtin} 1 -j ${chain}`);
      for (let k = 1; k < n; k++) body.push(`-D ${builtin} -j ${chain}`);
    }
    for (const j of h.jumps) {
      const [builtin, chain] = j.split(" ");
      if (!keep.has(chain!) || !w.jumps.includes(j)) body.push(`-D ${builtin} -j ${chain}`);
    }
    const stale = h.chains.filter((c) => !keep.has(c));
    // Declaring a chain empties it; declarations go first, as iptables-restore wants them before use.
    const declared = [...w.chains, ...stale].map((c) => `:${c} - [0:0]`);
    if (declared.length === 0 && body.length === 0) continue;
    out.push(`*${table}`, ...declared, ...body, ...stale.map((c) => `-X ${c}`), "COMMIT");
  }
  return out.length ? `${out.join("\n")}\n` : "";
}

/** A table's rules by chain, each without its counters, in order. */
function rulesByChain(t: TableObjects): Map<string, string[]> {
  const out = new Map<string, string[]>(t.chains.map((c) => [c, []]));
  for (const r of t.rules) {
    const body = r.replace(COUNTS, "");
    out.get(body.split(" ")[1]!)?.push(body);
  }
  return out;
}

/**
 * When `want` has the chains, jumps and number of rules `have` has, the rules
 * that differ are replaced where they stand (-R CHAIN N): a client's port that
 * moved costs two rules, and every other rule keeps its counters. undefined
 * when the shape differs (then the chains are redeclared and refilled).
 */
function replacements(want: Map<string, TableObjects>, have: Map<string, TableObjects>, shapeOnly = false): string | undefined {
  if (want.size !== have.size) return undefined;
  const out: string[] = [];
  for (const [table, w] of want) {
    const h = have.get(table);
    if (!h || w.chains.join(" ") !== h.chains.join(" ") || [...w.jumps].sort().join("|") !== [...h.jumps].sort().join("|")) return undefined;
    const wr = rulesByChain(w);
    const hr = rulesByChain(h);
    const lines: string[] = [];
    for (const [chain, rules] of wr) {
      const old = hr.get(chain)!;
      if (old.length !== rules.length) return undefined;
      if (!shapeOnly) rules.forEach((r, i) => { if (r !== old[i]) lines.push(r.replace(/^-A (\S+) /, `-R $1 ${i + 1} `)); });
    }
    if (lines.length) out.push(`*${table}`, ...lines, "COMMIT");
  }
  return out.length ? `${out.join("\n")}\n` : "";
}

/** The words every rule of a client's followed port carries (compile/clients.ts): "(set client_0_ports)". */
const PORT_SET_RULE = /\(set client_\d+_ports\)/;

/** Whether `target` has the shape of `written`, and differs only in rules of followed client ports. */
function onlyPortSetsDiffer(target: Owned, written: Owned): boolean {
  return FAMILIES.every(([unit]) => {
    const want = objects(target[unit] ?? "");
    const had = objects(written[unit] ?? "");
    if (replacements(want, had) === undefined) return false;
    for (const [table, w] of want) {
      const before = rulesByChain(had.get(table)!);
      for (const [chain, rules] of rulesByChain(w)) {
        if (rules.some((r, i) => r !== before.get(chain)![i] && !(PORT_SET_RULE.test(r) && PORT_SET_RULE.test(before.get(chain)![i]!)))) return false;
      }
    }
    return true;
  });
}

function signature(owned: Owned): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [unit] of FAMILIES) {
    const lines: string[] = [];
    for (const [table, t] of objects(owned[unit] ?? "")) {
      for (const chain of [...t.chains].sort()) {
        lines.push(`${table} chain ${chain}`);
        for (const r of t.rules.map((x) => x.replace(COUNTS, "")).filter((x) => x.startsWith(`-A ${chain} `))) {
          const c = COMMENT.exec(r);
          lines.push(`  rule ${c ? unescapeComment(c[1] ?? c[2]!) : r} ${/ -j (\S+)/.exec(r)?.[1] ?? ""}`);
        }
      }
      lines.push(...t.jumps.map((j) => `${table} jump ${j}`).sort());
    }
    out[unit] = lines;
  }
  return out;
}

function counters(owned: Owned) {
  const out: { chain: string; rule: string; comment: string; packets: number; bytes: number }[] = [];
  for (const [unit] of FAMILIES) {
    for (const t of objects(owned[unit] ?? "").values()) {
      for (const line of t.rules) {
        const m = COUNTS.exec(line);
        const rule = line.replace(COUNTS, "");
        const c = COMMENT.exec(rule);
        out.push({ chain: rule.split(" ")[1]!, rule, comment: c ? unescapeComment(c[1] ?? c[2]!) : rule, packets: Number(m?.[1] ?? 0), bytes: Number(m?.[2] ?? 0) });
      }
    }
  }
  return out;
}

const restore = (tool: string, input: string): Step => ({ command: `${tool}-restore`, args: ["-w", "--noflush"], input });

export const iptablesKernel: KernelBackend = {
  name: "iptables",
  tools: ["iptables-save", "iptables-restore", "ip6tables-save", "ip6tables-restore"],
  readSteps: FAMILIES.map(([, tool]) => ({ command: `${tool}-save`, args: ["-c"] })),
  parseOwned,
  ownedOf: (ruleset: Ruleset) => Object.fromEntries(FAMILIES.map(([unit], i) => [unit, render(objects(emitIptables(ruleset, i === 0 ? 4 : 6)))])),
  empty: () => ({ v4: "", v6: "" }),
  plan(target, current, written) {
    return FAMILIES.flatMap(([unit, tool]) => {
      const input = planFamily(target[unit] ?? "", current[unit] ?? "", written?.[unit]);
      return input ? [{ unit, step: restore(tool, input) }] : [];
    });
  },
  onlyPortSetsDiffer,
  signature,
  counters,
};
