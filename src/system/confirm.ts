// apply --confirm (like netplan try, or "commit confirmed"): a detached timer
// process — in its own session, so it outlives the user's terminal and even a
// SIGKILLed apply, and in the network namespace apply ran in — restores the
// backup taken before the apply unless `swarmgate confirm` comes first. What
// it did is written to confirm-result.json, and only what it did: a restore
// that failed is reported as failed. A timer that dies is replaced: the
// waiting apply takes its place, and any later swarmgate command settles an
// expired confirmation itself.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import type { KernelBackend } from "../backend/kernel-types.js";
import { userError, type SwarmgateError } from "../errors.js";
import { requireRoot, restoreBackup, withState } from "./apply.js";
import { processAlive } from "./run.js";
import type { Log } from "./transaction.js";
import { StateDir, type ConfirmResult, type Pending } from "./state.js";

const DAY = 24 * 3600_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function spawnTimer(state: StateDir, token: string): number | undefined {
  const main = fileURLToPath(new URL("../cli/main.js", import.meta.url));
  const timer = spawn(process.execPath, [main, "confirm-timer", "--state-dir", state.dir, "--token", token], { detached: true, stdio: "ignore" });
  timer.unref();
  return timer.pid;
}

/** Records the confirmation and starts its timer; called under the lock, before the apply's transaction. */
export function startConfirmation(state: StateDir, backup: string, seconds: number, policy: string): Pending {
  const pending: Pending = { token: randomBytes(8).toString("hex"), backup, deadline: Date.now() + seconds * 1000, confirmed: false, policy };
  state.remove("confirm-result.json");
  state.write("pending.json", pending);
  const timerPid = spawnTimer(state, pending.token);
  const withPid = { ...pending, ...(timerPid && { timerPid }) };
  state.write("pending.json", withPid);
  return withPid;
}

function finish(state: StateDir, token: string, outcome: ConfirmResult["outcome"], message?: string): ConfirmResult {
  const result: ConfirmResult = { token, outcome, ...(message && { message }), at: new Date().toISOString() };
  state.write("confirm-result.json", result);
  // A failed restore keeps the confirmation: the next swarmgate command tries again.
  if (outcome === "rollback failed") state.write("pending.json", { ...state.read<Pending>("pending.json"), failed: message ?? "failed" });
  else state.remove("pending.json");
  return result;
}

/** At the deadline, under the lock: the restore, and a result that says what really happened. */
async function timeout(state: StateDir, backends: readonly KernelBackend[], pending: Pending, log?: Log): Promise<ConfirmResult> {
  try {
    await restoreBackup(state, backends, pending.backup, "timeout");
    log?.(`not confirmed in time: restored ${pending.backup}`);
    return finish(state, pending.token, "rolled back");
  } catch (e) {
    const err = e as SwarmgateError;
    return finish(state, pending.token, "rollback failed", `${err.code ?? "INTERNAL"}: ${err.message}`);
  }
}

/**
 * Every command that holds the lock calls this first: a confirmation whose
 * timer is gone is finished (confirmed, or restored when its deadline has
 * passed) or given a new timer.
 */
export async function settlePending(state: StateDir, backends: readonly KernelBackend[], log?: Log): Promise<void> {
  const p = state.read<Pending>("pending.json");
  // A timer whose restore failed has finished (we hold the lock it held): retry now, alive or not.
  if (!p || (!p.failed && p.timerPid !== undefined && processAlive(p.timerPid))) return;
  if (p.confirmed) { finish(state, p.token, "confirmed"); return; }
  if (Date.now() >= p.deadline) {
    log?.(p.failed ? `retrying the restore that failed when the confirmation of ${p.policy} expired` : `the confirmation of ${p.policy} expired while its timer was not running`);
    const r = await timeout(state, backends, p, log);
    if (r.outcome === "rollback failed") throw userError("ROLLBACK_FAILED", `restoring ${p.backup} after the confirmation expired failed: ${r.message}`);
    return;
  }
  const timerPid = spawnTimer(state, p.token);
  state.write("pending.json", { ...p, ...(timerPid && { timerPid }) });
  log?.("the confirmation timer was not running; started a new one");
}

/** The timer: sleeps until the deadline, then restores unless confirmed. */
export async function runTimer(state: StateDir, token: string): Promise<void> {
  for (;;) {
    const p = state.read<Pending>("pending.json");
    if (!p || p.token !== token) return; // the apply failed, or stop/rollback ended it
    if (p.confirmed) { finish(state, token, "confirmed"); return; }
    if (Date.now() >= p.deadline) break;
    await sleep(Math.min(200, p.deadline - Date.now()));
  }
  // The restore takes the lock like every change, and waits as long as it must: it may not give up.
  await withState(state.dir, { waitMs: DAY }, async (s, backends) => {
    const p = s.read<Pending>("pending.json");
    if (!p || p.token !== token) return;
    if (p.confirmed) { finish(s, token, "confirmed"); return; }
    await timeout(s, backends, p);
  });
}

/** The waiting apply: the timer's verdict; if the timer dies, this process does its work. */
export async function awaitOutcome(state: StateDir, pending: Pending): Promise<ConfirmResult> {
  for (;;) {
    const result = state.read<ConfirmResult>("confirm-result.json");
    if (result?.token === pending.token) return result;
    const p = state.read<Pending>("pending.json");
    if (!p || p.token !== pending.token) {
      await sleep(50); // the result is written before the pending record goes
      return state.read<ConfirmResult>("confirm-result.json") ?? { token: pending.token, outcome: "cancelled", message: "the confirmation ended without a result", at: new Date().toISOString() };
    }
    if (p.timerPid !== undefined && !processAlive(p.timerPid)) {
      await runTimer(state, pending.token);
      continue;
    }
    await sleep(100);
  }
}

export async function confirm(dir: string, options: { waitMs?: number; log?: Log }): Promise<Pending> {
  requireRoot("confirm");
  const late = await withState(dir, options, async (state) => {
    const p = state.read<Pending>("pending.json");
    if (!p) {
      const last = state.read<ConfirmResult>("confirm-result.json");
      throw userError("NOTHING_TO_CONFIRM", last ? `no apply is waiting for confirmation (the last one ended: ${describeResult(last)})` : "no apply is waiting for confirmation");
    }
    if (p.confirmed) return { pending: p, late: false };
    if (Date.now() >= p.deadline) return { pending: p, late: true };
    state.write("pending.json", { ...p, confirmed: true });
    return { pending: p, late: false };
  });
  if (!late.late) return late.pending;
  // Too late: the timer is about to restore (it waits for the lock this command held). Report what it did.
  const state = new StateDir(dir);
  for (let i = 0; i < 600; i++) {
    const r = state.read<ConfirmResult>("confirm-result.json");
    if (r?.token === late.pending.token) throw userError("NOTHING_TO_CONFIRM", `too late: the deadline had passed; ${describeResult(r)}`);
    await sleep(100);
  }
  throw userError("NOTHING_TO_CONFIRM", "too late: the deadline has passed and the timer has not reported yet; see swarmgate status");
}

export function describeResult(r: ConfirmResult): string {
  switch (r.outcome) {
    case "confirmed": return `confirmed at ${r.at}`;
    case "rolled back": return `the previous ruleset was restored at ${r.at} (read back from the kernel)`;
    case "rollback failed": return `restoring the previous ruleset FAILED at ${r.at}: ${r.message ?? ""}`;
    case "cancelled": return `${r.message ?? "cancelled"} (${r.at})`;
  }
}
