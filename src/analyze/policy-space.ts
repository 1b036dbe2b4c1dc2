// The machine a policy describes, for exact analysis: its interfaces, an
// address of its own per family, and its routes.
import { parseAddress, type Address, type Family } from "../net/address.js";
import { hostPrefix, prefixContains } from "../net/prefix.js";
import type { Policy } from "../policy/types.js";
import { policyEnvironment } from "../sim/policy-environment.js";
import type { Environment } from "../sim/environment.js";
import type { ExposureSpace } from "./exposure.js";

const DOC_HOST = { 4: "192.0.2.51", 6: "2001:db8::51" };
const DOC_WAN = { 4: "203.0.113.1", 6: "2001:db8:ffff::1" };

export function policySpace(policy: Policy): { space: ExposureSpace; env: Environment } {
  const local = {} as Record<Family, Address>;
  for (const f of [4, 6] as Family[]) {
    const own = policy.host?.addresses.find((a) => a.address.family === f)?.address;
    local[f] = own ?? parseAddress((policy.role === "gateway" ? DOC_WAN : DOC_HOST)[f])!;
  }
  const interfaces = policy.gateway ? [policy.gateway.wan, policy.gateway.lan] : policy.host?.interface ? [policy.host.interface] : [];
  const env = policyEnvironment(policy, undefined, [local[4], local[6]]);
  const gw = policy.gateway;
  // A forward's IPv6 host changes routing only outside the LAN's IPv6 prefix (inside it, the LAN route already leads
  // there); cutting every destination at each of N hosts would make the audit quadratic in the forwards.
  const lan6 = gw?.lanNetwork6;
  const host6 = policy.forward.flatMap((f) => (f.host6 && !(lan6 && prefixContains(lan6, f.host6)) ? [hostPrefix(f.host6)] : []));
  const routes = gw ? [gw.lanNetwork, ...(lan6 ? [lan6] : []), ...host6] : [];
  // Exactly the addresses the environment takes as local: the exposure cuts the address space at each.
  const own = [local[4], local[6], ...(policy.host?.addresses.map((x) => x.address) ?? [])];
  return { space: { interfaces, local, forwards: policy.role === "gateway", routes, own }, env };
}
