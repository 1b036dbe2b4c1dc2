// Interval arithmetic for exact analysis: the address and port spaces cut at
// every boundary the rules mention, so that within one cell every packet gets
// the same verdict. The way back from a range to CIDR prefixes is in net/ranges.ts.
import { ADDRESS_BITS, sortedUnique, type Family } from "../net/address.js";
import { prefixLast, type Prefix } from "../net/prefix.js";

/** Cell i spans [starts[i], starts[i+1] - 1]; the last cell runs to the end of the space. */
export interface Cells<T extends number | bigint> { starts: T[]; end: T }

export function portCells(ranges: readonly { first: number; last: number }[]): Cells<number> {
  const cuts = new Set<number>([1]);
  for (const r of ranges) { cuts.add(r.first); if (r.last < 65535) cuts.add(r.last + 1); }
  return { starts: [...cuts].sort((a, b) => a - b), end: 65535 };
}

export function addressCells(family: Family, prefixes: readonly Prefix[]): Cells<bigint> {
  const end = (1n << BigInt(ADDRESS_BITS[family])) - 1n;
  const cuts: bigint[] = [0n];
  for (const p of prefixes) {
    if (p.family !== family) continue;
    cuts.push(p.network);
    const last = prefixLast(p);
    if (last < end) cuts.push(last + 1n);
  }
  return { starts: sortedUnique(cuts), end };
}

export function cellLast<T extends number | bigint>(c: Cells<T>, i: number): T {
  const next = c.starts[i + 1];
  if (next === undefined) return c.end;
  return (typeof next === "bigint" ? next - 1n : (next as number) - 1) as T;
}

/** Runs of adjacent selected cells as [first, last] ranges. */
export function runs<T extends number | bigint>(c: Cells<T>, selected: (i: number) => boolean): [T, T][] {
  const out: [T, T][] = [];
  for (let i = 0; i < c.starts.length; i++) {
    if (!selected(i)) continue;
    const last = out[out.length - 1];
    const start = c.starts[i]!;
    if (last && i > 0 && selected(i - 1)) last[1] = cellLast(c, i);
    else out.push([start, cellLast(c, i)]);
  }
  return out;
}
