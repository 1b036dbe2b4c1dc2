// Reading client configs below --root without trusting them: only regular
// files, never blocking on a FIFO, at most MAX_CONFIG_BYTES; an unreadable
// file is a problem to report, not an exception.
import { lstatSync, readlinkSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { SwarmgateError } from "../errors.js";
import { readRegularFile, type FileKind } from "../policy/read-file.js";
import type { Problem } from "./types.js";

export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

const CONFIG: FileKind = {
  noun: "client config", maxBytes: MAX_CONFIG_BYTES,
  codes: { notFound: "CLIENT_CONFIG_NOT_FOUND", notRegular: "CLIENT_CONFIG_NOT_REGULAR", unreadable: "CLIENT_CONFIG_UNREADABLE", tooLarge: "CLIENT_CONFIG_TOO_LARGE" },
};

export type ReadOutcome = { text: string } | { missing: true } | { problem: Omit<Problem, "kind"> };

export function readConfig(file: string): ReadOutcome {
  try {
    return { text: readRegularFile(file, CONFIG).toString("utf8") };
  } catch (e) {
    if (!(e instanceof SwarmgateError)) throw e;
    const d = e.diagnostics[0]!;
    if (d.code === "CLIENT_CONFIG_NOT_FOUND") return { missing: true };
    return { problem: { code: d.code as Problem["code"], file, message: d.message } };
  }
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
