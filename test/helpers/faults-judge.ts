// Whether what swarmgate printed and its exit status match what the kernel
// holds, and whether the next swarmgate command brings the kernel to a state
// consistent with both.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { printed, swarmgateIn, type CliResult } from "./faults-run.js";
import { transaction, type Scenario } from "./faults-scenarios.js";
import { judge, type Trial } from "./faults-trial.js";
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
export function inForceProblems(t: Trial, text: string, before: Label, target: Label, label: Label | undefined, settings: Record<string, string>): string[] {
  const m = /In force now: (.*?)\. The transaction|In force now: (.*?)$/m.exec(text);
  if (!m) return [];
  const out: string[] = [];
  for (const part of (m[1] ?? m[2]!).split(", ")) {
    const own = new RegExp(`^${t.backend}: (.*)$`).exec(part);
    if (own) {
      const claimed = own[1] === "the previous objects" ? before : own[1] === "the new objects" ? target : undefined;
      if (claimed !== undefined && claimed !== label) out.push(`the message says "${part}" (${claimed}); the kernel holds ${label ?? "a mix"}`);
    }
    const kv = /^([a-z0-9_.]+)=(\S+)$/.exec(part);
    if (kv && settings[kv[1]!] !== kv[2]) out.push(`the message says ${part}; the kernel has ${settings[kv[1]!]}`);
  }
  return out;
}

export interface NextCommand { args: string[]; expect(recovered: Label): { label: Label; exit: number } }

export const STATUS: NextCommand = { args: ["status"], expect: (l) => ({ label: l, exit: l === "none" ? 1 : 0 }) };

/** What a journal left in the state directory will be turned into by the next command. */
export function recoveryOf(t: Trial, s: Scenario): { label: Label; op: string } | undefined {
  const file = join(t.sd, "journal.json");
  if (!existsSync(file)) return undefined;
  try {
    const j = JSON.parse(readFileSync(file, "utf8")) as { op: string };
    const tx = transaction(s, j.op);
    return { label: tx.recovery === "undo" ? tx.before : tx.target, op: j.op };
  } catch {
    return { label: "none", op: "unreadable journal" };
  }
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
  if (pending && !/interrupted/.test(r.stderr)) problems.push(`the next command finished a journaled ${pending.op} without saying so`);
  if (next === STATUS && want.label !== "none" && !new RegExp(`in sync with \\S*${POLICY[want.label]}`).test(r.stdout)) problems.push(`status does not say it is in sync with ${POLICY[want.label]}, which is in force`);
  return { problems, output };
}
