// Transport ports and inclusive port ranges.
import { displayValue } from "../errors.js";

export interface PortRange {
  readonly first: number;
  readonly last: number;
}

export type PortParse = { ok: true; range: PortRange } | { ok: false; code: "POLICY_BAD_PORT" | "POLICY_BAD_RANGE"; reason: string };

/**
 * Accepts 6881, "6881" or "6881-6889" (also "6881:6889", the iptables spelling).
 * Written ports are decimal digits only: YAML reads 0x1A, 0o17, 1e3, +80 and
 * 6881.0 as numbers, and tools disagree on what 080 means (octal to some), so
 * a policy passes the text as written and anything but plain digits is refused.
 */
export function parsePortRange(value: unknown): PortParse {
  if (typeof value === "number") return single(value, String(value));
  if (typeof value !== "string") return { ok: false, code: "POLICY_BAD_PORT", reason: "a port is a number or a range \"A-B\"" };
  const m = /^([0-9]+)[-:]([0-9]+)$/.exec(value);
  if (!m) return /^[0-9]+$/.test(value) ? digits(value) : bad(value);
  const first = digits(m[1]!);
  if (!first.ok) return first;
  const last = digits(m[2]!);
  if (!last.ok) return last;
  if (first.range.first > last.range.first) {
    return { ok: false, code: "POLICY_BAD_RANGE", reason: `port range "${value}" is reversed (did you mean ${m[2]}-${m[1]}?)` };
  }
  return { ok: true, range: { first: first.range.first, last: last.range.first } };
}

/** A port written in decimal digits. */
function digits(text: string): PortParse {
  if (text.length > 1 && text.startsWith("0")) {
    return { ok: false, code: "POLICY_BAD_PORT", reason: `port "${displayValue(text)}" has a leading zero; write it without (${Number(text)})` };
  }
  // More than five digits is out of range whatever they are; no need to read them.
  return single(text.length > 5 ? Infinity : Number(text), displayValue(text));
}

function single(n: number, text: string): PortParse {
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    return { ok: false, code: "POLICY_BAD_PORT", reason: `port ${text} is out of range (ports are 1-65535)` };
  }
  return { ok: true, range: { first: n, last: n } };
}

function bad(text: string): PortParse {
  return {
    ok: false, code: "POLICY_BAD_PORT",
    reason: `"${displayValue(text)}" is not a port or a port range "A-B" (a port is written in decimal digits, 1-65535)`,
  };
}

export function rangesOverlap(a: PortRange, b: PortRange): boolean {
  return a.first <= b.last && b.first <= a.last;
}

export function formatPortRange(r: PortRange, separator = "-"): string {
  return r.first === r.last ? String(r.first) : `${r.first}${separator}${r.last}`;
}

export function portCount(r: PortRange): number {
  return r.last - r.first + 1;
}

/** The ranges sorted, with overlapping and adjacent ones joined. */
export function joinPortRanges(ranges: readonly PortRange[]): PortRange[] {
  const out: { first: number; last: number }[] = [];
  for (const r of [...ranges].sort((a, b) => a.first - b.first)) {
    const last = out[out.length - 1];
    if (last && r.first <= last.last + 1) last.last = Math.max(last.last, r.last); else out.push({ first: r.first, last: r.last });
  }
  return out;
}

/** Every port 0-65535 not in the ranges (a negated port match). */
export function portComplement(ranges: readonly PortRange[]): PortRange[] {
  const sorted = [...ranges].sort((a, b) => a.first - b.first);
  const out: PortRange[] = [];
  let next = 0;
  for (const r of sorted) {
    if (r.first > next) out.push({ first: next, last: r.first - 1 });
    next = Math.max(next, r.last + 1);
  }
  if (next <= 65535) out.push({ first: next, last: 65535 });
  return out;
}
