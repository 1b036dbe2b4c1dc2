// The destination-port space cut at every edge of the items' port ranges,
// with the items that can apply in each part, in their original order. Built
// by one sweep, so its cost is the size of what it holds (each ranged item in
// the parts its ranges span, plus the port-independent items once per part
// that some ranged item occupies) rather than parts × items.
import type { PortRange } from "../net/port.js";

/** Which ports an item can apply to: every port, none at all, or those in its ranges. */
export type PortScope = "any" | "none" | readonly PortRange[];

export interface PortIndex<T> {
  /** Part i holds ports from bounds[i-1] (or 0) up to bounds[i] - 1; the last part runs to 65535. */
  readonly bounds: readonly number[];
  /** The items of the part that holds `port`. */
  lookup(port: number): readonly T[];
  /**
   * The same items in two lists: those that apply to every port (one array,
   * the same for every part) and those whose ranges hold `port`. Lets a
   * caller that works per part do the port-independent work once.
   */
  split(port: number): Split<T>;
}

export interface Split<T> { readonly shared: readonly T[]; readonly own: readonly T[] }

/** The index of the part that holds `port`: how many bounds are ≤ port. */
export function partOf(bounds: readonly number[], port: number): number {
  let lo = 0;
  let hi = bounds.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (bounds[mid]! <= port) lo = mid + 1; else hi = mid;
  }
  return lo;
}

export function buildPortIndex<T>(items: readonly T[], scopeOf: (item: T) => PortScope): PortIndex<T> {
  const scopes = items.map(scopeOf);
  const cuts = new Set<number>();
  for (const s of scopes) if (typeof s !== "string") for (const r of s) { cuts.add(r.first); cuts.add(r.last + 1); }
  const bounds = [...cuts].sort((a, b) => a - b);
  // Ranged items per part, by item position (ascending, since items are visited in order).
  const ranged: number[][] = Array.from({ length: bounds.length + 1 }, () => []);
  const anywhere: number[] = [];
  scopes.forEach((s, i) => {
    if (s === "any") { anywhere.push(i); return; }
    if (s === "none") return;
    for (const r of s) {
      const last = partOf(bounds, r.last);
      for (let k = partOf(bounds, r.first); k <= last; k++) if (ranged[k]!.at(-1) !== i) ranged[k]!.push(i);
    }
  });
  const shared = anywhere.map((i) => items[i]!);
  const parts = ranged.map((own) => (own.length === 0 ? shared : merge(anywhere, own).map((i) => items[i]!)));
  const NONE: readonly T[] = [];
  const splits = ranged.map((own): Split<T> => ({ shared, own: own.length === 0 ? NONE : own.map((i) => items[i]!) }));
  return { bounds, lookup: (port) => parts[partOf(bounds, port)]!, split: (port) => splits[partOf(bounds, port)]! };
}

/** Two ascending lists of positions as one ascending list. */
function merge(a: readonly number[], b: readonly number[]): number[] {
  const out: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && a[i]! < b[j]!)) out.push(a[i++]!);
    else out.push(b[j++]!);
  }
  return out;
}
