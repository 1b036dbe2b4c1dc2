// Reading client configs below --root without trusting them: only regular
// files, never blocking on a FIFO, at most MAX_CONFIG_BYTES; an unreadable
// file is a problem to report, not an exception.
import { closeSync, constants, fstatSync, lstatSync, openSync, readlinkSync, readSync, statSync, type Stats } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import type { Problem } from "./types.js";

export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

export type ReadOutcome = { text: string } | { missing: true } | { problem: Omit<Problem, "kind"> };

/**
 * The text of a config, or why not. A FIFO would block a plain open and a
 * device may never end, so: stat first, open with O_NONBLOCK, decide on the
 * opened descriptor and read at most the limit plus one byte. The buffer is
 * sized from the file (configs are small), not from the limit.
 */
export function readConfig(file: string): ReadOutcome {
  const problem = (code: Problem["code"], message: string): ReadOutcome => ({ problem: { code, file, message } });
  const failed = (e: unknown): ReadOutcome => {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return { missing: true };
    if (code === "ENXIO" || code === "ENODEV") return problem("CLIENT_CONFIG_NOT_REGULAR", "the client config must be a regular file");
    return problem("CLIENT_CONFIG_UNREADABLE", `cannot read the client config (${code ?? "error"})`);
  };
  let fd: number;
  try {
    const irregular = notRegular(statSync(file));
    if (irregular) return problem("CLIENT_CONFIG_NOT_REGULAR", irregular);
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | (constants.O_NOCTTY ?? 0));
  } catch (e) {
    return failed(e);
  }
  try {
    const stats = fstatSync(fd);
    const irregular = notRegular(stats);
    if (irregular) return problem("CLIENT_CONFIG_NOT_REGULAR", irregular);
    const tooLarge = () => problem("CLIENT_CONFIG_TOO_LARGE", `the client config is larger than the limit of ${MAX_CONFIG_BYTES} bytes (${MAX_CONFIG_BYTES / (1024 * 1024)} MiB)`);
    if (stats.size > MAX_CONFIG_BYTES) return tooLarge();
    let buffer = Buffer.allocUnsafe(Math.min(MAX_CONFIG_BYTES + 1, stats.size + 1));
    let used = 0;
    for (;;) {
      if (used === buffer.length) {
        if (buffer.length > MAX_CONFIG_BYTES) return tooLarge(); // it grew while we read
        const bigger = Buffer.allocUnsafe(Math.min(MAX_CONFIG_BYTES + 1, buffer.length * 2));
        buffer.copy(bigger, 0, 0, used);
        buffer = bigger;
      }
      const n = readSync(fd, buffer, used, buffer.length - used, null);
      if (n === 0) break;
      used += n;
    }
    return { text: buffer.toString("utf8", 0, used) };
  } catch (e) {
    return failed(e);
  } finally {
    closeSync(fd);
  }
}

function notRegular(s: Stats): string | undefined {
  if (s.isFile()) return undefined;
  const what = s.isDirectory() ? "a directory" : s.isFIFO() ? "a FIFO (named pipe)"
    : s.isCharacterDevice() || s.isBlockDevice() ? "a device" : s.isSocket() ? "a socket" : "not a regular file";
  return `the client config must be a regular file; this is ${what}`;
}

/** A path inside root as this machine sees it. */
export function inRoot(root: string, path: string): string {
  return root === "/" ? resolve("/", path) : join(root, resolve("/", path));
}

/**
 * The file a path names when symbolic links in its last component are
 * followed inside root: Debian links /var/lib/transmission-daemon/…/settings.json
 * to /etc/transmission-daemon/settings.json, which below --root is root's /etc, not ours.
 */
export function resolveInRoot(root: string, path: string): string {
  let p = path;
  for (let hops = 0; hops < 8; hops++) {
    let target: string;
    try {
      if (!lstatSync(p).isSymbolicLink()) return p;
      target = readlinkSync(p);
    } catch {
      return p;
    }
    p = isAbsolute(target) ? inRoot(root, target) : join(dirname(p), target);
  }
  return p;
}

/** "dev:ino" of a file, to tell two paths to one file apart from two files; undefined when it does not exist. */
export function identity(path: string): string | undefined {
  try {
    const s = statSync(path);
    return `${s.dev}:${s.ino}`;
  } catch {
    return undefined;
  }
}
