// Other tools' rules present throughout the fault matrix: Docker- and
// fail2ban-like chains through iptables-nft (both families), an nft table
// with a named set, and a firewalld-like table with a set and a chain at
// another priority. swarmgate must leave every one of them byte-identical.
import type { Netns } from "../../src/system/netns.js";
import { FOREIGN_IPTABLES, FOREIGN_NFT } from "./kernel.js";

export const FOREIGN_IP6TABLES = `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:f2b-sshd - [0:0]
-A INPUT -p tcp -m tcp --dport 22 -j f2b-sshd
-A f2b-sshd -s 2001:db8:66::1/128 -j REJECT --reject-with icmp6-port-unreachable
-A f2b-sshd -j RETURN
COMMIT
`;

export const FIREWALLD_NFT = `table inet firewalld {
	set allowed_v4 {
		type ipv4_addr
		flags interval
		elements = { 192.0.2.0/24 }
	}

	chain filter_INPUT {
		type filter hook input priority filter + 10; policy accept;
		ct state established,related accept
		ip saddr @allowed_v4 accept
	}
}
`;

/** Loads every foreign tool's rules into a fresh namespace, with the real tools. */
export async function loadForeign(ns: Netns): Promise<void> {
  await ns.execChecked("iptables-restore", [], { input: FOREIGN_IPTABLES });
  await ns.execChecked("ip6tables-restore", [], { input: FOREIGN_IP6TABLES });
  await ns.execChecked("nft", ["-f", "-"], { input: FOREIGN_NFT });
  await ns.execChecked("nft", ["-f", "-"], { input: FIREWALLD_NFT });
}

/** What other tools do while a confirmation window is open: a set element, a new table, a fail2ban ban. */
export async function changeForeign(ns: Netns): Promise<string[]> {
  await ns.execChecked("nft", ["add", "element", "inet", "other_tool", "banned", "{ 198.51.100.10 }"]);
  await ns.execChecked("nft", ["-f", "-"], { input: "table inet late_tool {\n\tset watch {\n\t\ttype ipv4_addr\n\t\telements = { 203.0.113.5 }\n\t}\n\tchain output {\n\t\ttype filter hook output priority 5; policy accept;\n\t\tip daddr @watch counter\n\t}\n}\n" });
  await ns.execChecked("iptables", ["-w", "-I", "f2b-sshd", "1", "-s", "203.0.113.77/32", "-j", "REJECT", "--reject-with", "icmp-port-unreachable"]);
  return ["198.51.100.10", "table inet late_tool", "203.0.113.77"];
}
