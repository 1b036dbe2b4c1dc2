// Reading the policy file's bytes without trusting the path. A FIFO would block
// a plain open or read forever, and /dev/zero reports size 0 while never
// ending, so: refuse anything but a regular file, decide that on the opened
// descriptor (the path may be swapped between a check and the open), and read
// at most the limit plus one byte whatever stat says.
import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from "node:fs";
import { userError, type SwarmgateError } from "../errors.js";

export const MAX_POLICY_BYTES = 1024 * 1024;

/** The whole file, or a SwarmgateError (POLICY_NOT_FOUND, _UNREADABLE, _NOT_REGULAR, _TOO_LARGE). */
export function readPolicyFile(file: string): Buffer {
  // A stat of the path first spares us opening a device at all (opening some has side effects).
  refuseIrregular(statOrThrow(() => statSync(file), file), file);
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO with no writer returns at once instead of blocking.
    // O_NOCTTY: a terminal device never becomes our controlling terminal.
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | (constants.O_NOCTTY ?? 0));
  } catch (e) {
    throw openError(e, file);
  }
  try {
    const stats = statOrThrow(() => fstatSync(fd), file);
    refuseIrregular(stats, file);
    if (stats.size > MAX_POLICY_BYTES) throw tooLarge(`the policy file is ${stats.size} bytes`, file);
    return readBounded(fd, file);
  } finally {
    closeSync(fd);
  }
}

function readBounded(fd: number, file: string): Buffer {
  const buffer = Buffer.alloc(MAX_POLICY_BYTES + 1);
  let used = 0;
  while (used < buffer.length) {
    let n: number;
    try {
      n = readSync(fd, buffer, used, buffer.length - used, null);
    } catch (e) {
      throw unreadable(e, file);
    }
    if (n === 0) break;
    used += n;
  }
  if (used > MAX_POLICY_BYTES) throw tooLarge("the policy file is larger than that", file);
  return buffer.subarray(0, used);
}

function refuseIrregular(stats: Stats, file: string): void {
  if (stats.isFile()) return;
  const kind = stats.isDirectory() ? "a directory" : stats.isFIFO() ? "a FIFO (named pipe)"
    : stats.isCharacterDevice() || stats.isBlockDevice() ? "a device" : stats.isSocket() ? "a socket" : "not a regular file";
  throw userError("POLICY_NOT_REGULAR", `the policy must be a regular file; this is ${kind}`, { file });
}

function statOrThrow(stat: () => Stats, file: string): Stats {
  try {
    return stat();
  } catch (e) {
    throw openError(e, file);
  }
}

function openError(e: unknown, file: string): SwarmgateError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === "ENOENT") return userError("POLICY_NOT_FOUND", "no such policy file", { file });
  // A socket cannot be opened (ENXIO); a device may have no driver behind it (ENODEV).
  if (code === "ENXIO" || code === "ENODEV") return userError("POLICY_NOT_REGULAR", "the policy must be a regular file", { file });
  return unreadable(e, file);
}

function unreadable(e: unknown, file: string): SwarmgateError {
  return userError("POLICY_UNREADABLE", `cannot read the policy file (${(e as NodeJS.ErrnoException).code ?? "error"})`, { file });
}

function tooLarge(what: string, file: string): SwarmgateError {
  return userError("POLICY_TOO_LARGE", `${what}; the limit is ${MAX_POLICY_BYTES} bytes (1 MiB)`, { file });
}
