// The VPN kill switch: traffic that is confined (the client's users, or the
// whole machine) may leave only through the tunnel. Every confined packet
// this machine sends jumps, right after loopback and before connection
// tracking (an established connection must not leak either), into a chain
// that lets it go on only through the tunnel, to the LAN networks named, to
// DNS servers named one by one, or to the tunnel's own endpoint — and drops
// it anywhere else. The chain only returns or drops: what passes still needs
// an ordinary accept further on, so the kill switch never widens anything.
import type { Match } from "../ir/match.js";
import type { Chain, Rule } from "../ir/ruleset.js";
import { builtinPrefix, hostPrefix, type Prefix } from "../net/prefix.js";
import type { Policy } from "../policy/types.js";
import type { VpnSection } from "../policy/vpn.js";
import { ACCEPT, byFamily, daddr, DROP, dport, oif, rule, words } from "./build.js";

export const VPN_CHAIN = "vpn_confined";
const RETURN = { kind: "return" } as const;
const DNS = [{ first: 53, last: 53 }];
/** IPv6 that never leaves the link: neighbour discovery and link-local peers (the machine itself needs them). */
const LINK_SCOPE6 = ["fe80::/10", "ff02::/16"].map(builtinPrefix);

/** The networks confined traffic may still reach: vpn.lan, else the host's own LAN. */
export function vpnLan(p: Policy, vpn: VpnSection): Prefix[] {
  if (vpn.lan.length) return vpn.lan;
  const host = p.host;
  if (host?.lan.length) return host.lan;
  return (host?.addresses ?? []).map((a) => a.network).filter((n) => n.length < (n.family === 4 ? 32 : 128));
}

const isHost = (p: Prefix) => p.length === (p.family === 4 ? 32 : 128);

/** The jumps into the confinement chain, for the head of the output chain. */
export function vpnJumps(vpn: VpnSection): Rule[] {
  const jump = { kind: "jump", chain: VPN_CHAIN } as const;
  if (vpn.scope === "machine") return [rule([], jump, vpn.path, `vpn: everything this machine sends is confined to ${vpn.interface}`)];
  return vpn.users.map((u) => rule([{ kind: "skuid", uid: u.uid }], jump, `${vpn.path}.users`, `vpn: what user ${u.name} (uid ${u.uid}) sends is confined to ${vpn.interface}`));
}

export function vpnChain(p: Policy, vpn: VpnSection): Chain {
  const rules: Rule[] = [];
  const path = vpn.path;
  if (!vpn.ipv6) {
    if (vpn.scope === "machine") {
      rules.push(rule([daddr(6, LINK_SCOPE6)], RETURN, path, "vpn: IPv6 on the link itself (neighbour discovery, link-local)"));
    }
    rules.push(rule([{ kind: "family", family: 6 }], DROP, `${path}.ipv6`, `vpn: confined IPv6 dropped everywhere (${vpn.interface} carries no IPv6)`));
  }
  rules.push(rule([oif(vpn.interface)], RETURN, `${path}.interface`, `vpn: confined traffic through the tunnel ${vpn.interface}`));
  const lan = vpnLan(p, vpn);
  // DNS outside the tunnel only to servers named one by one in vpn.lan: a whole LAN network does not carry DNS.
  for (const [family, servers] of byFamily(lan.filter(isHost))) {
    for (const proto of ["udp", "tcp"] as const) {
      rules.push(rule([daddr(family, servers), dport(proto, DNS)], RETURN, `${path}.lan`, `vpn: DNS to ${words.prefixes(servers)} outside the tunnel (named in vpn.lan), ${words.proto(proto)}`));
    }
  }
  for (const proto of ["udp", "tcp"] as const) {
    rules.push(rule([dport(proto, DNS)], DROP, path, `vpn: no confined DNS outside the tunnel (a DNS leak), ${words.proto(proto)} 53`));
  }
  for (const [family, nets] of byFamily(lan)) {
    if (family === 6 && !vpn.ipv6) continue;
    rules.push(rule([daddr(family, nets)], RETURN, `${path}.lan`, `vpn: confined traffic to the LAN ${words.prefixes(nets)}`));
  }
  for (const e of vpn.endpoints) {
    rules.push(rule([daddr(e.address.family, [hostPrefix(e.address)]), dport(e.protocol, [{ first: e.port, last: e.port }])], RETURN, `${path}.endpoints`,
      `vpn: the tunnel endpoint ${words.prefixes([hostPrefix(e.address)])} ${words.proto(e.protocol)} ${e.port}`));
  }
  rules.push(rule([], DROP, path, `vpn: confined traffic outside the tunnel ${vpn.interface} dropped (kill switch)`));
  return { name: VPN_CHAIN, rules };
}

/** The tunnel's endpoints, reachable through the physical interface, so that the tunnel can come up. */
export function vpnEndpoints(vpn: VpnSection, scope: Match[]): Rule[] {
  return vpn.endpoints.map((e) => rule([...scope, daddr(e.address.family, [hostPrefix(e.address)]), dport(e.protocol, [{ first: e.port, last: e.port }])], ACCEPT, `${vpn.path}.endpoints`,
    `vpn: to the tunnel endpoint ${words.prefixes([hostPrefix(e.address)])} ${words.proto(e.protocol)} ${e.port}`));
}

/** The outbound rules again, through the tunnel: the tunnel is this machine's way to the internet too. */
export function throughTunnel(rules: readonly Rule[], vpn: VpnSection): Rule[] {
  return rules.map((r) => ({ ...r, origin: { ...r.origin, intent: `${r.origin.intent}, through the tunnel ${vpn.interface}` } }));
}
