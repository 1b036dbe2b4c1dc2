// The nft backend in the kernel: swarmgate owns `table inet swarmgate` and
// nothing else. Reading it is `nft list table`; every change is one `nft -f`
// transaction that declares, deletes and redefines that table (or only
// deletes it), so no other table — another tool's, or one iptables-nft made —
// is ever listed, flushed or re-created through nft's syntax.
import { TABLE_NAME } from "../compile/index.js";
import { userError } from "../errors.js";
import type { Ruleset } from "../ir/ruleset.js";
import type { KernelBackend, Owned, Step, StepOutput } from "./kernel-types.js";
import { emitNftTable } from "./nft.js";

const TABLE = `inet ${TABLE_NAME}`;
const COMMENT = /\bcomment "((?:[^"\\]|\\.)*)"\s*$/;
const COUNTER = /\bcounter packets (\d+) bytes (\d+)/;
const COUNTER_VALUES = /\bcounter packets \d+ bytes \d+/g;

/** nft says this, and exits 1, when the table does not exist. */
const isAbsent = (o: StepOutput) => o.code !== 0 && /No such file or directory/.test(o.stderr);

function parseOwned([listing]: readonly StepOutput[]): Owned {
  if (!listing || isAbsent(listing)) return { nft: "" };
  if (listing.code !== 0) throw userError("TOOL_FAILED", `nft could not list table ${TABLE}: ${listing.stderr.trim() || `exit status ${listing.code}`}`);
  return { nft: listing.stdout };
}

/** The elements of each named set, as the lines inside `set NAME { … }` say (nft may wrap a long list over several lines). */
export function setElementsOf(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let set: string | undefined;
  let collecting = false;
  let items: string[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    const open = /^set (\S+) \{$/.exec(line);
    if (open) { set = open[1]!; items = []; collecting = false; continue; }
    if (set === undefined) continue;
    if (!collecting && line.startsWith("elements = {")) { collecting = true; items.push(line.slice("elements = {".length)); }
    else if (collecting) items.push(line);
    if (collecting && line.endsWith("}")) collecting = false;
    if (!collecting && line === "}") {
      out.set(set, items.join(" ").replace(/\}\s*$/, "").split(",").map((e) => e.trim()).filter(Boolean).sort().join(", "));
      set = undefined;
    }
  }
  return out;
}

/** The text with every set's elements left out: two texts alike here differ at most in what their sets hold. */
function withoutElements(text: string): string {
  return text.replace(/(\n\s*set \S+ \{\n(?:[^\n]*\n)*?)\s*elements = \{[^}]*\}\n/g, "$1").replace(COUNTER_VALUES, "counter").trim();
}

/** Chains with their hook and policy, each rule by its intent, in order, and what each set holds. */
function signature(owned: Owned): Record<string, string[]> {
  const out: string[] = [];
  const elements = setElementsOf(owned.nft ?? "");
  for (const raw of (owned.nft ?? "").split("\n")) {
    const line = raw.trim();
    const chain = /^(chain|set|map) (\S+) \{$/.exec(line);
    if (chain) { out.push(`${chain[1]} ${chain[2]}`, ...(chain[1] === "set" ? [`  elements ${elements.get(chain[2]!) ?? ""}`] : [])); continue; }
    if (/^elements = /.test(line) || /^(type|flags) \S+$/.test(line) || /^[0-9][0-9, -]*\}?$/.test(line)) continue;
    const base = /^type (\S+) hook (\S+) .*policy (\S+);$/.exec(line);
    if (base) { out.push(`  ${base[1]} ${base[2]} policy ${base[3]}`); continue; }
    if (line === "" || line === "}" || line.startsWith("#") || /^table /.test(line)) continue;
    out.push(`  rule ${COMMENT.exec(line)?.[1] ?? line.replace(COUNTER, "counter")}`);
  }
  return { nft: out };
}

function counters(owned: Owned) {
  const out: { chain: string; rule: string; comment: string; packets: number; bytes: number }[] = [];
  let chain = "";
  for (const raw of (owned.nft ?? "").split("\n")) {
    const c = /^\s*chain (\S+) \{/.exec(raw);
    if (c) { chain = c[1]!; continue; }
    const m = COUNTER.exec(raw);
    if (!m) continue;
    const rule = raw.trim().replace(COUNTER, "counter");
    out.push({ chain, rule, comment: COMMENT.exec(raw)?.[1] ?? rule, packets: Number(m[1]), bytes: Number(m[2]) });
  }
  return out;
}

/**
 * The transaction that turns `from` into `to` when they differ only in their
 * sets' elements: each changed set flushed and refilled, all in one `nft -f`
 * (atomic: no packet sees the set empty). undefined when anything else
 * differs; "" when nothing does.
 */
function elementSwap(from: string, to: string): string | undefined {
  if (withoutElements(from) !== withoutElements(to)) return undefined;
  const before = setElementsOf(from);
  const lines: string[] = [];
  for (const [name, elements] of setElementsOf(to)) {
    if (before.get(name) === elements) continue;
    if (!/^[a-z][a-z0-9_]*$/.test(name) || !/^[0-9][0-9, -]*$/.test(elements)) return undefined; // only port sets swarmgate writes
    lines.push(`flush set ${TABLE} ${name}`, `add element ${TABLE} ${name} { ${elements} }`);
  }
  return lines.length ? `${lines.join("\n")}\n` : "";
}

/** The guarded moves between two texts that differ only in their port sets' elements (PortMover.steps). */
function portSteps(target: Owned, written: Owned): { forward: Step[]; back: Step[] } {
  const from = setElementsOf(written.nft ?? "");
  const forward: string[] = [];
  const back: string[] = [];
  for (const [name, want] of setElementsOf(target.nft ?? "")) {
    const had = from.get(name) ?? "";
    if (had === want) continue;
    if (!/^[a-z][a-z0-9_]*$/.test(name) || !/^[0-9][0-9, -]*$/.test(want) || !/^[0-9, -]*$/.test(had)) throw new Error(`not a port set swarmgate writes: ${name}`);
    // Deleting an element that is not there fails the whole transaction: that is the guard.
    const swap = (a: string, b: string) => [...(a ? [`delete element ${TABLE} ${name} { ${a} }`] : []), ...(b ? [`add element ${TABLE} ${name} { ${b} }`] : [])];
    forward.push(...swap(had, want));
    back.push(...swap(want, had));
  }
  const step = (lines: string[]): Step[] => (lines.length ? [{ command: "nft", args: ["-f", "-"], input: `${lines.join("\n")}\n` }] : []);
  return { forward: step(forward), back: step(back) };
}

export const nftKernel: KernelBackend = {
  name: "nft",
  tools: ["nft"],
  readSteps: [{ command: "nft", args: ["list", "table", "inet", TABLE_NAME] }],
  parseOwned,
  ownedOf: (ruleset: Ruleset) => ({ nft: ruleset.tables.map((t) => `${emitNftTable(t)}\n`).join("\n") }),
  empty: () => ({ nft: "" }),
  plan(target, current, written) {
    const want = target.nft ?? "";
    const plain = (t: string) => t.replace(COUNTER_VALUES, "counter").trim();
    if (plain(want) === plain(current.nft ?? "")) return []; // already so: no transaction
    const swap = written?.nft ? elementSwap(written.nft, want) : undefined;
    if (swap !== undefined) return swap === "" ? [] : [{ unit: "nft", step: { command: "nft", args: ["-f", "-"], input: swap } }];
    // Declaring the table first makes the delete valid whether or not it exists (nft(8), TABLES).
    const input = want.trim() === "" ? `table ${TABLE}\ndelete table ${TABLE}\n` : `table ${TABLE}\ndelete table ${TABLE}\n${want}`;
    return [{ unit: "nft", step: { command: "nft", args: ["-f", "-"], input } }];
  },
  onlyPortSetsDiffer: (target, written) => elementSwap(written.nft ?? "", target.nft ?? "") !== undefined,
  portMover: {
    steps: portSteps,
    withoutPorts: (owned) => withoutElements(owned.nft ?? ""),
    ports: (owned) => [...setElementsOf(owned.nft ?? "")].sort(([a], [b]) => a.localeCompare(b)).map(([n, e]) => `${n}: ${e}`).join("\n"),
  },
  signature,
  counters,
};
