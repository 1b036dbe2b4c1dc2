// Reading rulesets back from the kernel inside a test namespace, and rules of
// "other tools" that swarmgate must leave exactly as they were.
import type { Netns } from "../../src/system/netns.js";

/** A Docker-like DOCKER chain with NAT rules and a fail2ban-like chain, as iptables-save prints them. */
export const FOREIGN_IPTABLES = `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:f2b-sshd - [0:0]
-A INPUT -p tcp -m multiport --dports 22 -j f2b-sshd
-A FORWARD -o docker0 -j DOCKER
-A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT
-A f2b-sshd -s 203.0.113.66/32 -j REJECT --reject-with icmp-port-unreachable
-A f2b-sshd -j RETURN
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A DOCKER -i docker0 -j RETURN
COMMIT
`;

/** A table of another nftables user. */
export const FOREIGN_NFT = `table inet other_tool {
	set banned {
		type ipv4_addr
		elements = { 198.51.100.9 }
	}

	chain input {
		type filter hook input priority -10; policy accept;
		ip saddr @banned drop
	}
}
`;

/** iptables-save without its timestamp comments and with counters zeroed. */
export async function iptablesSave(ns: Netns, tool: "iptables-save" | "ip6tables-save"): Promise<string> {
  const out = (await ns.execChecked(tool, [])).stdout;
  return out.split("\n").filter((l) => !l.startsWith("#")).map((l) => l.replace(/\[\d+:\d+\]/g, "[0:0]")).join("\n");
}

/** Only the lines that are not swarmgate's, to show other tools' rules are untouched. */
export function withoutSwarmgate(save: string): string {
  return save.split("\n").filter((l) => !l.includes("SWARMGATE-")).join("\n");
}

export async function nftList(ns: Netns, ...what: string[]): Promise<string> {
  return (await ns.execChecked("nft", ["list", ...(what.length ? what : ["ruleset"])])).stdout;
}

export async function hasNftTable(ns: Netns, family: string, name: string): Promise<boolean> {
  return (await ns.exec("nft", ["list", "table", family, name])).code === 0;
}
