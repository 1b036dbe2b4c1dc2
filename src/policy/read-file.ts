// Reading the policy file's bytes without trusting the path. A FIFO would block
// a plain open or read forever, and /dev/zero reports size 0 while never
// ending, so: refuse anything but a regular file, decide that on the opened
// descriptor (the path may be swapped between a check and the open), and read
// at most the limit plus one byte whatever stat says.
import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from "node:fs";
import { userError, type ErrorCode, type SwarmgateError } from "../errors.js";

export const MAX_POLICY_BYTES = 1024 * 1024;

/** What a file is to the user, its limit, and the error codes for it. */
export interface FileKind {
  noun: string;
  maxBytes: number;
  codes: { notFound: ErrorCode; notRegular: ErrorCode; unreadable: ErrorCode; tooLarge: ErrorCode };
}

const POLICY: FileKind = {
  noun: "policy file", maxBytes: MAX_POLICY_BYTES,
  codes: { notFound: "POLICY_NOT_FOUND", notRegular: "POLICY_NOT_REGULAR", unreadable: "POLICY_UNREADABLE", tooLarge: "POLICY_TOO_LARGE" },
};

/** The whole file, or a SwarmgateError (POLICY_NOT_FOUND, _UNREADABLE, _NOT_REGULAR, _TOO_LARGE). */
export function readPolicyFile(file: string): Buffer {
  return readRegularFile(file, POLICY);
}

/** The whole regular file, at most kind.maxBytes, or a SwarmgateError with kind's codes. */
export function readRegularFile(file: string, kind: FileKind): Buffer {
  // A stat of the path first spares us opening a device at all (opening some has side effects).
  refuseIrregular(statOrThrow(() => statSync(file), file, kind), file, kind);
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO with no writer returns at once instead of blocking.
    // O_NOCTTY: a terminal device never becomes our controlling terminal.
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | (constants.O_NOCTTY ?? 0));
  } catch (e) {
    throw openError(e, file, kind);
  }
  try {
    const stats = statOrThrow(() => fstatSync(fd), file, kind);
    refuseIrregular(stats, file, kind);
    if (stats.size > kind.maxBytes) throw tooLarge(`the ${kind.noun} is ${stats.size} bytes`, file, kind);
    return readBounded(fd, file, kind);
  } finally {
    closeSync(fd);
  }
}

function readBounded(fd: number, file: string, kind: FileKind): Buffer {
  const buffer = Buffer.alloc(kind.maxBytes + 1);
  let used = 0;
  while (used < buffer.length) {
    let n: number;
    try {
      n = readSync(fd, buffer, used, buffer.length - used, null);
    } catch (e) {
      throw unreadable(e, file, kind);
    }
    if (n === 0) break;
    used += n;
  }
  if (used > kind.maxBytes) throw tooLarge(`the ${kind.noun} is larger than that`, file, kind);
  return buffer.subarray(0, used);
}

function refuseIrregular(stats: Stats, file: string, kind: FileKind): void {
  if (stats.isFile()) return;
  const what = stats.isDirectory() ? "a directory" : stats.isFIFO() ? "a FIFO (named pipe)"
    : stats.isCharacterDevice() || stats.isBlockDevice() ? "a device" : stats.isSocket() ? "a socket" : "not a regular file";
  throw userError(kind.codes.notRegular, `the ${kind.noun} must be a regular file; this is ${what}`, { file });
}

function statOrThrow(stat: () => Stats, file: string, kind: FileKind): Stats {
  try {
    return stat();
  } catch (e) {
    throw openError(e, file, kind);
  }
}

function openError(e: unknown, file: string, kind: FileKind): SwarmgateError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === "ENOENT") return userError(kind.codes.notFound, `no such ${kind.noun}`, { file });
  // A socket cannot be opened (ENXIO); a device may have no driver behind it (ENODEV).
  if (code === "ENXIO" || code === "ENODEV") return userError(kind.codes.notRegular, `the ${kind.noun} must be a regular file`, { file });
  return unreadable(e, file, kind);
}

function unreadable(e: unknown, file: string, kind: FileKind): SwarmgateError {
  return userError(kind.codes.unreadable, `cannot read the ${kind.noun} (${(e as NodeJS.ErrnoException).code ?? "error"})`, { file });
}

function tooLarge(what: string, file: string, kind: FileKind): SwarmgateError {
  return userError(kind.codes.tooLarge, `${what}; the limit is ${kind.maxBytes} bytes (${kind.maxBytes / (1024 * 1024)} MiB)`, { file });
}
