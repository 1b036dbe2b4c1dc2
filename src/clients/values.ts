// Small value parsers the readers share. Each says what it accepts; a reader
// turns a refusal into a CLIENT_CONFIG_VALUE problem at the key's line.
import type { PortRange, ReadResult } from "./types.js";

export type Found = ReadResult["problems"][number];

/** A whole decimal number from min to max, or undefined. */
export function wholeNumber(text: string, min: number, max: number): number | undefined {
  const t = text.trim();
  if (!/^[+]?\d{1,10}$/.test(t)) return undefined;
  const n = Number(t);
  return n >= min && n <= max ? n : undefined;
}

/** "6881", "6881-6999" (rTorrent, aria2 and the Transmission random range use this shape). */
export function portRange(text: string, min = 1): PortRange | undefined {
  const m = /^\s*(\d{1,5})\s*(?:-\s*(\d{1,5}))?\s*$/.exec(text);
  if (!m) return undefined;
  const from = Number(m[1]);
  const to = m[2] === undefined ? from : Number(m[2]);
  if (from < min || to > 65535 || from > to) return undefined;
  return { from, to };
}

/** The 1-based line and column of an offset in text. */
export function position(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf("\n"); i !== -1 && i < offset; i = text.indexOf("\n", i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, column: offset - start + 1 };
}

/** Problems a reader found, with a helper to add one. */
export class Findings {
  readonly list: Found[] = [];
  syntax(message: string, line?: number, column?: number): void {
    this.list.push({ code: "CLIENT_CONFIG_SYNTAX", message, line, column });
  }
  value(message: string, line?: number): void {
    this.list.push({ code: "CLIENT_CONFIG_VALUE", message, line });
  }
}

/** The text a value came from, shown in a message: quoted, cut short. */
export function shown(value: string): string {
  const v = value.length > 40 ? `${value.slice(0, 40)}…` : value;
  return JSON.stringify(v);
}

/** "--name=value" or "--name value" from a command line. */
export function option(args: readonly string[] | undefined, name: string, short?: string): string | undefined {
  if (!args) return undefined;
  let result: string | undefined;
  args.forEach((a, i) => {
    if (a.startsWith(`${name}=`)) result = a.slice(name.length + 1);
    else if ((a === name || (short !== undefined && a === short)) && i + 1 < args.length) result = args[i + 1];
    else if (short !== undefined && a.startsWith(short) && a.length > short.length && !a.startsWith("--")) result = a.slice(short.length);
  });
  return result;
}
