// One swarmgate at a time: a lock file holding the owner's pid. It is born
// with its content — written to a private temporary file, then hard-linked
// to the lock's name, which fails atomically when the lock exists — so no
// other process ever sees an empty lock and takes it for a stale one. A lock
// whose owner is gone is stale: it is moved aside with one rename (only one
// waiter can win that), and only if it still names the dead owner.
import { closeSync, existsSync, fsyncSync, linkSync, openSync, readFileSync, renameSync, rmSync } from "node:fs";
import { userError } from "../errors.js";
import { writeAll } from "./files.js";
import { processAlive } from "./run.js";

function owner(file: string): number | undefined {
  try { return Number(readFileSync(file, "utf8").trim()) || undefined; } catch { return undefined; }
}

const candidate = (file: string) => `${file}.${process.pid}.tmp`;

/**
 * Writes this process's lock content now, while the disk has room, so that a
 * later acquireLock needs only a hard link (no new inode, no data block): the
 * confirmation timer must be able to take the lock on a disk that filled up.
 */
export function prepareLock(file: string): void {
  if (existsSync(candidate(file))) return;
  const fd = openSync(candidate(file), "w", 0o600);
  try { writeAll(fd, Buffer.from(`${process.pid}\n`)); fsyncSync(fd); } finally { closeSync(fd); }
}

function tryCreate(file: string): boolean {
  prepareLock(file);
  try {
    linkSync(candidate(file), file);
    rmSync(candidate(file), { force: true });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false; // the candidate stays for the next try
    throw e;
  }
}

/** Moves a stale lock aside; puts it back if it turned out to be someone else's fresh one. */
function breakStale(file: string, deadPid: number | undefined): void {
  const aside = `${file}.stale.${process.pid}`;
  try { renameSync(file, aside); } catch { return; } // another waiter won
  const moved = owner(aside);
  if (moved !== deadPid && moved !== undefined && processAlive(moved)) {
    try { linkSync(aside, file); } catch { /* a third process holds it now; the moved one's owner will see its lock gone */ }
  }
  rmSync(aside, { force: true });
}

export async function acquireLock(file: string, waitMs: number, onWait?: (pid: number) => void): Promise<() => void> {
  const until = Date.now() + waitMs;
  let told = false;
  for (;;) {
    try {
      if (tryCreate(file)) return () => { if (owner(file) === process.pid) rmSync(file, { force: true }); };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      rmSync(candidate(file), { force: true });
      throw userError("STATE_UNWRITABLE", `cannot create the lock ${file} (${code ?? "error"}); nothing was changed`);
    }
    const pid = owner(file);
    if (pid === undefined || !processAlive(pid)) { breakStale(file, pid); continue; }
    if (Date.now() >= until) {
      rmSync(candidate(file), { force: true });
      throw userError("LOCKED", `another swarmgate (pid ${pid}) is changing the firewall; try again when it has finished (lock: ${file})`);
    }
    if (!told) { onWait?.(pid); told = true; }
    await new Promise((r) => setTimeout(r, 50));
  }
}
