// swarmgate's state directory (default /var/lib/swarmgate): the record of what
// is applied, the journal of a transaction under way, a pending confirmation,
// the lock, and backups. A backup holds swarmgate's own objects and the kernel
// settings it manages — never another tool's rules.
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { displayValue, userError } from "../errors.js";
import type { KernelBackendName } from "../backend/registry.js";
import type { Owned } from "../backend/kernel-types.js";
import { writeFilesAtomically } from "./files.js";
import type { KernelState } from "./kernel-state.js";

export const DEFAULT_STATE_DIR = "/var/lib/swarmgate";
export const KEEP_BACKUPS = 10;
const MAX_STATE_FILE = 64 << 20;

/** What is applied now. */
export interface Applied {
  policy: string;
  backend: KernelBackendName;
  at: string;
  /** The backup taken just before this apply: what `rollback` returns to. */
  backup: string;
  /** The backup taken before swarmgate's first apply: the settings `stop` returns to. */
  origin: string;
}

export interface Backup { id: string; at: string; reason: string; state: KernelState; record: Applied | null }

export type Op = "apply" | "rollback" | "stop" | "timeout" | "recovery" | "follow";

/** A transaction under way: written durably before the kernel changes. */
export interface Journal {
  op: Op;
  pid: number;
  startedAt: string;
  before: KernelState;
  target: KernelState;
  /** An interrupted apply is undone; an interrupted rollback, stop or timeout is completed. */
  recovery: "undo" | "complete";
  recordBefore: Applied | null;
  recordAfter: Applied | null;
  /** What swarmgate wrote for the objects `before` holds, where known (readback.json): lets a backend change them in place. */
  written?: Partial<Record<KernelBackendName, Owned>>;
}

export interface Pending {
  token: string;
  /** The backup to restore at the deadline. */
  backup: string;
  deadline: number;
  confirmed: boolean;
  timerPid?: number;
  policy: string;
  /** Set when the restore at the deadline failed: every later command retries it. */
  failed?: string;
}
export interface ConfirmResult { token: string; outcome: "confirmed" | "rolled back" | "rollback failed" | "cancelled"; message?: string; at: string }

type Name = "applied.json" | "journal.json" | "pending.json" | "confirm-result.json" | "timeout-record.json" | "readback.json" | "portmap.json";
const ID = /^[0-9A-Za-z][0-9A-Za-z._-]{0,100}$/;

function fsyncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try { fsyncSync(fd); } finally { closeSync(fd); }
}

export class StateDir {
  constructor(readonly dir: string) {}

  get backups(): string { return join(this.dir, "backups"); }
  get lockFile(): string { return join(this.dir, "lock"); }
  path(name: Name): string { return join(this.dir, name); }

  mkdir(): void {
    try {
      mkdirSync(this.backups, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw userError("STATE_UNWRITABLE", `cannot create the state directory ${this.dir} (${(e as NodeJS.ErrnoException).code ?? "error"}); nothing was changed`);
    }
  }

  private readJson<T>(file: string, what: string): T | undefined {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return undefined;
      throw userError("STATE_UNREADABLE", `cannot read ${what} ${file} (${code ?? "error"})${code === "EACCES" ? "; run swarmgate as root" : ""}`);
    }
    if (text.length > MAX_STATE_FILE) throw userError("STATE_CORRUPT", `${file} is larger than any file swarmgate writes; move it away`);
    try { return JSON.parse(text) as T; } catch {
      throw userError("STATE_CORRUPT", `${what} ${file} is not valid JSON (swarmgate writes it whole, so something else changed it); move it away and run swarmgate status`);
    }
  }

  read<T>(name: Name): T | undefined { return this.readJson<T>(this.path(name), "state file"); }

  /** Written whole (temporary file, fsync, rename, fsync of the directory) or not at all. */
  write(name: Name, value: unknown): void {
    try {
      writeFilesAtomically([{ path: this.path(name), text: `${JSON.stringify(value)}\n`, mode: 0o600 }]);
      fsyncDir(this.dir);
    } catch (e) {
      const why = (e as { message?: string }).message ?? String(e);
      throw userError("STATE_UNWRITABLE", `cannot write ${this.path(name)} (${why}); nothing was changed. Free some space or choose --state-dir`);
    }
  }

  remove(name: Name): void { rmSync(this.path(name), { force: true }); }

  /** The record of what is applied (stored as the journal that committed it). */
  record(): Applied | null { return this.read<Journal>("applied.json")?.recordAfter ?? null; }

  /** Makes a finished transaction the record: a rename, which needs no free space. */
  commit(journal: Journal): void {
    if (journal.recordAfter) renameSync(this.path("journal.json"), this.path("applied.json"));
    else { this.remove("applied.json"); this.remove("journal.json"); }
    fsyncDir(this.dir);
  }

  saveBackup(reason: string, state: KernelState, record: Applied | null, tag: string): string {
    const at = new Date().toISOString();
    const id = `${at.replace(/[:.]/g, "-")}-${tag}-${randomBytes(2).toString("hex")}`;
    const backup: Backup = { id, at, reason, state, record };
    try {
      mkdirSync(this.backups, { recursive: true, mode: 0o700 });
      writeFilesAtomically([{ path: join(this.backups, `${id}.json`), text: `${JSON.stringify(backup)}\n`, mode: 0o600 }]);
      fsyncDir(this.backups);
    } catch (e) {
      const why = (e as { message?: string }).message ?? String(e);
      throw userError("STATE_UNWRITABLE", `cannot write a backup to ${this.backups} (${why}); nothing was changed. Free some space or choose --state-dir`);
    }
    return id;
  }

  /** Backup ids, oldest first. */
  listBackups(): string[] {
    let files: string[];
    try { files = readdirSync(this.backups); } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return [];
      throw userError("STATE_UNREADABLE", `cannot list the backups in ${this.backups} (${code ?? "error"})${code === "EACCES" ? "; run swarmgate as root" : ""}`);
    }
    return files.filter((f) => f.endsWith(".json") && !f.startsWith(".")).map((f) => f.slice(0, -5)).filter((id) => ID.test(id)).sort();
  }

  readBackup(id: string): Backup {
    if (!ID.test(id)) throw userError("NO_BACKUP", `"${displayValue(id)}" is not a backup id (swarmgate rollback --list shows them)`);
    const file = join(this.backups, `${id}.json`);
    let backup: Backup | undefined;
    try { backup = this.readJson<Backup>(file, "backup"); } catch (e) {
      if ((e as { code?: string }).code === "STATE_UNREADABLE" && /EISDIR/.test((e as Error).message)) throw userError("STATE_CORRUPT", `backup ${file} is a directory, not a file swarmgate wrote`);
      throw e;
    }
    if (!backup) throw userError("NO_BACKUP", `no backup ${id} in ${this.backups} (swarmgate rollback --list shows them)`);
    if (!backup.state || typeof backup.state !== "object" || !backup.state.owned || !backup.state.sysctl) throw userError("STATE_CORRUPT", `backup ${file} does not hold a swarmgate state`);
    return backup;
  }

  /** Keeps the newest backups, and always the ones still referred to (in force, before the first apply, pending). */
  prune(keep: readonly (string | undefined)[]): void {
    const ids = this.listBackups();
    const protect = new Set(keep.filter((k): k is string => !!k));
    for (const id of ids.slice(0, Math.max(0, ids.length - KEEP_BACKUPS))) {
      if (!protect.has(id)) rmSync(join(this.backups, `${id}.json`), { force: true });
    }
  }
}
