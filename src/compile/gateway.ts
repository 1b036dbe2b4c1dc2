// A NAT gateway: LAN hosts may open connections out; each forwarded range
// reaches exactly its LAN host. The forward rule matches the LAN host as the
// *destination* (the classic recipes' -s LANHOST never matches a forwarded
// peer connection), and only connections that DNAT rewrote, or, for IPv6,
// which has no NAT, connections addressed to the host's own IPv6 address.
import { formatAddress } from "../net/address.js";
import { hostPrefix } from "../net/prefix.js";
import type { Rule } from "../ir/ruleset.js";
import type { GatewaySection, Policy } from "../policy/types.js";
import { ACCEPT, daddr, dport, iif, oif, rule, saddr, words, type Contribution } from "./build.js";

export function gateway(p: Policy, gw: GatewaySection): Contribution {
  const forward: Rule[] = [
    rule([iif(gw.lan), oif(gw.wan), saddr(4, [gw.lanNetwork])], ACCEPT, "gateway.lan_network",
      `LAN to internet: connections from ${words.prefixes([gw.lanNetwork])}`),
    gw.lanNetwork6
      ? rule([iif(gw.lan), oif(gw.wan), saddr(6, [gw.lanNetwork6])], ACCEPT, "gateway.lan_network6",
        `LAN to internet: IPv6 connections from ${words.prefixes([gw.lanNetwork6])}`)
      : rule([iif(gw.lan), oif(gw.wan), { kind: "family", family: 6 }], ACCEPT, "gateway.lan",
        `LAN to internet: IPv6 connections from the LAN interface`),
  ];
  const prerouting: Rule[] = [];
  for (const f of p.forward) {
    for (const proto of f.protocols) {
      const what = `${words.proto(proto)} ${words.ports([f.ports])}`;
      const host = formatAddress(f.host);
      prerouting.push(rule([iif(gw.wan), { kind: "localaddr", field: "daddr" }, dport(proto, [f.ports])],
        { kind: "dnat", to: f.host }, f.path, `forward to ${host}: peers reaching the WAN address, ${what}`));
      forward.push(rule([iif(gw.wan), oif(gw.lan), daddr(4, [hostPrefix(f.host)]), dport(proto, [f.ports]), { kind: "ctdnat" }],
        ACCEPT, f.path, `forward to ${host}: peer connections, ${what}`));
      if (f.host6) {
        const host6 = formatAddress(f.host6);
        forward.push(rule([iif(gw.wan), oif(gw.lan), daddr(6, [hostPrefix(f.host6)]), dport(proto, [f.ports])],
          ACCEPT, `${f.path}.host6`, `forward to ${host6}: peer connections over IPv6, ${what}`));
      }
    }
  }
  const postrouting: Rule[] = gw.masquerade
    ? [rule([oif(gw.wan), saddr(4, [gw.lanNetwork])], { kind: "masquerade" }, "gateway.masquerade",
      `masquerade: LAN hosts (${words.prefixes([gw.lanNetwork])}) share the WAN address`)]
    : [];
  return { forward, prerouting, postrouting };
}
