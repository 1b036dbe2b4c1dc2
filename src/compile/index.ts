// Policy → IR. The order of the modules is the order of the rules in each
// chain: loopback and connection tracking first, then hardening, ICMP, the
// openings the policy names, and a log line before the default drop.
import { freeze, PRIORITY, type Chain, type Rule, type Ruleset } from "../ir/ruleset.js";
import type { Policy } from "../policy/types.js";
import { admin } from "./admin.js";
import { conntrackHead, logTail, loopbackIn, loopbackOut } from "./base.js";
import type { ChainName, Contribution } from "./build.js";
import { inboundScope, iif, oif, outboundScope } from "./build.js";
import { clients } from "./clients.js";
import { gateway } from "./gateway.js";
import { antiSpoofing, hardening, tcpHardening } from "./hardening.js";
import { icmp } from "./icmp.js";
import { dhcp, outbound } from "./outbound.js";
import { throughTunnel, vpnChain, vpnEndpoints, vpnJumps } from "./vpn.js";

export const TABLE_NAME = "swarmgate";

export function compile(policy: Policy): Ruleset {
  const parts = policy.role === "gateway" ? gatewayParts(policy) : hostParts(policy);
  const rules = (name: ChainName): Rule[] => parts.flatMap((c) => c[name] ?? []);
  const chains: Chain[] = [];
  const filter = (name: ChainName, hook: "input" | "forward" | "output", what: string, head: Rule[]) => {
    chains.push({
      name, base: { type: "filter", hook, priority: PRIORITY.filter, policy: "drop" },
      rules: [...head, ...rules(name), ...logTail(policy.log, what)],
    });
  };
  filter("input", "input", "a packet for this machine", [loopbackIn(), ...conntrackHead()]);
  if (policy.role === "gateway") filter("forward", "forward", "a forwarded packet", conntrackHead());
  // The kill switch goes before connection tracking: an established connection must not leak either.
  const confine = policy.vpn ? vpnJumps(policy.vpn) : [];
  if (!policy.outbound.any) filter("output", "output", "a packet from this machine", [loopbackOut(), ...confine, ...conntrackHead()]);
  else if (policy.vpn) chains.push({ name: "output", base: { type: "filter", hook: "output", priority: PRIORITY.filter, policy: "accept" }, rules: [loopbackOut(), ...confine] });
  if (policy.role === "gateway" && policy.forward.length > 0) {
    chains.push({ name: "prerouting", base: { type: "nat", hook: "prerouting", priority: PRIORITY.dstnat, policy: "accept" }, rules: rules("prerouting") });
  }
  if (policy.role === "gateway" && rules("postrouting").length > 0) {
    chains.push({ name: "postrouting", base: { type: "nat", hook: "postrouting", priority: PRIORITY.srcnat, policy: "accept" }, rules: rules("postrouting") });
  }
  if (policy.vpn) chains.push(vpnChain(policy, policy.vpn));
  const sets = parts.flatMap((c) => c.sets ?? []);
  return freeze({ tables: [{ family: "inet", name: TABLE_NAME, chains, ...(sets.length > 0 && { sets }) }] });
}

function hostParts(p: Policy): Contribution[] {
  const iface = p.host?.interface;
  const inScope = iface === undefined ? [] : [iif(iface)];
  const outScope = outboundScope(iface);
  const vpn = p.vpn;
  if (!vpn) return [hardening(inboundScope(iface)), icmp(p), dhcp(p, inScope, outScope), clients(p, inScope), admin(p, inScope), outbound(p, outScope)];
  // Behind a VPN, peers arrive through the tunnel: the client's port is opened there (LSD stays on the LAN), and what
  // this machine may open it may open through the tunnel too; the tunnel's endpoint is reachable on the physical side.
  const tunnelOut = outbound(p, [oif(vpn.interface)]);
  return [
    hardening(inboundScope(iface)),
    icmp(p),
    dhcp(p, inScope, outScope),
    clients(p, [iif(vpn.interface)], inScope),
    admin(p, inScope),
    { output: vpnEndpoints(vpn, outScope) },
    outbound(p, outScope),
    { output: throughTunnel(tunnelOut.output ?? [], vpn) },
  ];
}

function gatewayParts(p: Policy): Contribution[] {
  const gw = p.gateway!;
  const inside = { prefixes: [gw.lanNetwork, ...(gw.lanNetwork6 ? [gw.lanNetwork6] : [])], what: "the LAN" };
  const guard = [...tcpHardening(), ...antiSpoofing(iif(gw.wan), inside)];
  return [
    { input: guard, forward: guard },
    icmp(p),
    clients(p, []),
    admin(p, []),
    outbound(p, []),
    gateway(p, gw),
  ];
}
