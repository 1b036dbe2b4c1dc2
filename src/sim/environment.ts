// What the simulator must know about the machine besides its ruleset: which
// addresses are its own (fib … type local, routing to input) and where
// routing sends a destination (the output interface of a forwarded packet,
// the address masquerade uses).
import type { Address } from "../net/address.js";
import { prefixContains, type Prefix } from "../net/prefix.js";

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
  const routes = [...spec.routes].sort((a, b) => b.prefix.length - a.prefix.length);
  return {
    isLocal: (a) => spec.local.some((l) => l.family === a.family && l.value === a.value),
    route: (a) => routes.find((r) => prefixContains(r.prefix, a))?.iface,
    addressOf: (iface, family) => spec.addresses?.find((x) => x.iface === iface && x.address.family === family)?.address,
  };
}
