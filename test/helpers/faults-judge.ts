// Whether what swarmgate printed and its exit status match what the kernel
// holds, and whether the next swarmgate command brings the kernel to a state
// consistent with both.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { printed, swarmgateIn, type CliResult } from "./faults-run.js";
import { transaction, type Scenario } from "./faults-scenarios.js";
import type { Units } from "./faults-kernel.js";
import { judge, unitLabels, type Trial } from "./faults-trial.js";
import { POLICY, type Label } from "./faults-world.js";

/** The one JSON object a --json run prints, or a problem. */
function jsonOf(r: CliResult): { value?: Record<string, unknown>; problem?: string } {
  try {
    const value = JSON.parse(r.stdout) as unknown;
    if (typeof value !== "object" || value === null || Array.isArray(value)) return { problem: "--json printed something that is not one object" };
    return { value: value as Record<string, unknown> };
  } catch {
    return { problem: `--json did not print exactly one JSON object: ${JSON.stringify(r.stdout.slice(0, 200))}` };
  }
}

const codesOf = (v: Record<string, unknown>) => ((v.errors as { code?: string }[] | undefined) ?? []).map((e) => e.code);

/** Exit status and words against the kernel: 0 ⇒ new, 2 ⇒ old with a code, 3 ⇒ old, 4 ⇒ says what is in force. */
export function outputProblems(s: Scenario, r: CliResult, json: boolean, label: Label | undefined): string[] {
  const out: string[] = [];
  const j = json ? jsonOf(r) : {};
  if (j.problem) out.push(j.problem);
  const text = `${r.stdout}\n${r.stderr}`;
  const was = (want: Label) => { if (label !== want) out.push(`exit ${r.code} says ${want === s.new ? "the new" : "the old"} state (${want}) is in force, the kernel holds ${label ?? "a mix"}`); };
  if (r.code === 0) {
    was(s.new);
    if (j.value && j.value.ok !== true) out.push("exit 0 with ok other than true");
  } else if (r.code === 2) {
    was(s.old);
    if (j.value && (j.value.ok !== false || codesOf(j.value).length === 0)) out.push("exit 2 without {ok:false, errors:[{code}]}");
    if (!json && !/error\[[A-Z_]+\]/.test(r.stderr)) out.push("exit 2 without an error code on stderr");
  } else if (r.code === 3 && s.confirm) {
    was(s.old);
    if (j.value && j.value.ok !== false) out.push("exit 3 with ok other than false");
  } else if (r.code === 4) {
    if (!/in force/i.test(text)) out.push("exit 4 does not say what is in force");
    if (j.value && j.value.ok !== false) out.push("exit 4 with ok other than false");
  } else {
    out.push(`unexpected exit ${r.code}${r.signal ? ` (${r.signal})` : ""}`);
  }
  return out;
}

/**
 * "In force now: nft: the previous objects, iptables: the new objects, k=v, …":
 * each part must be true of the kernel. `before` is the state the failed
 * transaction started from.
 */
export function inForceProblems(t: Trial, text: string, before: Label, target: Label, units: Units, settings: Record<string, string>): string[] {
  const m = /In force now: (.*?)\. The transaction|In force now: (.*?)$/m.exec(text);
  if (!m) return [];
  const out: string[] = [];
  // The message speaks per backend: the nft table, or both iptables families together.
  const mine = t.backend === "nft" ? (["nft"] as const) : (["v4", "v6"] as const);
  const holds = (l: Label) => mine.every((u) => t.world.refs[t.backend][l].units[u] === units[u]);
  for (const part of (m[1] ?? m[2]!).split(", ")) {
    const own = new RegExp(`^${t.backend}: (.*)$`).exec(part);
    const claimed = own?.[1] === "the previous objects" ? before : own?.[1] === "the new objects" ? target : undefined;
    if (claimed !== undefined && !holds(claimed)) out.push(`the message says "${part}" (${claimed}); the kernel holds ${unitLabels(t, units)}`);
    if (own?.[1] === "a mix of both" && (holds(before) || holds(target))) out.push(`the message says "${part}"; the kernel holds ${unitLabels(t, units)}`);
    const kv = /^([a-z0-9_.]+)=(\S+)$/.exec(part);
    if (kv && settings[kv[1]!] !== kv[2]) out.push(`the message says ${part}; the kernel has ${settings[kv[1]!]}`);
  }
  return out;
}

export interface NextCommand { args: string[]; expect(recovered: Label): { label: Label; exit: number } }

export const STATUS: NextCommand = { args: ["status"], expect: (l) => ({ label: l, exit: l === "none" ? 1 : 0 }) };

/**
 * What the state directory tells the next command to finish: a journal (an
 * apply is undone, anything else completed), or an expired confirmation whose
 * restore has not happened or failed (it restores the old state, and says so).
 */
export function recoveryOf(t: Trial, s: Scenario): { label: Label; op: string; says: RegExp } | undefined {
  const file = join(t.sd, "journal.json");
  if (existsSync(file)) {
    try {
      const j = JSON.parse(readFileSync(file, "utf8")) as { op: string };
      const tx = transaction(s, j.op);
      return { label: tx.recovery === "undo" ? tx.before : tx.target, op: `journaled ${j.op}`, says: /interrupted/ };
    } catch {
      return { label: "none", op: "unreadable journal", says: /interrupted/ };
    }
  }
  const pending = join(t.sd, "pending.json");
  if (!existsSync(pending)) return undefined;
  const p = JSON.parse(readFileSync(pending, "utf8")) as { confirmed?: boolean; deadline: number };
  if (p.confirmed || Date.now() < p.deadline) return undefined;
  return { label: s.old, op: "expired confirmation", says: /expired|retrying/ };
}

/** Runs the next command (real tools, no fault) and checks the kernel and its words after it. */
export async function afterNext(t: Trial, s: Scenario, now: Label | undefined, next: NextCommand = STATUS): Promise<{ problems: string[]; output: string }> {
  const pending = recoveryOf(t, s);
  const recovered = pending?.label ?? now;
  const args = [...next.args, "--state-dir", t.sd];
  const r = await swarmgateIn(t.ns, args, {});
  const output = printed("next command", args, r);
  if (recovered === undefined) return { problems: ["the kernel held a mix of states and no journal was left to finish it"], output };
  const want = next.expect(recovered);
  const j = await judge(t, [want.label]);
  const problems = j.problems.map((p) => `after the next command: ${p}`);
  if (r.code !== want.exit) problems.push(`the next command (${next.args[0]}) exited ${r.code}, expected ${want.exit} with ${want.label} in force`);
  if (pending && !pending.says.test(r.stderr)) problems.push(`the next command finished an ${pending.op} without saying so`);
  if (next === STATUS && want.label !== "none" && !new RegExp(`in sync with \\S*${POLICY[want.label]}`).test(r.stdout)) problems.push(`status does not say it is in sync with ${POLICY[want.label]}, which is in force`);
  return { problems, output };
}
