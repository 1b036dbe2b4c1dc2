// What the simulator must know about the machine besides its ruleset: which
// addresses are its own (fib … type local, routing to input) and where
// routing sends a destination (the output interface of a forwarded packet,
// the address masquerade uses).
import { ADDRESS_BITS, addressKey, type Address } from "../net/address.js";
import { prefixMask, type Prefix } from "../net/prefix.js";

export interface Environment {
  isLocal(a: Address): boolean;
  /** The output interface for a destination; undefined when there is no route. */
  route(a: Address): string | undefined;
  /** The address masquerade gives a packet leaving by iface. */
  addressOf(iface: string, family: 4 | 6): Address | undefined;
}

export interface StaticEnvironmentSpec {
  local: Address[];
  /** Routes, most specific first wins; a route with prefix length 0 is the default. */
  routes: { prefix: Prefix; iface: string }[];
  addresses?: { iface: string; address: Address }[];
}

export function staticEnvironment(spec: StaticEnvironmentSpec): Environment {
  const routeOf = routeTable(spec.routes);
  // Per family, by value: no string built per question (the audit asks for every packet it judges).
  const local = { 4: new Set<bigint>(), 6: new Set<bigint>() };
  for (const l of spec.local) local[l.family].add(addressKey(l.value));
  return {
    isLocal: (a) => local[a.family].has(addressKey(a.value)),
    route: routeOf,
    addressOf: (iface, family) => spec.addresses?.find((x) => x.iface === iface && x.address.family === family)?.address,
  };
}

/**
 * Longest-prefix match. Host routes (a gateway's IPv6 forward hosts, one per
 * forward) are looked up by address, and each family searches its own
 * shorter routes, most specific first with masks computed once: a lookup
 * does not scan every forward's route.
 */
function routeTable(routes: StaticEnvironmentSpec["routes"]): (a: Address) => string | undefined {
  const hosts = { 4: new Map<bigint, string>(), 6: new Map<bigint, string>() };
  const shorter = { 4: [] as { network: bigint; mask: bigint; iface: string; length: number }[], 6: [] as { network: bigint; mask: bigint; iface: string; length: number }[] };
  for (const r of routes) {
    const f = r.prefix.family;
    if (r.prefix.length === ADDRESS_BITS[f]) { const k = addressKey(r.prefix.network); if (!hosts[f].has(k)) hosts[f].set(k, r.iface); continue; }
    shorter[f].push({ network: r.prefix.network, mask: prefixMask(f, r.prefix.length), iface: r.iface, length: r.prefix.length });
  }
  // Stable: among routes of one length, the first listed wins, as before.
  for (const list of Object.values(shorter)) list.sort((a, b) => b.length - a.length);
  return (a) => hosts[a.family].get(addressKey(a.value)) ?? shorter[a.family].find((r) => (a.value & r.mask) === r.network)?.iface;
}
