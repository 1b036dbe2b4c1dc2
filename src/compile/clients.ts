// Inbound peer connections to each BitTorrent client's port: TCP for peer
// wire connections, UDP for uTP (BEP 29) and DHT (BEP 5); and Local Service
// Discovery (BEP 14) multicast from the LAN.
import type { Match } from "../ir/match.js";
import type { PortSet, Rule } from "../ir/ruleset.js";
import type { Policy } from "../policy/types.js";
import { builtinPrefix, type Prefix } from "../net/prefix.js";
import { ACCEPT, byFamily, daddr, dport, rule, saddr, words, type Contribution } from "./build.js";

const LSD_PORT = { first: 6771, last: 6771 };
export const LSD_GROUP4 = builtinPrefix("239.192.152.143");
export const LSD_GROUP6 = builtinPrefix("ff15::efc0:988f");
/** Used as the LAN for LSD when the policy names none: private and link-local networks. */
const PRIVATE: Prefix[] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fe80::/10"].map(builtinPrefix);
const LINK_LOCAL6 = builtinPrefix("fe80::/10");

/** The port set of the client at `index` in the policy: named by position, so a new port never renames it. */
export const clientPortSet = (index: number): string => `client_${index}_ports`;

const what = (proto: "tcp" | "udp") => (proto === "tcp" ? "inbound peer connections" : "uTP and DHT from peers");

/** `scope`: where peers arrive (the tunnel, under a vpn section); `lsdScope`: where the LAN's LSD multicast arrives. */
export function clients(p: Policy, scope: Match[], lsdScope: Match[] = scope): Contribution {
  const input: Rule[] = [];
  const sets: PortSet[] = [];
  p.clients.forEach((c, i) => {
    if (!c.auto) {
      for (const proto of c.protocols) {
        input.push(rule([...scope, dport(proto, [c.ports])], ACCEPT, c.path, `client ${c.name}: ${what(proto)}, ${words.proto(proto)} ${words.ports([c.ports])}`));
      }
      return;
    }
    // A port read from the client lives in a named set: when the client moves, nft swaps the set's elements and
    // iptables replaces these rules in place, and no other rule is touched. The words name the set, not the port,
    // so that they stay the same when the port moves.
    const set = clientPortSet(i);
    sets.push({ name: set, ranges: [c.ports], origin: { path: `${c.path}.ports`, intent: `client ${c.name}: the port ${c.auto.kind} uses` } });
    for (const proto of c.protocols) {
      input.push(rule([...scope, dport(proto, [c.ports], set)], ACCEPT, c.path, `client ${c.name}: ${what(proto)}, ${words.proto(proto)} port read from ${c.auto.kind} (set ${set})`));
    }
  });
  const own = sets.length > 0 ? { sets } : {};
  const lsd = p.clients.filter((c) => c.lsd);
  if (lsd.length === 0) return { input, ...own };
  const names = lsd.map((c) => c.name).join(", ");
  const path = `${lsd[0]!.path}.lsd`;
  for (const [family, from] of byFamily(lanSources(p))) {
    input.push(rule([...lsdScope, saddr(family, from), daddr(family, [family === 4 ? LSD_GROUP4 : LSD_GROUP6]), dport("udp", [LSD_PORT])],
      ACCEPT, path, `client ${names}: Local Service Discovery from the LAN (${words.prefixes(from)}), UDP 6771 multicast`));
  }
  const output: Rule[] = ([4, 6] as const).map((family) =>
    rule([daddr(family, [family === 4 ? LSD_GROUP4 : LSD_GROUP6]), dport("udp", [LSD_PORT])], ACCEPT, path,
      `client ${names}: Local Service Discovery announcements, UDP 6771 multicast`));
  return { input, output, ...own };
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

