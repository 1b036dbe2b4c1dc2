// JSON configs (Transmission's settings.json, Deluge's core.conf) read with
// the place of a syntax error and of each key, for problems a user can find.
import { jsonErrorOffset } from "../parse/json-position.js";
import { position, shown, type Findings } from "./values.js";

export type JsonObject = Record<string, unknown>;

/** The object in text[start, end), or undefined after recording where it is wrong. */
export function parseObject(text: string, found: Findings, start = 0, end = text.length): JsonObject | undefined {
  const part = text.slice(start, end);
  let value: unknown;
  try {
    value = JSON.parse(part);
  } catch (e) {
    const at = jsonErrorOffset(part);
    const { line, column } = position(text, start + Math.max(0, at));
    found.syntax(`not valid JSON here (${(e as Error).message.replace(/ in JSON at position.*$/, "").replace(/, ".*$/, "")})`, line, column);
    return undefined;
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    found.syntax("expected a JSON object { … }", position(text, start).line);
    return undefined;
  }
  return value as JsonObject;
}

/** Typed access to keys, each refusal recorded at the key's line. */
export class Keys {
  constructor(private readonly text: string, private readonly obj: JsonObject, private readonly found: Findings, private readonly from = 0) {}

  has(key: string): boolean {
    return Object.hasOwn(this.obj, key);
  }

  line(key: string): number | undefined {
    const at = this.text.indexOf(`${JSON.stringify(key)}`, this.from);
    return at < 0 ? undefined : position(this.text, at).line;
  }

  /** The first of keys present, as a boolean; Transmission and Deluge also write 0/1. */
  bool(keys: readonly string[], fallback: boolean): boolean {
    const key = keys.find((k) => this.has(k));
    if (key === undefined) return fallback;
    const v = this.obj[key];
    if (typeof v === "boolean") return v;
    if (v === 0 || v === 1) return v === 1;
    this.found.value(`${key} must be true or false, not ${shown(JSON.stringify(v) ?? "")}; the default (${fallback}) applies`, this.line(key));
    return fallback;
  }

  /** A whole number from min to max (a numeric string too). */
  int(keys: readonly string[], min: number, max: number, fallback: number): number {
    const key = keys.find((k) => this.has(k));
    if (key === undefined) return fallback;
    const v = this.obj[key];
    const n = typeof v === "number" ? v : typeof v === "string" && /^\d{1,10}$/.test(v.trim()) ? Number(v) : NaN;
    if (Number.isInteger(n) && n >= min && n <= max) return n;
    this.found.value(`${key} must be a whole number from ${min} to ${max}, not ${shown(JSON.stringify(v) ?? "")}; the default (${fallback}) applies`, this.line(key));
    return fallback;
  }

  str(keys: readonly string[], fallback: string): string {
    const key = keys.find((k) => this.has(k));
    if (key === undefined) return fallback;
    const v = this.obj[key];
    if (typeof v === "string") return v;
    this.found.value(`${key} must be a string, not ${shown(JSON.stringify(v) ?? "")}`, this.line(key));
    return fallback;
  }

  raw(key: string): unknown {
    return this.obj[key];
  }
}
