// status and diff: what swarmgate has loaded, whether it still equals what
// the policy compiles to, each rule's counters beside its origin, and what an
// apply would change.
import type { Ruleset } from "../ir/ruleset.js";
import { live, loadedBackend, type Backend } from "./kernel.js";
import { expectedReadback, normalize } from "./readback.js";

export interface RuleCount { chain: string; rule: string; intent: string; packets: number; bytes: number }

export interface Status {
  loaded: boolean;
  backend?: Backend;
  /** undefined when there is no policy to compare with. */
  drift?: { inSync: boolean; missing: string[]; unexpected: string[] };
  rules: RuleCount[];
}

const intentOf = (line: string) => /comment "([^"]*)"/.exec(line)?.[1] ?? line.trim();

/** Each rule of the live listing with its packet and byte counters. */
export function countRules(backend: Backend, text: string): RuleCount[] {
  const out: RuleCount[] = [];
  let chain = "";
  for (const line of text.split("\n")) {
    if (backend === "nft") {
      const c = /^\s*chain (\S+) \{/.exec(line);
      if (c) { chain = c[1]!; continue; }
      const m = /counter packets (\d+) bytes (\d+)/.exec(line);
      if (m) out.push({ chain, rule: line.trim().replace(/counter packets \d+ bytes \d+/, "counter"), intent: intentOf(line), packets: Number(m[1]), bytes: Number(m[2]) });
    } else {
      const m = /^\[(\d+):(\d+)\] -A (SWARMGATE-\S+) (.*)$/.exec(line);
      if (m) out.push({ chain: m[3]!, rule: `-A ${m[3]} ${m[4]}`, intent: intentOf(line), packets: Number(m[1]), bytes: Number(m[2]) });
    }
  }
  return out;
}

export async function status(ruleset?: Ruleset): Promise<Status> {
  const backend = await loadedBackend();
  if (!backend) return { loaded: false, rules: [], ...(ruleset && { drift: { inSync: false, missing: ["(swarmgate is not loaded)"], unexpected: [] } }) };
  const text = (await live(backend)) ?? "";
  const result: Status = { loaded: true, backend, rules: countRules(backend, text) };
  if (ruleset) {
    const d = diffLines(normalize(await expectedReadback(backend, ruleset)), normalize(text));
    result.drift = { inSync: d.added.length === 0 && d.removed.length === 0, missing: d.added, unexpected: d.removed };
  }
  return result;
}

/** Lines to add and remove to turn `from` into `to`, in order (longest common subsequence). */
export function diffLines(to: string[], from: string[]): { added: string[]; removed: string[]; script: { op: "+" | "-" | " "; line: string }[] } {
  const n = from.length;
  const m = to.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) {
    lcs[i]![j] = from[i] === to[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  }
  const script: { op: "+" | "-" | " "; line: string }[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && from[i] === to[j]) { script.push({ op: " ", line: from[i]! }); i++; j++; }
    else if (j < m && (i >= n || lcs[i]![j + 1]! >= lcs[i + 1]![j]!)) { script.push({ op: "+", line: to[j]! }); j++; }
    else { script.push({ op: "-", line: from[i]! }); i++; }
  }
  return { added: script.filter((s) => s.op === "+").map((s) => s.line), removed: script.filter((s) => s.op === "-").map((s) => s.line), script };
}

export interface PlannedChange { op: "+" | "-"; line: string; intent: string }

/** What apply would change, rule by rule, against what is loaded now. */
export async function planChanges(ruleset: Ruleset, backend: Backend): Promise<PlannedChange[]> {
  const now = (await live(backend)) ?? "";
  const d = diffLines(normalize(await expectedReadback(backend, ruleset)), normalize(now));
  // Rules only: the table and chain lines around them are the same for every policy.
  return d.script.filter((s) => s.op !== " " && /comment "|^-A /.test(s.line))
    .map((s) => ({ op: s.op as "+" | "-", line: s.line.trim(), intent: intentOf(s.line) }));
}
