// What the simulator must know about the machine besides its ruleset: which
// addresses are its own (fib … type local, routing to input) and where
// routing sends a destination (the output interface of a forwarded packet,
// the address masquerade uses).
import type { Address } from "../net/address.js";
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
  // Masks computed once: the audit asks for a route per destination cell.
  const routes = [...spec.routes].sort((a, b) => b.prefix.length - a.prefix.length)
    .map((r) => ({ ...r, mask: prefixMask(r.prefix.family, r.prefix.length) }));
  const local = new Set(spec.local.map((l) => `${l.family}/${l.value}`));
  return {
    isLocal: (a) => local.has(`${a.family}/${a.value}`),
    route: (a) => routes.find((r) => r.prefix.family === a.family && (a.value & r.mask) === r.prefix.network)?.iface,
    addressOf: (iface, family) => spec.addresses?.find((x) => x.iface === iface && x.address.family === family)?.address,
  };
}
