// What this machine may open: DNS (UDP and TCP, since large answers fall back
// to TCP), trackers (HTTP, HTTPS and UDP trackers alike), peers, DHCP.
import type { Match } from "../ir/match.js";
import type { Rule } from "../ir/ruleset.js";
import { hostPrefix } from "../net/prefix.js";
import type { Policy } from "../policy/types.js";
import { ACCEPT, byFamily, daddr, dport, rule, sport, words, type Contribution } from "./build.js";

const DNS = [{ first: 53, last: 53 }];
const PEER_PORTS = [{ first: 1024, last: 65535 }];

export function outbound(p: Policy, scope: Match[]): Contribution {
  const o = p.outbound;
  const output: Rule[] = [];
  if (o.dns === "any") {
    for (const proto of ["udp", "tcp"] as const) {
      output.push(rule([...scope, dport(proto, DNS)], ACCEPT, "outbound.dns", `outbound DNS: ${words.proto(proto)} 53 to any server`));
    }
  } else {
    for (const [family, servers] of byFamily(o.dns.map(hostPrefix))) {
      for (const proto of ["udp", "tcp"] as const) {
        output.push(rule([...scope, daddr(family, servers), dport(proto, DNS)], ACCEPT, "outbound.dns",
          `outbound DNS: ${words.proto(proto)} 53 to ${words.prefixes(servers)}`));
      }
    }
  }
  for (const t of o.trackers) {
    const targets = t.to.length === 0 ? [undefined] : byFamily(t.to);
    for (const target of targets) {
      for (const proto of t.protocols) {
        const to = target ? [daddr(target[0], target[1])] : [];
        const where = target ? ` to ${words.prefixes(target[1])}` : "";
        output.push(rule([...scope, ...to, dport(proto, t.ports)], ACCEPT, t.path,
          `outbound trackers: ${words.proto(proto)} ${words.ports(t.ports)}${where}`));
      }
    }
  }
  if (o.peers) {
    for (const proto of ["tcp", "udp"] as const) {
      output.push(rule([...scope, dport(proto, PEER_PORTS)], ACCEPT, "outbound.peers",
        `outbound peers: ${words.proto(proto)} 1024-65535`));
    }
  }
  return { output };
}

/** DHCP and DHCPv6 clients: requests out, the server's answers in. */
export function dhcp(p: Policy, inScope: Match[], outScope: Match[]): Contribution {
  if (!p.host?.dhcp) return {};
  const port = (n: number) => [{ first: n, last: n }];
  return {
    input: [
      rule([...inScope, { kind: "family", family: 4 }, sport("udp", port(67)), dport("udp", port(68))], ACCEPT, "host.dhcp", "DHCP: answers from a server, UDP 67 to 68"),
      rule([...inScope, { kind: "family", family: 6 }, sport("udp", port(547)), dport("udp", port(546))], ACCEPT, "host.dhcp", "DHCP: DHCPv6 answers from a server, UDP 547 to 546"),
    ],
    output: [
      rule([...outScope, { kind: "family", family: 4 }, dport("udp", port(67))], ACCEPT, "host.dhcp", "DHCP: requests, UDP 67"),
      rule([...outScope, { kind: "family", family: 6 }, dport("udp", port(547))], ACCEPT, "host.dhcp", "DHCP: DHCPv6 requests, UDP 547"),
    ],
  };
}
