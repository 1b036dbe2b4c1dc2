// Address prefixes (CIDR blocks). A bare address is a prefix of full length.
import { displayValue } from "../errors.js";
import { ADDRESS_BITS, type Address, type Family, formatAddress, parseAddress } from "./address.js";

export interface Prefix {
  readonly family: Family;
  readonly network: bigint; // host bits are always zero
  readonly length: number;
}

export type PrefixParse =
  | { ok: true; prefix: Prefix; address: Address }
  | { ok: false; reason: string };

/**
 * Parses "a.b.c.d", "a.b.c.d/n", "x::y" or "x::y/n". With hostBits "reject",
 * "192.168.1.5/24" is an error (did the user mean the network?); with
 * "interface" it is an interface address whose network is 192.168.1.0/24.
 */
export function parsePrefix(text: string, hostBits: "reject" | "interface" = "reject"): PrefixParse {
  const slash = text.indexOf("/");
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const address = parseAddress(addrText);
  if (!address) return { ok: false, reason: `"${displayValue(addrText)}" is not an IPv4 or IPv6 address` };
  const bits = ADDRESS_BITS[address.family];
  let length = bits;
  if (slash >= 0) {
    const lenText = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(lenText) || Number(lenText) > bits) {
      return { ok: false, reason: `"/${displayValue(lenText)}" is not a prefix length for IPv${address.family} (0-${bits})` };
    }
    length = Number(lenText);
  }
  const network = address.value & prefixMask(address.family, length);
  if (network !== address.value && hostBits === "reject") {
    const suggestion = formatPrefix({ family: address.family, network, length });
    return { ok: false, reason: `"${displayValue(text)}" has host bits set (did you mean ${suggestion}?)` };
  }
  return { ok: true, prefix: { family: address.family, network, length }, address };
}

/** A prefix written in the code itself (documentation ranges, multicast groups); a typo there is a bug. */
export function builtinPrefix(text: string): Prefix {
  const p = parsePrefix(text);
  if (!p.ok) throw new Error(`bad built-in prefix ${text}: ${p.reason}`);
  return p.prefix;
}

/** Every mask, computed once: readers and the simulator ask for them per address. */
const MASKS: Record<Family, bigint[]> = { 4: [], 6: [] };
for (const family of [4, 6] as Family[]) {
  const bits = BigInt(ADDRESS_BITS[family]);
  const all = (1n << bits) - 1n;
  for (let length = 0; length <= ADDRESS_BITS[family]; length++) MASKS[family].push(all ^ ((1n << (bits - BigInt(length))) - 1n));
}

export function prefixMask(family: Family, length: number): bigint {
  const mask = MASKS[family][length];
  if (mask === undefined) throw new Error(`no IPv${family} prefix of length ${length}`);
  return mask;
}

export function prefixLast(p: Prefix): bigint {
  return p.network | ((1n << BigInt(ADDRESS_BITS[p.family] - p.length)) - 1n);
}

export function prefixContains(p: Prefix, a: Address): boolean {
  return p.family === a.family && (a.value & prefixMask(p.family, p.length)) === p.network;
}

export function prefixCovers(outer: Prefix, inner: Prefix): boolean {
  return outer.family === inner.family && outer.length <= inner.length &&
    (inner.network & prefixMask(outer.family, outer.length)) === outer.network;
}

export function prefixesOverlap(a: Prefix, b: Prefix): boolean {
  return prefixCovers(a, b) || prefixCovers(b, a);
}

export function isHostPrefix(p: Prefix): boolean {
  return p.length === ADDRESS_BITS[p.family];
}

/** "192.168.1.0/24"; a host prefix prints as the bare address. */
export function formatPrefix(p: Prefix): string {
  const addr = formatAddress({ family: p.family, value: p.network });
  return isHostPrefix(p) ? addr : `${addr}/${p.length}`;
}

export function hostPrefix(a: Address): Prefix {
  return { family: a.family, network: a.value, length: ADDRESS_BITS[a.family] };
}

export function anyPrefix(family: Family): Prefix {
  return { family, network: 0n, length: 0 };
}
