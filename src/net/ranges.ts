// Address ranges and CIDR prefixes: the fewest prefixes that cover exactly a
// range (the exposure report writes cell sets this way; readers of other
// tools' rulesets turn iptables' address ranges and negations into prefixes).
import { ADDRESS_BITS, type Family } from "./address.js";
import type { Prefix } from "./prefix.js";

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
