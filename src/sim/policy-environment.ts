// The machine a policy describes, as the simulator needs it: its own
// addresses and its routes. A gateway's WAN address is usually dynamic, so a
// packet arriving with `in IF` alone is taken to be addressed to this machine.
import { anyPrefix } from "../net/prefix.js";
import type { Address } from "../net/address.js";
import type { Policy } from "../policy/types.js";
import { staticEnvironment, type Environment } from "./environment.js";
import type { Packet } from "./packet.js";

export function policyEnvironment(policy: Policy, packet?: Packet, extraLocal: Address[] = []): Environment {
  const local: Address[] = [...extraLocal, ...(policy.host?.addresses.map((a) => a.address) ?? [])];
  if (packet && packet.iif !== undefined && packet.oif === undefined) local.push(packet.daddr);
  if (policy.role === "gateway") {
    const gw = policy.gateway!;
    return staticEnvironment({
      local,
      routes: [
        { prefix: gw.lanNetwork, iface: gw.lan },
        ...(gw.lanNetwork6 ? [{ prefix: gw.lanNetwork6, iface: gw.lan }] : []),
        ...policy.forward.flatMap((f) => (f.host6 ? [{ prefix: { family: 6 as const, network: f.host6.value, length: 128 }, iface: gw.lan }] : [])),
        { prefix: anyPrefix(4), iface: gw.wan },
        { prefix: anyPrefix(6), iface: gw.wan },
      ],
    });
  }
  const iface = policy.host?.interface ?? "eth0";
  return staticEnvironment({ local, routes: [{ prefix: anyPrefix(4), iface }, { prefix: anyPrefix(6), iface }] });
}
