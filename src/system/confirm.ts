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
import { prepareLock } from "./lock.js";
import { processAlive } from "./run.js";
import { versus, type Log } from "./transaction.js";
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

/**
 * Records the outcome for the waiting apply. On a full disk the record may
 * not fit: the outcome is still returned, and a failed restore keeps the
 * confirmation pending (no write needed) so that the next command retries it.
 */
function finish(state: StateDir, token: string, outcome: ConfirmResult["outcome"], message?: string, log?: Log): ConfirmResult {
  const result: ConfirmResult = { token, outcome, ...(message && { message }), at: new Date().toISOString() };
  try { state.write("confirm-result.json", result); } catch { log?.("warning: could not record the confirmation's outcome (the state directory is full)"); }
  if (outcome !== "rollback failed") { state.remove("pending.json"); state.remove("timeout-record.json"); }
  else try { state.write("pending.json", { ...state.read<Pending>("pending.json"), failed: message ?? "failed" }); } catch { /* still pending: retried all the same */ }
  return result;
}

/** At the deadline, under the lock: the restore, and a result that says what really happened. */
async function timeout(state: StateDir, backends: readonly KernelBackend[], pending: Pending, log?: Log): Promise<ConfirmResult> {
  try {
    await restoreBackup(state, backends, pending.backup, "timeout", log);
    log?.(`not confirmed in time: restored ${pending.backup}`);
    return finish(state, pending.token, "rolled back", undefined, log);
  } catch (e) {
    const err = e as SwarmgateError;
    let inForce = "";
    if (err.code !== "ROLLBACK_FAILED") { // that message already says what is in force
      const wanted = (() => { try { return state.readBackup(pending.backup).state; } catch { return undefined; } })();
      inForce = wanted ? ` In force now: ${await versus(backends, wanted)}.` : "";
    }
    return finish(state, pending.token, "rollback failed", `${err.code ?? "INTERNAL"}: ${err.message}.${inForce} The next swarmgate command (e.g. swarmgate status) tries again.`, log);
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

/** The timer: sleeps until the deadline, then restores unless confirmed. Returns what it did, if anything. */
export async function runTimer(state: StateDir, token: string): Promise<ConfirmResult | undefined> {
  prepareLock(state.lockFile); // while there is room: at the deadline the disk may be full
  prepareRecord(state, token);
  for (;;) {
    const p = state.read<Pending>("pending.json");
    if (!p || p.token !== token) return undefined; // the apply failed, or stop/rollback ended it
    if (p.confirmed) return finish(state, token, "confirmed");
    if (Date.now() >= p.deadline) break;
    await sleep(Math.min(200, p.deadline - Date.now()));
  }
  // The restore takes the lock like every change, and waits as long as it must: it may not give up.
  return withState(state.dir, { waitMs: DAY, skipSettle: true }, async (s, backends) => {
    const p = s.read<Pending>("pending.json");
    if (!p || p.token !== token) return undefined;
    if (p.confirmed) return finish(s, token, "confirmed");
    return timeout(s, backends, p);
  });
}

/** The record the restore at the deadline will leave, written now while the disk has room (see transaction.ts). */
function prepareRecord(state: StateDir, token: string): void {
  try {
    const p = state.read<Pending>("pending.json");
    if (p?.token === token) state.write("timeout-record.json", { recordAfter: state.readBackup(p.backup).record });
  } catch { /* only a fallback for a full disk */ }
}

/** The waiting apply: the timer's verdict; if the timer dies, this process does its work. */
export async function awaitOutcome(state: StateDir, pending: Pending): Promise<ConfirmResult> {
  try { prepareLock(state.lockFile); } catch { /* no room already: taking the lock may still work later */ }
  prepareRecord(state, pending.token);
  for (;;) {
    const result = state.read<ConfirmResult>("confirm-result.json");
    if (result?.token === pending.token) return result;
    const p = state.read<Pending>("pending.json");
    if (!p || p.token !== pending.token) {
      await sleep(50); // the result is written before the pending record goes
      return state.read<ConfirmResult>("confirm-result.json") ?? { token: pending.token, outcome: "cancelled", message: "the confirmation ended, but its outcome could not be recorded (is the state directory full?); swarmgate status shows what is in force", at: new Date().toISOString() };
    }
    if (p.timerPid !== undefined && !processAlive(p.timerPid)) {
      const r = await runTimer(state, pending.token);
      if (r) return r;
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
