// Writing files so that nobody ever sees half of one: each file is written to
// a temporary name beside it, flushed, and renamed over the target.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { userError } from "../errors.js";

export interface FileToWrite {
  path: string;
  text: string;
  mode?: number;
}

/** Writes all files or none: temporaries first, then the renames. */
export function writeFilesAtomically(files: readonly FileToWrite[]): void {
  const temps: string[] = [];
  try {
    for (const f of files) {
      const temp = join(dirname(f.path), `.${basename(f.path)}.${process.pid}.tmp`);
      temps.push(temp);
      const fd = openSync(temp, "w", f.mode ?? 0o644);
      try {
        writeSync(fd, f.text);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
    files.forEach((f, i) => renameSync(temps[i]!, f.path));
  } catch (e) {
    for (const t of temps) rmSync(t, { force: true });
    const err = e as NodeJS.ErrnoException;
    throw userError("OUTPUT_WRITE", `cannot write ${err.path ?? "the output"} (${err.code ?? err.message}); nothing was written`);
  }
}
