// Inbound peer connections to each BitTorrent client's port: TCP for peer
// wire connections, UDP for uTP (BEP 29) and DHT (BEP 5); and Local Service
// Discovery (BEP 14) multicast from the LAN.
import type { Match } from "../ir/match.js";
import type { Rule } from "../ir/ruleset.js";
import type { Policy } from "../policy/types.js";
import { builtinPrefix, type Prefix } from "../net/prefix.js";
import { ACCEPT, byFamily, daddr, dport, rule, saddr, words, type Contribution } from "./build.js";

const LSD_PORT = { first: 6771, last: 6771 };
export const LSD_GROUP4 = builtinPrefix("239.192.152.143");
export const LSD_GROUP6 = builtinPrefix("ff15::efc0:988f");
/** Used as the LAN for LSD when the policy names none: private and link-local networks. */
const PRIVATE: Prefix[] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fe80::/10"].map(builtinPrefix);
const LINK_LOCAL6 = builtinPrefix("fe80::/10");

export function clients(p: Policy, scope: Match[]): Contribution {
  const input: Rule[] = [];
  for (const c of p.clients) {
    for (const proto of c.protocols) {
      input.push(rule([...scope, dport(proto, [c.ports])], ACCEPT, c.path,
        `client ${c.name}: ${proto === "tcp" ? "inbound peer connections" : "uTP and DHT from peers"}, ${words.proto(proto)} ${words.ports([c.ports])}`));
    }
  }
  const lsd = p.clients.filter((c) => c.lsd);
  if (lsd.length === 0) return { input };
  const names = lsd.map((c) => c.name).join(", ");
  const path = `${lsd[0]!.path}.lsd`;
  for (const [family, from] of byFamily(lanSources(p))) {
    input.push(rule([...scope, saddr(family, from), daddr(family, [family === 4 ? LSD_GROUP4 : LSD_GROUP6]), dport("udp", [LSD_PORT])],
      ACCEPT, path, `client ${names}: Local Service Discovery from the LAN (${words.prefixes(from)}), UDP 6771 multicast`));
  }
  const output: Rule[] = ([4, 6] as const).map((family) =>
    rule([daddr(family, [family === 4 ? LSD_GROUP4 : LSD_GROUP6]), dport("udp", [LSD_PORT])], ACCEPT, path,
      `client ${names}: Local Service Discovery announcements, UDP 6771 multicast`));
  return { input, output };
}

/** The LAN as the policy describes it, link-local IPv6 always included. */
function lanSources(p: Policy): Prefix[] {
  const host = p.host;
  let lan: Prefix[] = host?.lan ?? [];
  if (lan.length === 0 && host) lan = host.addresses.map((a) => a.network).filter((n) => n.length < (n.family === 4 ? 32 : 128));
  if (lan.length === 0 && p.gateway) lan = [p.gateway.lanNetwork, ...(p.gateway.lanNetwork6 ? [p.gateway.lanNetwork6] : [])];
  if (lan.length === 0) return PRIVATE;
  return lan.some((n) => n.family === 6 && n.network === LINK_LOCAL6.network && n.length === LINK_LOCAL6.length) ? lan : [...lan, LINK_LOCAL6];
}

