// swarmgate's state directory (default /var/lib/swarmgate): backups of the
// rulesets it replaced, the lock, a pending confirmation, and what it applied
// (with the kernel settings it changed and their previous values).
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statfsSync, writeSync } from "node:fs";
import { join } from "node:path";
import { userError } from "../errors.js";
import { writeFilesAtomically } from "./files.js";

export const DEFAULT_STATE_DIR = "/var/lib/swarmgate";
export const KEEP_BACKUPS = 10;

export interface Applied {
  policy: string;
  backend: "nft" | "iptables";
  at: string;
  backup: string;
  /** Kernel settings swarmgate changed, with the value each had before the first apply. */
  sysctlsBefore: Record<string, string>;
}

export interface Pending {
  token: string;
  backup: string;
  deadline: number;
  confirmed: boolean;
}

export class StateDir {
  constructor(readonly dir: string) {}

  get backups(): string { return join(this.dir, "backups"); }

  mkdir(): void {
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw userError("STATE_UNWRITABLE", `cannot create the state directory ${this.dir} (${(e as NodeJS.ErrnoException).code ?? "error"}); nothing was changed`);
    }
  }
  get lockFile(): string { return join(this.dir, "lock"); }
  private file(name: string): string { return join(this.dir, name); }

  /** Refuses, before anything touches the kernel, when backups cannot be written. */
  ensureWritable(bytesNeeded: number): void {
    try {
      mkdirSync(this.backups, { recursive: true, mode: 0o700 });
      const probe = join(this.backups, `.probe-${process.pid}`);
      const fd = openSync(probe, "w");
      try { writeSync(fd, Buffer.alloc(Math.min(bytesNeeded, 1 << 20))); } finally { closeSync(fd); rmSync(probe, { force: true }); }
      const fs = statfsSync(this.backups);
      if (fs.bavail * fs.bsize < bytesNeeded * 2) throw Object.assign(new Error("no space"), { code: "ENOSPC" });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? "error";
      throw userError("STATE_UNWRITABLE", `cannot write backups to ${this.backups} (${code}); nothing was changed. Free some space or choose --state-dir`);
    }
  }

  read<T>(name: "applied.json" | "pending.json" | "confirm-result.json"): T | undefined {
    try { return JSON.parse(readFileSync(this.file(name), "utf8")) as T; } catch { return undefined; }
  }

  write(name: "applied.json" | "pending.json" | "confirm-result.json", value: unknown): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeFilesAtomically([{ path: this.file(name), text: `${JSON.stringify(value, null, 2)}\n`, mode: 0o600 }]);
  }

  remove(name: "applied.json" | "pending.json" | "confirm-result.json"): void {
    rmSync(this.file(name), { force: true });
  }

  /** Writes a backup (one or more files sharing an id) and keeps the newest ten. */
  saveBackup(backend: string, parts: { suffix: string; text: string }[]): string {
    const id = `${new Date().toISOString().replace(/[:.]/g, "-")}-${backend}`;
    writeFilesAtomically(parts.map((p) => ({ path: join(this.backups, `${id}.${p.suffix}`), text: p.text, mode: 0o600 })));
    const ids = this.listBackups();
    for (const old of ids.slice(0, Math.max(0, ids.length - KEEP_BACKUPS))) {
      for (const f of readdirSync(this.backups)) if (f.startsWith(`${old}.`)) rmSync(join(this.backups, f), { force: true });
    }
    return id;
  }

  /** Backup ids, oldest first. */
  listBackups(): string[] {
    if (!existsSync(this.backups)) return [];
    return [...new Set(readdirSync(this.backups).filter((f) => !f.startsWith(".")).map((f) => f.replace(/\.[^.]+$/, "")))].sort();
  }

  readBackup(id: string): { backend: "nft" | "iptables"; parts: Map<string, string> } {
    const files = existsSync(this.backups) ? readdirSync(this.backups).filter((f) => f.startsWith(`${id}.`)) : [];
    if (files.length === 0) throw userError("NO_BACKUP", `no backup ${id} in ${this.backups} (swarmgate rollback --list shows them)`);
    const parts = new Map(files.map((f) => [f.slice(id.length + 1), readFileSync(join(this.backups, f), "utf8")]));
    return { backend: id.endsWith("-iptables") ? "iptables" : "nft", parts };
  }
}
