// Transport ports and inclusive port ranges.

export interface PortRange {
  readonly first: number;
  readonly last: number;
}

export type PortParse = { ok: true; range: PortRange } | { ok: false; code: "POLICY_BAD_PORT" | "POLICY_BAD_RANGE"; reason: string };

const PORT_TEXT = /^[0-9]{1,5}$/;

/** Accepts 6881, "6881" or "6881-6889" (also "6881:6889", the iptables spelling). */
export function parsePortRange(value: unknown): PortParse {
  if (typeof value === "number") return single(value, String(value));
  if (typeof value !== "string") return { ok: false, code: "POLICY_BAD_PORT", reason: "a port is a number or a range \"A-B\"" };
  const text = value.trim();
  const m = /^([0-9]+)\s*[-:]\s*([0-9]+)$/.exec(text);
  if (!m) return PORT_TEXT.test(text) ? single(Number(text), text) : bad(text);
  const first = single(Number(m[1]), m[1]!);
  if (!first.ok) return first;
  const last = single(Number(m[2]), m[2]!);
  if (!last.ok) return last;
  if (first.range.first > last.range.first) {
    return { ok: false, code: "POLICY_BAD_RANGE", reason: `port range "${text}" is reversed (did you mean ${m[2]}-${m[1]}?)` };
  }
  return { ok: true, range: { first: first.range.first, last: last.range.first } };
}

function single(n: number, text: string): PortParse {
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    return { ok: false, code: "POLICY_BAD_PORT", reason: `port ${text} is out of range (ports are 1-65535)` };
  }
  return { ok: true, range: { first: n, last: n } };
}

function bad(text: string): PortParse {
  return { ok: false, code: "POLICY_BAD_PORT", reason: `"${text}" is not a port or a port range "A-B"` };
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
