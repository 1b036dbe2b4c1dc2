// Seeing what arrives, without listening on every port: a small nftables
// table in a receiving namespace records (source, protocol, source port,
// destination port) of every new packet in a dynamic set. On the firewall
// itself it hooks input after every filter (priority 500), so it sees only
// what the firewall let in; elsewhere it hooks prerouting right after
// connection tracking (-200) has given the packet its state.
import type { Netns } from "../system/netns.js";

const TABLE = "sgcapture";

function captureRuleset(where: "firewall" | "far side"): string {
  const hook = where === "firewall" ? "type filter hook input priority 500" : "type filter hook prerouting priority -150";
  return `table inet ${TABLE} {
	set seen4 { type ipv4_addr . inet_proto . inet_service . inet_service; size 65535; flags dynamic; }
	set seen6 { type ipv6_addr . inet_proto . inet_service . inet_service; size 65535; flags dynamic; }
	set ping4 { type ipv4_addr . ipv4_addr; size 65535; flags dynamic; }
	set ping6 { type ipv6_addr . ipv6_addr; size 65535; flags dynamic; }
	chain seen {
		${hook}; policy accept;
		ct state new meta l4proto { tcp, udp } meta nfproto ipv4 update @seen4 { ip saddr . meta l4proto . th sport . th dport }
		ct state new meta l4proto { tcp, udp } meta nfproto ipv6 update @seen6 { ip6 saddr . meta l4proto . th sport . th dport }
		icmp type echo-request update @ping4 { ip saddr . ip daddr }
		icmpv6 type echo-request update @ping6 { ip6 saddr . ip6 daddr }
	}
}
`;
}

export async function installCapture(ns: Netns, where: "firewall" | "far side"): Promise<void> {
  await ns.execChecked("nft", ["-f", "-"], { input: captureRuleset(where) });
}

/** Keys "saddr|proto|sport|dport" for TCP and UDP, "saddr|icmp|daddr" for echo requests. */
export async function readCapture(ns: Netns): Promise<Set<string>> {
  const out = (await ns.execChecked("nft", ["-j", "list", "table", "inet", TABLE])).stdout;
  const keys = new Set<string>();
  const doc = JSON.parse(out) as { nftables: { set?: { name: string; elem?: unknown[] } }[] };
  for (const item of doc.nftables) {
    const set = item.set;
    if (!set?.elem) continue;
    for (const e of set.elem) {
      const value = (e as { elem?: { val: unknown } }).elem?.val ?? e;
      const parts = ((value as { concat?: unknown[] }).concat ?? []).map(String);
      if (set.name.startsWith("seen")) keys.add(`${parts[0]}|${protoName(parts[1]!)}|${parts[2]}|${parts[3]}`);
      else keys.add(`${parts[0]}|icmp|${parts[1]}`);
    }
  }
  return keys;
}

function protoName(p: string): string {
  return p === "6" ? "tcp" : p === "17" ? "udp" : p;
}
