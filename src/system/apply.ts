// apply, stop and rollback. Each is one journaled transaction over
// swarmgate's own objects and the kernel settings that go with them, taken
// under the lock after finishing whatever an earlier process left half done.
import { resolve } from "node:path";
import { compile } from "../compile/index.js";
import { formatAddress } from "../net/address.js";
import { userError } from "../errors.js";
import type { KernelBackend } from "../backend/kernel-types.js";
import type { KernelBackendName } from "../backend/registry.js";
import type { Ruleset } from "../ir/ruleset.js";
import type { Policy } from "../policy/types.js";
import { kernelBackend } from "../backend/registry.js";
import { detectBackend, installedBackends, readState, type KernelState } from "./kernel-state.js";
import { onPath, packageOf } from "./run.js";
import { acquireLock } from "./lock.js";
import type { Session } from "./lockout.js";
import { StateDir, type Applied, type ConfirmResult, type Pending } from "./state.js";
import { settingsFor } from "./sysctl.js";
import { recover, transact, type Log } from "./transaction.js";
import { rememberSpelling, writtenFor } from "./readback.js";

export interface ApplyOptions {
  backend?: KernelBackendName;
  stateDir: string;
  force?: boolean;
  /** How long to wait for another swarmgate to finish. */
  waitMs?: number;
  log?: Log;
  /** SSH sessions to protect; found from the environment and `ss` when absent. */
  sessions?: Session[];
  /** Roll back unless `swarmgate confirm` comes within this many seconds. */
  confirmSeconds?: number;
}

export interface ApplyResult { backend: KernelBackendName; backup: string; changedSysctls: Record<string, string>; pending?: Pending }

export function requireRoot(what: string, why = "changes the firewall"): void {
  if (process.getuid?.() !== 0) throw userError("NEEDS_ROOT", `${what} ${why} and needs root (try: sudo swarmgate ${what})`);
}

/** Under the lock, after recovering an interrupted transaction and settling an expired confirmation. */
export async function withState<T>(dir: string, options: { waitMs?: number; log?: Log; skipSettle?: boolean }, body: (state: StateDir, backends: KernelBackend[]) => Promise<T>): Promise<T> {
  const state = new StateDir(dir);
  state.mkdir();
  const backends = await installedBackends();
  const release = await acquireLock(state.lockFile, options.waitMs ?? 60_000, (pid) => options.log?.(`waiting for another swarmgate (pid ${pid}) to finish`));
  try {
    const note = await recover(state, backends);
    if (note) options.log?.(note);
    if (!options.skipSettle) {
      const { settlePending } = await import("./confirm.js");
      await settlePending(state, backends, options.log);
    }
    return await body(state, backends);
  } finally {
    release();
  }
}

const changedSettings = (from: KernelState, to: KernelState) =>
  Object.fromEntries(Object.entries(to.sysctl).filter(([k, v]) => from.sysctl[k] !== v));

/** The settings a policy's state should have: its own, and for the rest what they were before swarmgate. */
function settingsTarget(policy: Policy | undefined, now: Record<string, string>, origin: Record<string, string>): Record<string, string> {
  const wanted = policy ? settingsFor(policy) : {};
  return Object.fromEntries(Object.keys(now).map((k) => [k, wanted[k] ?? origin[k] ?? now[k]!]));
}

function originState(state: StateDir, record: Applied | null, before: KernelState, log?: Log): KernelState {
  if (!record) return before;
  try { return state.readBackup(record.origin).state; } catch (e) {
    log?.(`warning: the backup from before swarmgate's first apply is unreadable (${(e as Error).message}); kernel settings swarmgate did not ask for stay as they are`);
    return before;
  }
}

export async function applyPolicy(policy: Policy, options: ApplyOptions, ruleset: Ruleset = compile(policy)): Promise<ApplyResult> {
  requireRoot("apply");
  const name = options.backend ?? await detectBackend();
  if (!options.force) {
    const { cutSessions, sshSessions } = await import("./lockout.js");
    const cut = cutSessions(policy, ruleset, options.sessions ?? await sshSessions());
    if (cut.length > 0) {
      const who = cut.map((s) => `${formatAddress(s.client)} → port ${s.serverPort}${s.iface ? ` via ${s.iface}` : ""} (${s.source})`).join(", ");
      throw userError("LOCKOUT", `the new ruleset would cut your SSH access: ${who}. Add the source to an admin service in the policy, or apply with --force`);
    }
  }
  return withState(options.stateDir, options, async (state, backends) => {
    const chosen = backends.find((b) => b.name === name);
    if (!chosen) throw userError("TOOL_MISSING", `the ${name} backend needs ${(await kernelBackend(name)).tools.filter((t) => !onPath(t)).join(", ")}, which is not installed (on Debian: apt-get install ${packageOf(name)})`);
    const pending = state.read<Pending>("pending.json");
    if (pending && !pending.confirmed) throw userError("CONFIRM_PENDING", "an earlier apply is waiting for swarmgate confirm; confirm it or let it roll back first");
    const before = await readState(backends);
    const record = state.record();
    const backup = state.saveBackup(`before applying ${policy.source.file}`, before, record, name);
    const origin = originState(state, record, before, options.log);
    const target: KernelState = {
      owned: Object.fromEntries(backends.map((b) => [b.name, b === chosen ? b.ownedOf(ruleset) : b.empty()])),
      sysctl: settingsTarget(policy, before.sysctl, origin.sysctl),
    };
    const recordAfter: Applied = { policy: resolve(policy.source.file), backend: name, at: new Date().toISOString(), backup, origin: record?.origin ?? backup };
    let confirmation: Pending | undefined;
    if (options.confirmSeconds !== undefined) {
      const { startConfirmation } = await import("./confirm.js");
      confirmation = startConfirmation(state, backup, options.confirmSeconds, recordAfter.policy);
    }
    try {
      const written = writtenFor(state, chosen, before.owned[name]!);
      const now = await transact(state, backends, { op: "apply", pid: process.pid, startedAt: new Date().toISOString(), before, target, recovery: "undo", recordBefore: record, recordAfter, ...(written && { written: { [name]: written } }) });
      // Read back a moment after the load: how this kernel lists what was written (status then needs no sandbox).
      rememberSpelling(state, chosen, target.owned[name]!, now.owned[name]!);
    } catch (e) {
      if (confirmation) state.remove("pending.json"); // its timer sees that and exits
      throw e;
    }
    state.prune([backup, recordAfter.origin]);
    return { backend: name, backup, changedSysctls: changedSettings(before, target), ...(confirmation && { pending: confirmation }) };
  });
}

/** Moves to a backup's state (rollback, and the confirmation timeout); the state left is backed up first. */
export async function restoreBackup(state: StateDir, backends: readonly KernelBackend[], id: string, op: "rollback" | "timeout", log?: Log): Promise<KernelState> {
  const backup = state.readBackup(id);
  const before = await readState(backends);
  const record = state.record();
  try {
    state.saveBackup(`before ${op === "rollback" ? "rolling back" : "the confirmation timeout restored"} ${id}`, before, record, op);
  } catch (e) {
    if (op !== "timeout") throw e; // the timeout restores to safety even on a full disk
    log?.(`warning: no backup of the unconfirmed state (${(e as Error).message})`);
  }
  const target: KernelState = {
    owned: Object.fromEntries(backends.map((b) => [b.name, backup.state.owned[b.name] ?? b.empty()])),
    sysctl: Object.fromEntries(Object.keys(before.sysctl).map((k) => [k, backup.state.sysctl[k] ?? before.sysctl[k]!])),
  };
  await transact(state, backends, { op, pid: process.pid, startedAt: new Date().toISOString(), before, target, recovery: "complete", recordBefore: record, recordAfter: backup.record }, { journalOptional: op === "timeout", ...(log && { log }) });
  state.prune([id, backup.record?.backup, backup.record?.origin]);
  return target;
}

export interface StopResult { removed: boolean; restoredSysctls: Record<string, string>; fallback: string; cancelledConfirmation: boolean }

export async function stopFirewall(options: { stateDir: string; waitMs?: number; log?: Log }): Promise<StopResult> {
  requireRoot("stop");
  return withState(options.stateDir, options, async (state, backends) => {
    const pending = state.read<Pending>("pending.json");
    const before = await readState(backends);
    const record = state.record();
    const wasLoaded = backends.some((b) => Object.values(before.owned[b.name] ?? {}).some((t) => t.trim() !== ""));
    if (wasLoaded || record) state.saveBackup("before stop", before, record, "stop");
    const origin = originState(state, record, before, options.log);
    const target: KernelState = {
      owned: Object.fromEntries(backends.map((b) => [b.name, b.empty()])),
      sysctl: settingsTarget(undefined, before.sysctl, origin.sysctl),
    };
    await transact(state, backends, { op: "stop", pid: process.pid, startedAt: new Date().toISOString(), before, target, recovery: "complete", recordBefore: record, recordAfter: null });
    // A stop ends a pending confirmation: nothing is to come back at its deadline.
    if (pending) cancelPending(state, pending, "swarmgate stop removed the ruleset before the deadline", options.log);
    const { fallback } = await import("./fallback.js");
    return { removed: wasLoaded, restoredSysctls: changedSettings(before, target), fallback: await fallback(), cancelledConfirmation: !!pending };
  });
}

export async function rollbackTo(options: { stateDir: string; to?: string; waitMs?: number; log?: Log }): Promise<string> {
  requireRoot("rollback");
  return withState(options.stateDir, options, async (state, backends) => {
    const id = options.to ?? state.record()?.backup ?? state.listBackups().at(-1);
    if (!id) throw userError("NO_BACKUP", `there is no backup in ${state.backups} to roll back to`);
    state.readBackup(id); // refuse before anything changes when it is missing or unreadable
    const pending = state.read<Pending>("pending.json");
    await restoreBackup(state, backends, id, "rollback");
    if (pending) cancelPending(state, pending, `swarmgate rollback restored ${id} before the deadline`, options.log);
    return id;
  });
}

/** Ends a pending confirmation, telling the apply that waits for it why. */
function cancelPending(state: StateDir, pending: Pending, why: string, log?: Log): void {
  try {
    state.write("confirm-result.json", { token: pending.token, outcome: "cancelled", message: why, at: new Date().toISOString() } satisfies ConfirmResult);
  } catch {
    log?.("warning: could not record the end of the pending confirmation");
  }
  state.remove("pending.json");
}
