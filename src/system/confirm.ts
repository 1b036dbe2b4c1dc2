// apply --confirm (like netplan try, or "commit confirmed"): after applying,
// a detached timer process — in its own session, so it outlives the user's
// terminal and even a SIGKILLed apply, and in the network namespace apply ran
// in — restores the previous ruleset unless `swarmgate confirm` comes first.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { userError } from "../errors.js";
import { rollbackLocked, withLock } from "./apply.js";
import { StateDir, type Pending } from "./state.js";

export type Outcome = "confirmed" | "rolled back";

export function startConfirmation(state: StateDir, backup: string, seconds: number): Pending {
  const pending: Pending = { token: randomBytes(8).toString("hex"), backup, deadline: Date.now() + seconds * 1000, confirmed: false };
  state.remove("confirm-result.json");
  state.write("pending.json", pending);
  const main = fileURLToPath(new URL("../cli/main.js", import.meta.url));
  const timer = spawn(process.execPath, [main, "confirm-timer", "--state-dir", state.dir, "--token", pending.token], { detached: true, stdio: "ignore" });
  timer.unref();
  return pending;
}

/** Waits for the timer's verdict (it writes confirm-result.json). */
export async function awaitOutcome(state: StateDir, pending: Pending): Promise<Outcome> {
  for (;;) {
    const result = state.read<{ token: string; outcome: Outcome }>("confirm-result.json");
    if (result?.token === pending.token) return result.outcome;
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function confirm(state: StateDir): Pending {
  const pending = state.read<Pending>("pending.json");
  if (!pending || pending.confirmed) throw userError("NOTHING_TO_CONFIRM", "no apply is waiting for confirmation");
  if (pending.deadline <= Date.now()) throw userError("NOTHING_TO_CONFIRM", "too late: the confirmation deadline has passed and the previous ruleset is being restored");
  state.write("pending.json", { ...pending, confirmed: true });
  return pending;
}

/** The timer: sleeps until the deadline, then rolls back unless confirmed. */
export async function runTimer(state: StateDir, token: string): Promise<void> {
  const pending = state.read<Pending>("pending.json");
  if (!pending || pending.token !== token) return;
  for (;;) {
    const now = state.read<Pending>("pending.json");
    if (!now || now.token !== token) return;
    if (now.confirmed) { finish(state, token, "confirmed"); return; }
    if (Date.now() >= now.deadline) break;
    await new Promise((r) => setTimeout(r, Math.min(200, now.deadline - Date.now())));
  }
  // The rollback takes the lock like every change, but waits as long as it must: it may not give up.
  try {
    await withLock(state, { waitMs: 24 * 3600_000 }, () => rollbackLocked(state, pending.backup));
  } finally {
    finish(state, token, "rolled back");
  }
}

function finish(state: StateDir, token: string, outcome: Outcome): void {
  state.write("confirm-result.json", { token, outcome, at: new Date().toISOString() });
  state.remove("pending.json");
}
