// apply, stop and rollback: every change to the kernel is one transaction,
// the previous ruleset is saved first, one swarmgate runs at a time, and the
// kernel settings swarmgate changes are recorded so that stop restores them.
import { compile } from "../compile/index.js";
import { formatAddress } from "../net/address.js";
import { userError } from "../errors.js";
import type { Ruleset } from "../ir/ruleset.js";
import type { Policy } from "../policy/types.js";
import { detectBackend, load, loadedBackend, remove, restore, snapshot, type Backend } from "./kernel.js";
import { acquireLock } from "./lock.js";
import type { Session } from "./lockout.js";
import { onPath, run } from "./run.js";
import { StateDir, type Applied } from "./state.js";
import { readSysctl, settingsFor, writeSysctl } from "./sysctl.js";

export interface ApplyOptions {
  backend?: Backend;
  stateDir: string;
  force?: boolean;
  /** How long to wait for another swarmgate to finish. */
  waitMs?: number;
  log?: (line: string) => void;
  /** SSH sessions to protect; found from the environment and `ss` when absent. */
  sessions?: Session[];
}

export interface ApplyResult { backend: Backend; backup: string; changedSysctls: Record<string, string> }

export function requireRoot(what: string): void {
  if (process.getuid?.() !== 0) throw userError("NEEDS_ROOT", `${what} changes the firewall and needs root (try: sudo swarmgate ${what})`);
}

export async function withLock<T>(state: StateDir, options: { waitMs?: number; log?: (l: string) => void }, body: () => Promise<T>): Promise<T> {
  const release = await acquireLock(state.lockFile, options.waitMs ?? 60_000, (pid) => options.log?.(`waiting for another swarmgate (pid ${pid}) to finish`));
  try { return await body(); } finally { release(); }
}

export async function applyPolicy(policy: Policy, options: ApplyOptions, ruleset: Ruleset = compile(policy)): Promise<ApplyResult> {
  requireRoot("apply");
  const log = options.log ?? (() => {});
  const state = new StateDir(options.stateDir);
  const backend = options.backend ?? await detectBackend();
  if (!options.force) {
    // Loaded only when needed: the guard brings in the simulator.
    const { cutSessions, sshSessions } = await import("./lockout.js");
    const cut = cutSessions(policy, ruleset, options.sessions ?? await sshSessions());
    if (cut.length > 0) {
      const who = cut.map((s) => `${formatAddress(s.client)} → port ${s.serverPort} (${s.source})`).join(", ");
      throw userError("LOCKOUT", `the new ruleset would cut your SSH access: ${who}. Add the source to an admin service in the policy, or apply with --force`);
    }
  }
  state.mkdir();
  return withLock(state, options, async () => {
    const pending = state.read<{ deadline: number; confirmed: boolean }>("pending.json");
    if (pending && !pending.confirmed && pending.deadline > Date.now()) {
      throw userError("CONFIRM_PENDING", "an earlier apply is waiting for swarmgate confirm; confirm it or let it roll back first");
    }
    const before = await snapshot(backend);
    state.ensureWritable(before.reduce((n, p) => n + Buffer.byteLength(p.text), 4096));
    const backup = state.saveBackup(backend, before);
    log(`saved the current ruleset as backup ${backup}`);
    await load(backend, ruleset); // throws LOAD_FAILED with the old ruleset in force
    const previous = state.read<Applied>("applied.json");
    // A switch of backend leaves no swarmgate rules of the other kind behind (removed only once the new ones are in).
    if (previous && previous.backend !== backend) await remove(previous.backend);
    const sysctlsBefore = { ...(previous?.sysctlsBefore ?? {}) };
    const changed: Record<string, string> = {};
    for (const [key, value] of Object.entries(settingsFor(policy))) {
      const now = readSysctl(key);
      if (now === undefined || now === value) continue;
      if (!(key in sysctlsBefore)) sysctlsBefore[key] = now;
      if (writeSysctl(key, value)) changed[key] = value;
      else log(`warning: could not set ${key}=${value}`);
    }
    state.write("applied.json", { policy: policy.source.file, backend, at: new Date().toISOString(), backup, sysctlsBefore } satisfies Applied);
    return { backend, backup, changedSysctls: changed };
  });
}

export interface StopResult { removed: boolean; restoredSysctls: Record<string, string>; fallback: string }

export async function stopFirewall(options: { stateDir: string; waitMs?: number; log?: (l: string) => void }): Promise<StopResult> {
  requireRoot("stop");
  const state = new StateDir(options.stateDir);
  state.mkdir();
  return withLock(state, options, async () => {
    const wasLoaded = (await loadedBackend()) !== undefined;
    await remove();
    const applied = state.read<Applied>("applied.json");
    const restored: Record<string, string> = {};
    for (const [key, value] of Object.entries(applied?.sysctlsBefore ?? {})) if (writeSysctl(key, value)) restored[key] = value;
    state.remove("applied.json");
    return { removed: wasLoaded, restoredSysctls: restored, fallback: await fallback() };
  });
}

/** What filters the host once swarmgate is gone, in one sentence. */
async function fallback(): Promise<string> {
  const listing = onPath("nft") ? (await run("nft", ["list", "ruleset"])).stdout : `${(await run("iptables-save", [])).stdout}${(await run("ip6tables-save", [])).stdout}`;
  const rules = listing.split("\n").filter((l) => /^\s*(-A |[a-z].*\b(accept|drop|reject|jump|goto)\b)/.test(l) && !/^\s*type /.test(l)).length;
  if (/policy drop|^:[A-Z]+ DROP/m.test(listing)) return `other rules (${rules}) and a default-drop policy still filter traffic`;
  if (rules > 0) return `${rules} rules of other tools remain, with no default drop: check them before relying on them`;
  return "WARNING: no other firewall rules are loaded; this machine now accepts every connection";
}

export async function rollbackTo(options: { stateDir: string; to?: string; waitMs?: number; log?: (l: string) => void }): Promise<string> {
  requireRoot("rollback");
  const state = new StateDir(options.stateDir);
  state.mkdir();
  return withLock(state, options, async () => rollbackLocked(state, options.to));
}

/** The rollback itself, for callers that hold the lock (or, like the confirm timer, must not wait for it). */
export async function rollbackLocked(state: StateDir, to?: string): Promise<string> {
  const id = to ?? state.read<Applied>("applied.json")?.backup ?? state.listBackups().at(-1);
  if (!id) throw userError("NO_BACKUP", `there is no backup in ${state.backups} to roll back to`);
  const backup = state.readBackup(id);
  await restore(backup.backend, backup.parts);
  const applied = state.read<Applied>("applied.json");
  for (const [key, value] of Object.entries(applied?.sysctlsBefore ?? {})) writeSysctl(key, value);
  state.remove("applied.json");
  return id;
}
