// Address ranges and CIDR prefixes: the fewest prefixes that cover exactly a
// range (the exposure report writes cell sets this way; readers of other
// tools' rulesets turn iptables' address ranges and negations into prefixes).
import { ADDRESS_BITS, type Family } from "./address.js";
import type { Prefix } from "./prefix.js";

/** The number of bits needed to write n (n > 0): by 32-bit words (a string conversion per call costs more than three shifts). */
function bitLength(n: bigint): number {
  let bits = 0;
  while (n > 0xffffffffn) { n >>= 32n; bits += 32; }
  return bits + 32 - Math.clz32(Number(n));
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

/** Set bits of n ≥ 0, by 32-bit words. */
function popcount(n: bigint): number {
  let count = 0;
  while (n > 0n) {
    let w = Number(n & 0xffffffffn);
    w -= (w >>> 1) & 0x55555555;
    w = (w & 0x33333333) + ((w >>> 2) & 0x33333333);
    count += (((w + (w >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
    n >>= 32n;
  }
  return count;
}

/**
 * How many prefixes `rangeToPrefixes` would return, without building them (to
 * pick the shorter description first), in closed form: [first, last + 1) splits
 * at m, the highest boundary aligned to the top bit where first and last + 1
 * differ. Below m the blocks grow to it, one per set bit of m - first; from m
 * they shrink, one per set bit of last + 1 - m. (The family does not change
 * the count: a range of the space never crosses its end.)
 */
export function prefixCount(_family: Family, first: bigint, last: bigint): number {
  const end = last + 1n;
  const h = BigInt(bitLength(first ^ end) - 1);
  const m = (end >> h) << h;
  return popcount(m - first) + popcount(end - m);
}

/** An inclusive interval of address values. */
export type Range = [bigint, bigint];

/** The ranges sorted, with overlapping and adjacent ones joined. */
export function unionRanges(rs: readonly Range[]): Range[] {
  const sorted = [...rs].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const out: Range[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r[0] <= last[1] + 1n) { if (r[1] > last[1]) last[1] = r[1]; } else out.push([r[0], r[1]]);
  }
  return out;
}

/** What of `a` is not in `b`; both sorted and joined (unionRanges). */
export function subtractRanges(a: readonly Range[], b: readonly Range[]): Range[] {
  const out: Range[] = [];
  for (const [x, y] of a) {
    let start = x;
    for (const [p, q] of b) {
      if (q < start || p > y) continue;
      if (p > start) out.push([start, p - 1n]);
      start = q + 1n;
      if (start > y) break;
    }
    if (start <= y) out.push([start, y]);
  }
  return out;
}

/** The whole address space of a family, as one range. */
export const fullRange = (family: Family): Range[] => [[0n, (1n << BigInt(ADDRESS_BITS[family])) - 1n]];

/** Every address of the family outside the prefixes (a negated address match), as the fewest prefixes. */
export function prefixComplement(family: Family, prefixes: readonly Prefix[]): Prefix[] {
  const inside = unionRanges(prefixes.map((p): Range => [p.network, p.network + (1n << BigInt(ADDRESS_BITS[family] - p.length)) - 1n]));
  return subtractRanges(fullRange(family), inside).flatMap(([a, b]) => rangeToPrefixes(family, a, b));
}
