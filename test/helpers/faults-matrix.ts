// One trial of the tool-fault matrix: a scenario run with call N of one tool
// failing (or with counting only), judged after the command and again after
// the next swarmgate command.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { callCounts, faultEnv, FAULT_TOOLS, type Fault, type FaultTool } from "./faults-tools.js";
import { afterNext, inForceProblems, outputProblems } from "./faults-judge.js";
import { transaction, type Scenario } from "./faults-scenarios.js";
import { slot } from "./faults-run.js";
import { judge, report, settled, withTrial, type Trial } from "./faults-trial.js";
import type { Backend, World } from "./faults-world.js";

export interface TrialResult { failure?: string; counts: Record<FaultTool, number>; exit: number | null }

/** Which transaction an exit 4 is about: the timer's restore says "not kept", "rollback failed". */
function failedTransaction(s: Scenario, text: string) {
  return transaction(s, s.confirm === "timeout" && /not kept|rollback failed/.test(text) ? "timeout" : s.op);
}

async function judged(t: Trial, s: Scenario, fault: Fault | undefined, json: boolean): Promise<TrialResult> {
  const ran = await s.run(t, faultEnv(t.countDir, fault), json);
  const problems: string[] = [];
  // The confirmation timer ends with the apply that waits for it; anything still running could change the kernel later.
  if (!(await settled(t.ns, 3000))) problems.push("a process stayed running in the namespace after the command ended");
  const counts = callCounts(t.countDir);
  // ROLLBACK_FAILED leaves a journal over a kernel that may be midway (each unit old or new); the next command finishes it.
  const midway = ran.main.code === 4 && existsSync(join(t.sd, "journal.json"));
  const j = await judge(t, [s.old, s.new], midway);
  problems.push(...j.problems, ...outputProblems(s, ran.main, json, j.label));
  if (ran.main.code === 4) {
    const tx = failedTransaction(s, `${ran.main.stdout}\n${ran.main.stderr}`);
    problems.push(...inForceProblems(t, `${ran.main.stdout}\n${ran.main.stderr}`, tx.before, tx.target, j.observed.units, j.observed.settings));
  }
  const next = await afterNext(t, s, j.label);
  problems.push(...next.problems);
  const what = `${s.name}${json ? " --json" : ""}, ${fault ? `fault: ${fault.tool} fails on call ${fault.n}` : "no fault (counting run)"}`;
  if (fault === undefined && ran.main.code !== (s.confirm === "timeout" ? 3 : 0)) problems.push(`the run without a fault exited ${ran.main.code}`);
  return { counts, exit: ran.main.code, ...(problems.length && { failure: await report(t, what, problems, [...ran.outputs, next.output]) }) };
}

/** One trial, in its turn among all the file's trials. */
export function faultTrial(world: World, backend: Backend, s: Scenario, fault: Fault | undefined, json: boolean): Promise<TrialResult> {
  return slot(() => withTrial(world, backend, s.setup, (t) => judged(t, s, fault, json)));
}

const counted = new Map<string, Promise<TrialResult>>();

/** The run without a fault that counts each tool's calls; once per backend and scenario. */
export function countingRun(world: World, backend: Backend, s: Scenario): Promise<TrialResult> {
  const key = `${backend}:${s.name}`;
  if (!counted.has(key)) counted.set(key, faultTrial(world, backend, s, undefined, false));
  return counted.get(key)!;
}

/** Every tool and every call number the counting run reached. */
export function faultsFor(counts: Record<FaultTool, number>): Fault[] {
  return FAULT_TOOLS.flatMap((tool) => Array.from({ length: counts[tool] }, (_, i) => ({ tool, n: i + 1 })));
}
