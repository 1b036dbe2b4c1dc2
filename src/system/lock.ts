// One swarmgate at a time: a lock file holding the owner's pid, created with
// O_EXCL. A lock whose owner is gone is stale and taken over; a live one is
// waited for, up to a limit, then reported.
import { openSync, readFileSync, rmSync, writeSync, closeSync } from "node:fs";
import { userError } from "../errors.js";
import { processAlive } from "./run.js";

function owner(file: string): number | undefined {
  try { return Number(readFileSync(file, "utf8").trim()) || undefined; } catch { return undefined; }
}

export async function acquireLock(file: string, waitMs: number, onWait?: (pid: number) => void): Promise<() => void> {
  const until = Date.now() + waitMs;
  let told = false;
  for (;;) {
    try {
      const fd = openSync(file, "wx", 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => { if (owner(file) === process.pid) rmSync(file, { force: true }); };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "EEXIST") throw userError("STATE_UNWRITABLE", `cannot create the lock ${file} (${code ?? "error"}); nothing was changed`);
    }
    const pid = owner(file);
    if (pid === undefined || !processAlive(pid)) { rmSync(file, { force: true }); continue; }
    if (Date.now() >= until) throw userError("LOCKED", `another swarmgate (pid ${pid}) is changing the firewall; try again when it has finished (lock: ${file})`);
    if (!told) { onWait?.(pid); told = true; }
    await new Promise((r) => setTimeout(r, 100));
  }
}
