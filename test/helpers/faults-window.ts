// A confirmation window during which other tools change their rules: an
// element joins the foreign nft set, a new nft table appears, fail2ban bans an
// address in its iptables-nft chain. When the window times out, swarmgate puts
// back only its own objects: all three changes are still there, and
// iptables-save still reads the tables. Variants: the timer is killed in the
// window (the waiting apply takes over), or the state directory fills up.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterNext, outputProblems } from "./faults-judge.js";
import { changeForeign } from "./faults-foreign.js";
import { observe } from "./faults-kernel.js";
import { printed, sleep, slot, start } from "./faults-run.js";
import { SCENARIOS } from "./faults-scenarios.js";
import { withTmpfs } from "./faults-statedir.js";
import { judge, labelOf, report, settled, withTrial, type Trial } from "./faults-trial.js";
import { POLICY, type Backend, type World } from "./faults-world.js";

export type WindowVariant = "timeout" | "timer killed" | "state directory full";
export const WINDOW_VARIANTS: readonly WindowVariant[] = ["timeout", "timer killed", "state directory full"];

const TIMEOUT = SCENARIOS.find((s) => s.confirm === "timeout")!;

/** Waits until the apply says the window is open (and the new objects are in force). */
async function windowOpen(t: Trial, stderr: () => string, ended: () => boolean): Promise<boolean> {
  while (!ended() && !stderr().includes("within")) await sleep(20);
  return !ended() && labelOf(t, (await observe(t.ns)).units) === "gateway";
}

const timerPid = (sd: string) => (JSON.parse(readFileSync(join(sd, "pending.json"), "utf8")) as { timerPid?: number }).timerPid;

async function inWindow(t: Trial, variant: WindowVariant, use: (room: { bytes: number }) => Promise<void>, free: () => Promise<void>): Promise<string[]> {
  const args = ["apply", POLICY.gateway, "-b", t.backend, "--confirm", "3", "--state-dir", t.sd];
  const run = start(t.ns, args, {});
  let ended = false;
  void run.done.then(() => { ended = true; });
  const problems: string[] = [];
  if (!(await windowOpen(t, run.stderr, () => ended))) problems.push("the window never opened with the new objects in force");
  const changes = await changeForeign(t.ns);
  t.foreign = (await observe(t.ns)).foreign; // what the foreign tools last wrote
  if (variant === "timer killed" && existsSync(join(t.sd, "pending.json"))) process.kill(timerPid(t.sd)!, "SIGKILL");
  if (variant === "state directory full") await use({ bytes: 0 });
  const main = await run.done;
  await settled(t.ns, 3000);
  const j = await judge(t, [TIMEOUT.old, TIMEOUT.new]);
  problems.push(...j.problems, ...outputProblems(TIMEOUT, main, false, j.label));
  for (const c of changes) if (!j.observed.foreign.includes(c)) problems.push(`the foreign change "${c}" made in the window is gone`);
  if (variant !== "state directory full" && main.code !== 3) problems.push(`exit ${main.code}, not 3 (not confirmed, the previous state restored)`);
  await free();
  const next = await afterNext(t, TIMEOUT, j.label);
  problems.push(...next.problems);
  return problems.length ? [await report(t, `foreign rules change during a --confirm window (${variant})`, problems, [printed("apply --confirm 3", args, main), next.output])] : [];
}

export function windowTrial(world: World, backend: Backend, variant: WindowVariant): Promise<string[]> {
  return slot(() => withTrial(world, backend, TIMEOUT.setup, (t) => withTmpfs(t, (dir, use, free) => inWindow({ ...t, sd: dir }, variant, use, free))));
}
