// Interval arithmetic for exact analysis: the address and port spaces cut at
// every boundary the rules mention, so that within one cell every packet gets
// the same verdict; and the way back from a set of cells to CIDR prefixes.
import { ADDRESS_BITS, type Family } from "../net/address.js";
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
  const cuts = new Set<bigint>([0n]);
  for (const p of prefixes) {
    if (p.family !== family) continue;
    cuts.add(p.network);
    const last = prefixLast(p);
    if (last < end) cuts.add(last + 1n);
  }
  return { starts: [...cuts].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)), end };
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

/** The number of bits needed to write n (n > 0): by 32-bit words for IPv4, by hex digits beyond (no base-2 string). */
function bitLength(n: bigint): number {
  if (n <= 0xffffffffn) return 32 - Math.clz32(Number(n));
  const hex = n.toString(16);
  return (hex.length - 1) * 4 + 32 - Math.clz32(parseInt(hex[0]!, 16));
}

/**
 * The fewest CIDR prefixes that cover exactly [first, last], handed to `visit`
 * one by one: at each start the largest block that is aligned there and still
 * fits, found by bit arithmetic (at most 2 × bits blocks).
 */
function eachPrefix(family: Family, first: bigint, last: bigint, visit: (network: bigint, size: number) => void): void {
  const bits = ADDRESS_BITS[family];
  let start = first;
  while (start <= last) {
    // Alignment: the lowest set bit of start (all bits when start is 0); fit: the largest power of two ≤ the remaining count.
    const aligned = start === 0n ? bits : bitLength(start & -start) - 1;
    const fits = bitLength(last - start + 1n) - 1;
    const size = Math.min(aligned, fits, bits);
    visit(start, size);
    start += 1n << BigInt(size);
  }
}

export function rangeToPrefixes(family: Family, first: bigint, last: bigint): Prefix[] {
  const bits = ADDRESS_BITS[family];
  const out: Prefix[] = [];
  eachPrefix(family, first, last, (network, size) => out.push({ family, network, length: bits - size }));
  return out;
}

/** How many prefixes `rangeToPrefixes` would return, without building them (to pick the shorter description first). */
export function prefixCount(family: Family, first: bigint, last: bigint): number {
  let n = 0;
  eachPrefix(family, first, last, () => n++);
  return n;
}
