// One change of swarmgate's state in the kernel, journaled: the state to go to
// and the state to come back to are written durably first; then each
// backend's transactions run (settings that move towards safety before the
// rulesets, settings that open the machine after); then the kernel is read
// back and must equal the target. On any failure the previous state is put
// back and read back in turn; if even that fails, the journal stays for the
// next command, and the error says what is in force.
import { renameSync } from "node:fs";
import type { KernelBackend } from "../backend/kernel-types.js";
import type { KernelBackendName } from "../backend/registry.js";
import { SwarmgateError, userError } from "../errors.js";
import { readOwned, readState, sameOwned, type KernelState } from "./kernel-state.js";
import { runStep } from "./run.js";
import type { Journal, StateDir } from "./state.js";
import { readSettings, towardsSafe, writeSetting } from "./sysctl.js";

export type Log = (line: string) => void;

/** Runs the backends' steps and setting changes that turn what the kernel holds now into `target`. */
async function move(backends: readonly KernelBackend[], target: KernelState, current?: KernelState, written?: Journal["written"]): Promise<void> {
  const now = readSettings();
  const changes = Object.entries(target.sysctl).filter(([k, v]) => now[k] !== undefined && now[k] !== v);
  for (const [k, v] of changes.filter(([k, v]) => towardsSafe(k, v))) await writeSetting(k, v);
  // The backend that gains objects goes first, so a switch of backend never leaves a gap.
  const order = [...backends].sort((a, b) => Number(isBare(target, a.name)) - Number(isBare(target, b.name)));
  for (const backend of order) {
    const want = target.owned[backend.name];
    if (!want) continue;
    // A backend's units (iptables: the two families) are independent transactions: they run at once, and a
    // failure of either is undone like any other (the caller reads the kernel back and restores both).
    const steps = backend.plan(want, current?.owned[backend.name] ?? await readOwned(backend), current ? written?.[backend.name] : undefined);
    const results = await Promise.all(steps.map(({ step }) => runStep(step)));
    const failed = results.findIndex((r) => r.code !== 0);
    if (failed >= 0) {
      const { unit, step } = steps[failed]!;
      throw userError("LOAD_FAILED", `${step.command} refused the ${unit === backend.name ? "" : `${unit} `}ruleset: ${toolMessage(results[failed]!)}`);
    }
  }
  for (const [k, v] of changes.filter(([k, v]) => !towardsSafe(k, v))) await writeSetting(k, v);
}

/** A tool's complaint on one line, without its usage hints. */
function toolMessage(r: { code: number; stdout: string; stderr: string }): string {
  const lines = (r.stderr.trim() || r.stdout.trim()).split("\n").map((l) => l.trim()).filter((l) => l && !/^Try `/.test(l));
  return lines.join(" / ") || `exit status ${r.code}`;
}

const isBare = (s: KernelState, name: KernelBackendName) => Object.values(s.owned[name] ?? {}).every((t) => t.trim() === "");

/** The differences between the kernel now and `target`, in words; [] when they agree. */
async function differences(backends: readonly KernelBackend[], target: KernelState): Promise<{ now: KernelState; out: string[] }> {
  const now = await readState(backends);
  const out: string[] = [];
  for (const b of backends) {
    const want = target.owned[b.name];
    if (want && !sameOwned(b, now.owned[b.name]!, want)) out.push(`${b.name} objects differ`);
  }
  for (const [k, v] of Object.entries(target.sysctl)) if (now.sysctl[k] !== undefined && now.sysctl[k] !== v) out.push(`${k}=${now.sysctl[k]} (wanted ${v})`);
  return { now, out };
}

/** Moves the kernel to `target` and checks it by reading back; throws what went wrong, or returns what it read. */
export async function reach(backends: readonly KernelBackend[], target: KernelState, current?: KernelState, written?: Journal["written"]): Promise<KernelState> {
  await move(backends, target, current, written);
  const { now, out: diff } = await differences(backends, target);
  if (diff.length) throw userError("LOAD_FAILED", `the kernel did not take the change (${diff.join("; ")})`);
  return now;
}

/** How the kernel compares with two states, per backend and setting, for a message. */
export async function describe(backends: readonly KernelBackend[], old: KernelState, next: KernelState): Promise<string> {
  let now: KernelState;
  try { now = await readState(backends); } catch (e) { return `unknown: the kernel could not be read (${(e as Error).message})`; }
  const parts = backends.map((b) => {
    const o = now.owned[b.name] ?? b.empty();
    const is = (s: KernelState) => s.owned[b.name] && sameOwned(b, o, s.owned[b.name]!);
    return `${b.name}: ${is(old) ? "the previous objects" : is(next) ? "the new objects" : "a mix of both"}`;
  });
  const settings = Object.keys(next.sysctl).map((k) => `${k}=${now.sysctl[k] ?? "?"}`);
  return [...parts, ...settings].join(", ");
}

/**
 * Runs a journaled transaction from `journal.before` to `journal.target`.
 * Success: the journal becomes the record. Failure: the previous state is
 * restored and the error rethrown (LOAD_FAILED …); when even that fails,
 * ROLLBACK_FAILED (exit status 4) with what is in force, and the journal stays.
 */
export async function transact(state: StateDir, backends: readonly KernelBackend[], journal: Journal, options: { journalOptional?: boolean; log?: Log } = {}): Promise<KernelState> {
  let journaled = true;
  try {
    state.write("journal.json", journal); // STATE_UNWRITABLE here means the kernel was not touched
  } catch (e) {
    // Only a restore to safety (the confirmation timeout) goes on without one: a full disk must not keep an unconfirmed ruleset.
    if (!options.journalOptional) throw e;
    journaled = false;
    options.log?.(`warning: no journal for this ${journal.op} (${(e as Error).message}); going on, since it restores the state before`);
  }
  try {
    // `before` was read under the lock a moment ago: the plan starts from it.
    const now = await reach(backends, journal.target, journal.before, journal.written);
    if (journaled) state.commit(journal);
    else recordWithoutJournal(state, journal, options.log);
    return now;
  } catch (e) {
    return await undo(state, backends, journal, e);
  }
}

function recordWithoutJournal(state: StateDir, journal: Journal, log?: Log): void {
  try {
    if (journal.recordAfter) state.write("applied.json", journal);
    else state.remove("applied.json");
  } catch {
    // The confirmation timer wrote its record while there was room: a rename needs none.
    try {
      if (journal.op !== "timeout") throw new Error("no prepared record");
      renameSync(state.path("timeout-record.json"), state.path("applied.json"));
    } catch {
      log?.("warning: the kernel is right, but the record of what is applied could not be updated (the state directory is full)");
    }
  }
}

async function undo(state: StateDir, backends: readonly KernelBackend[], journal: Journal, cause: unknown): Promise<never> {
  const why = cause instanceof Error ? cause.message.replace(/^error\[[A-Z_]+\]: /, "") : String(cause);
  try {
    await reach(backends, journal.before);
  } catch (e) {
    // The failed step may have changed nothing: then the previous state is in force after all.
    if (await differences(backends, journal.before).then((d) => d.out.length === 0, () => false)) return restored(state, journal, cause, why);
    const inForce = await describe(backends, journal.before, journal.target);
    throw new SwarmgateError({ code: "ROLLBACK_FAILED", message: `${journal.op} failed (${why}), and putting the previous state back failed too (${(e as Error).message.replace(/^error\[[A-Z_]+\]: /, "")}). In force now: ${inForce}. The transaction is journaled in ${state.path("journal.json")}: the next swarmgate command (e.g. swarmgate status) finishes it; check with swarmgate status` }, 4);
  }
  return restored(state, journal, cause, why);
}

function restored(state: StateDir, journal: Journal, cause: unknown, why: string): never {
  state.remove("journal.json");
  const code = cause instanceof SwarmgateError ? cause.code : "LOAD_FAILED";
  const now = journal.op === "apply" ? "the previous ruleset is in force again" : `nothing changed: what was in force before this ${journal.op} still is`;
  throw userError(code === "STATE_UNWRITABLE" || code === "TOOL_FAILED" ? code : "LOAD_FAILED", `${why}; ${now} (read back from the kernel)`);
}

/** Whether the kernel holds `wanted`, in words, for a report of a restore that failed. */
export async function versus(backends: readonly KernelBackend[], wanted: KernelState): Promise<string> {
  let now: KernelState;
  try { now = await readState(backends); } catch (e) { return `unknown: the kernel could not be read (${(e as Error).message})`; }
  const parts = backends.map((b) => `${b.name}: ${sameOwned(b, now.owned[b.name] ?? b.empty(), wanted.owned[b.name] ?? b.empty()) ? "as restored" : "NOT restored (the unconfirmed ruleset, or part of it)"}`);
  return [...parts, ...Object.keys(now.sysctl).map((k) => `${k}=${now.sysctl[k]}`)].join(", ");
}

/**
 * The first thing every command that holds the lock does: a journal left by a
 * process that died mid-transaction is finished — an apply undone, a rollback,
 * stop or confirmation timeout completed. Returns a sentence for the user, or undefined.
 */
export async function recover(state: StateDir, backends: readonly KernelBackend[]): Promise<string | undefined> {
  const journal = state.read<Journal>("journal.json");
  if (!journal) return undefined;
  if (!journal.before || !journal.target || !journal.recovery) throw userError("STATE_CORRUPT", `${state.path("journal.json")} is not a swarmgate journal; move it away and run swarmgate status`);
  const what = `an interrupted ${journal.op} (pid ${journal.pid}, ${journal.startedAt})`;
  if (journal.recovery === "undo") {
    try { await reach(backends, journal.before); } catch (e) {
      throw new SwarmgateError({ code: "ROLLBACK_FAILED", message: `could not undo ${what}: ${(e as Error).message}. In force now: ${await describe(backends, journal.before, journal.target)}` }, 4);
    }
    state.remove("journal.json");
    return `undid ${what}: the state before it is in force again`;
  }
  try { await reach(backends, journal.target); } catch (e) {
    throw new SwarmgateError({ code: "ROLLBACK_FAILED", message: `could not complete ${what}: ${(e as Error).message}. In force now: ${await describe(backends, journal.before, journal.target)}` }, 4);
  }
  state.commit(journal);
  return `completed ${what}`;
}
