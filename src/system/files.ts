// Writing files so that nobody ever sees half of one, and a set of files all
// or none: each file is written to a temporary name beside its target and
// flushed; every target is checked before the first rename; the old content of
// each target is kept aside (a hard link) until every rename has succeeded, so
// a failed rename puts the earlier files back.
//
// Only regular files and new paths are written. A symlink is followed to the
// file it names, and that file is replaced atomically (the link stays a link);
// a device, FIFO, socket or directory, or a link to one, or a dangling link,
// is refused with OUTPUT_NOT_REGULAR before anything is written: renaming over
// /dev/null would replace the device node with a regular file.
import { closeSync, copyFileSync, fsyncSync, linkSync, lstatSync, openSync, realpathSync, renameSync, rmSync, writeSync, type Stats } from "node:fs";
import { basename, dirname, join } from "node:path";
import { displayValue, SwarmgateError, userError } from "../errors.js";

export interface FileToWrite {
  path: string;
  text: string;
  mode?: number;
}

interface Target { path: string; exists: boolean }

function kind(s: Stats): string {
  if (s.isDirectory()) return "a directory";
  if (s.isCharacterDevice() || s.isBlockDevice()) return "a device";
  if (s.isFIFO()) return "a FIFO";
  if (s.isSocket()) return "a socket";
  return "not a regular file";
}

const notRegular = (path: string, what: string) =>
  userError("OUTPUT_NOT_REGULAR", `${displayValue(path, 200)} is ${what}; swarmgate writes only regular files or new paths; nothing was written`);

/** Where the text really goes: the path, or the regular file a symlink names. */
export function outputTarget(path: string): Target {
  let stat: Stats;
  try {
    stat = lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return { path, exists: false };
    throw e;
  }
  if (stat.isFile()) return { path, exists: true };
  if (!stat.isSymbolicLink()) throw notRegular(path, kind(stat));
  let real: string;
  let s: Stats;
  try {
    real = realpathSync(path);
    s = lstatSync(real);
  } catch {
    throw notRegular(path, "a symlink that leads nowhere"); // or to a pipe: /dev/stdout
  }
  if (!s.isFile()) throw notRegular(path, `a symlink to ${kind(s)}`);
  return { path: real, exists: true };
}

/**
 * write(2) may write less than asked (a disk that fills up mid-file): loop
 * until all is written; a write that can place nothing more throws (ENOSPC).
 */
export function writeAll(fd: number, data: Buffer): void {
  for (let done = 0; done < data.length;) {
    const n = writeSync(fd, data, done, data.length - done);
    if (n <= 0) throw Object.assign(new Error("short write"), { code: "ENOSPC" });
    done += n;
  }
}

function writeTemp(f: FileToWrite, target: string, temps: string[]): void {
  const temp = join(dirname(target), `.${basename(target)}.${process.pid}.tmp`);
  // "wx": never follow or reuse something already at the temporary name.
  const fd = openSync(temp, "wx", f.mode ?? 0o644);
  temps.push(temp);
  try {
    writeAll(fd, Buffer.from(f.text));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Keeps the current content of a target under a side name until the set is complete. */
function keepAside(target: Target): string | undefined {
  if (!target.exists) return undefined;
  const aside = join(dirname(target.path), `.${basename(target.path)}.${process.pid}.old`);
  rmSync(aside, { force: true });
  try {
    linkSync(target.path, aside);
  } catch {
    copyFileSync(target.path, aside); // a file system without hard links
  }
  return aside;
}

/** Puts the earlier targets back after a failed rename; returns the paths that could not be. */
function putBack(targets: Target[], asides: (string | undefined)[], done: number): string[] {
  const failed: string[] = [];
  for (let i = done - 1; i >= 0; i--) {
    try {
      if (asides[i]) renameSync(asides[i]!, targets[i]!.path);
      else rmSync(targets[i]!.path, { force: true });
      asides[i] = undefined;
    } catch {
      failed.push(targets[i]!.path);
    }
  }
  return failed;
}

/** Renames every temporary over its target; on a failure, puts the earlier targets back. */
function renameAll(targets: Target[], temps: string[]): void {
  const asides: (string | undefined)[] = [];
  let done = 0;
  try {
    for (const t of targets) asides.push(keepAside(t));
    for (; done < targets.length; done++) renameSync(temps[done]!, targets[done]!.path);
  } catch (e) {
    const failed = putBack(targets, asides, done);
    if (failed.length === 0) throw e;
    const err = e as NodeJS.ErrnoException;
    throw userError("OUTPUT_WRITE", `cannot write ${displayValue(err.path ?? "the output", 200)} (${err.code ?? err.message}), and ${failed.map((f) => displayValue(f, 200)).join(", ")} could not be put back: it holds the new content`);
  } finally {
    for (const a of asides) if (a) rmSync(a, { force: true });
  }
}

/** Writes all files or none. */
export function writeFilesAtomically(files: readonly FileToWrite[]): void {
  const temps: string[] = [];
  try {
    const targets = files.map((f) => outputTarget(f.path));
    files.forEach((f, i) => writeTemp(f, targets[i]!.path, temps));
    renameAll(targets, temps);
  } catch (e) {
    for (const t of temps) rmSync(t, { force: true });
    if (e instanceof SwarmgateError) throw e;
    const err = e as NodeJS.ErrnoException;
    throw userError("OUTPUT_WRITE", `cannot write ${displayValue(err.path ?? "the output", 200)} (${err.code ?? err.message}); nothing was written`);
  }
}
