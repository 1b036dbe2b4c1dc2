// kill -9 at random moments: of apply, stop and rollback while they run, and
// of the confirmation timer. The moment is chosen by a seeded PRNG as "after
// the c-th tool call, plus a few milliseconds" (c = 0: during start-up), so the
// kills spread over every step of the command, not only over Node's start-up.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterNext, outputProblems, STATUS, type NextCommand } from "./faults-judge.js";
import { faultEnv, totalCalls } from "./faults-tools.js";
import { countingRun } from "./faults-matrix.js";
import { prng, printed, sleep, slot, start, type CliResult } from "./faults-run.js";
import { SCENARIOS, type Scenario } from "./faults-scenarios.js";
import { judge, report, settled, withTrial, type Trial } from "./faults-trial.js";
import { POLICY, type Backend, type Label, type World } from "./faults-world.js";

export type Victim = "apply" | "stop" | "rollback" | "timer";

const byName = (n: string) => SCENARIOS.find((s) => s.name === n)!;

function scenarioFor(victim: Victim, rnd: () => number): Scenario {
  if (victim === "timer") return SCENARIOS.find((s) => s.confirm === "timeout")!;
  if (victim === "stop") return byName("stop");
  if (victim === "rollback") return byName("rollback");
  return [byName("apply on a clean machine"), byName("apply gateway → host"), byName("apply host → gateway")][Math.floor(rnd() * 3)]!;
}

/** The timer's apply has a short window, so that the kill falls before, at or after the deadline. */
const argsFor = (t: Trial, s: Scenario) => {
  if (s.confirm === "timeout") return ["apply", POLICY.gateway, "-b", t.backend, "--confirm", "1", "--state-dir", t.sd];
  if (s.op === "apply") return ["apply", POLICY[s.new as "gateway" | "standalone"], "-b", t.backend, "--state-dir", t.sd];
  return [s.op, "--state-dir", t.sd];
};

/** The next command: mostly status; sometimes apply, stop or confirm. */
function nextFor(backend: Backend, rnd: () => number): NextCommand {
  const x = rnd();
  if (x < 0.5) return STATUS;
  if (x < 0.7) {
    const p: Label = rnd() < 0.5 ? "gateway" : "standalone";
    return { args: ["apply", POLICY[p as "gateway"], "-b", backend], expect: () => ({ label: p, exit: 0 }) };
  }
  if (x < 0.9) return { args: ["stop"], expect: () => ({ label: "none", exit: 0 }) };
  return { args: ["confirm"], expect: (l) => ({ label: l, exit: 2 }) };
}

const timerPid = (sd: string): number | undefined => {
  try { return (JSON.parse(readFileSync(join(sd, "pending.json"), "utf8")) as { timerPid?: number }).timerPid; } catch { return undefined; }
};

/** Waits until `calls` tool calls have been made (and the victim exists), then `ms` more; false if the command ended first. */
async function waitForMoment(t: Trial, done: () => boolean, calls: number, ms: number, victim: () => number | undefined): Promise<number | undefined> {
  while (!done() && (totalCalls(t.countDir) < calls || victim() === undefined)) await sleep(8);
  await sleep(ms);
  return done() ? undefined : victim();
}

export interface KillOutcome { failure?: string; journal: boolean; killed: boolean }

async function killTrial(t: Trial, victim: Victim, s: Scenario, rnd: () => number, total: number, what: string): Promise<KillOutcome> {
  const args = argsFor(t, s);
  const run = start(t.ns, args, faultEnv(t.countDir));
  let ended: CliResult | undefined;
  void run.done.then((r) => { ended = r; });
  const calls = Math.floor(rnd() * (total + 1));
  const pid = await waitForMoment(t, () => ended !== undefined, calls, calls === 0 ? rnd() * 600 : rnd() * 30, victim === "timer" ? () => timerPid(t.sd) : () => run.child.pid);
  if (pid !== undefined) try { process.kill(pid, "SIGKILL"); } catch { /* it ended just now */ }
  t.notes.push(`${what}: kill -9 of the ${victim} (pid ${pid ?? "none: it had ended"}) after ${calls} tool calls`);
  const main = victim === "timer" || pid === undefined ? await run.done : undefined;
  const problems: string[] = [];
  if (!(await settled(t.ns, 5000))) problems.push("processes stayed running in the namespace after the kill");
  const journal = existsSync(join(t.sd, "journal.json"));
  const j = await judge(t, [s.old, s.new], journal && main === undefined);
  problems.push(...j.problems, ...(main ? outputProblems(s, main, false, j.label) : []));
  const next = await afterNext(t, s, j.label, nextFor(t.backend, rnd));
  problems.push(...next.problems);
  const outputs = [printed("killed", args, main ?? (await run.done)), next.output];
  return { journal, killed: pid !== undefined, ...(problems.length && { failure: await report(t, what, problems, outputs) }) };
}

/** One seeded trial: which scenario, when to kill, which command comes next all follow from the seed. */
export async function killOne(world: World, backend: Backend, victim: Victim, seed: number): Promise<KillOutcome> {
  const rnd = prng(seed);
  const s = scenarioFor(victim, rnd);
  const what = `kill -9 of ${victim} (${s.name}), seed ${seed}`;
  const counting = await countingRun(world, backend, s);
  const total = Object.values(counting.counts).reduce((a, b) => a + b, 0);
  return slot(() => withTrial(world, backend, s.setup, (t) => killTrial(t, victim, s, rnd, total, what)));
}
