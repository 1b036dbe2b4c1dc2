// What the kernel did with each crafted packet (lab/stateful-differential.ts),
// told apart by its tag (IPv4 identification, IPv6 flow label) and source:
// - on the firewall host, the connection-tracking state each packet got
//   (prerouting and output at priority -199: just after conntrack at -200,
//   before raw-less tables such as mangle, nat and filter), and the packets
//   that reached input at priority 500, after every filter;
// - on the far nodes, which filter nothing, every packet that arrived
//   (prerouting -400, before their own conntrack).
// Everything a namespace's own kernel sends (resets and unreachables for
// ports nobody listens on, echo replies, the firewall's REJECT answers) is
// dropped at output -400, before connection tracking can see it, so that
// only crafted packets move the connections; the crafter on the host marks
// its packets (MARK) to be let through.
import type { CtState } from "../ir/match.js";
import type { Netns } from "../system/netns.js";

export const MARK = 0x5347;
const STATES: CtState[] = ["new", "established", "related", "invalid", "untracked"];

const sets = (prefix: string) => `
	set ${prefix}4 { typeof ip saddr . ip id; size 65535; flags dynamic; }
	set ${prefix}6 { typeof ip6 saddr . ip6 flowlabel; size 65535; flags dynamic; }`;
const update = (prefix: string, cond = "") => `
		${cond} meta nfproto ipv4 update @${prefix}4 { ip saddr . ip id }
		${cond} meta nfproto ipv6 update @${prefix}6 { ip6 saddr . ip6 flowlabel }`;

function hostTables(): string {
  return `table inet sgstate {${STATES.map((s) => sets(s)).join("")}${sets("got")}
	chain pre {
		type filter hook prerouting priority -199; policy accept;${STATES.map((s) => update(s, `ct state ${s}`)).join("")}
	}
	chain out {
		type filter hook output priority -199; policy accept;${STATES.map((s) => update(s, `ct state ${s}`)).join("")}
	}
	chain got {
		type filter hook input priority 500; policy accept;${update("got")}
	}
}
table inet sgquiet {
	chain out { type filter hook output priority -400; policy accept; meta mark != ${MARK} drop; }
}
`;
}

function farTables(): string {
  return `table inet sgstate {${sets("got")}
	chain got {
		type filter hook prerouting priority -400; policy accept;${update("got")}
	}
}
table inet sgquiet {
	chain out { type filter hook output priority -400; policy drop; }
}
`;
}

// Kernels answer echo requests themselves; the conversations want to answer them.
const QUIET = ["net.ipv4.icmp_echo_ignore_all=1", "net.ipv6.icmp.echo_ignore_all=1"];

export async function installObservers(host: Netns, ...far: Netns[]): Promise<void> {
  await Promise.all([
    host.execChecked("nft", ["-f", "-"], { input: hostTables() }),
    ...far.map((ns) => ns.execChecked("nft", ["-f", "-"], { input: farTables() })),
    ...[host, ...far].map((ns) => ns.execChecked("sysctl", ["-q", "-w", ...QUIET])),
  ]);
}

export interface Observed {
  /** "source|tag" → the state the host's conntrack gave the packet. */
  state: Map<string, CtState>;
  /** "source|tag" of the packets that arrived, by receiving node. */
  delivered: Record<"host" | "peer" | "peer2", Set<string>>;
}

async function elements(ns: Netns): Promise<Map<string, string[]>> {
  const doc = JSON.parse((await ns.execChecked("nft", ["-j", "list", "table", "inet", "sgstate"])).stdout) as { nftables: { set?: { name: string; elem?: unknown[] } }[] };
  const out = new Map<string, string[]>();
  for (const item of doc.nftables) {
    if (!item.set) continue;
    const keys = (item.set.elem ?? []).map((e) => {
      const value = (e as { elem?: { val: unknown } }).elem?.val ?? e;
      return ((value as { concat?: unknown[] }).concat ?? []).map(String).join("|");
    });
    const name = item.set.name.slice(0, -1);
    out.set(name, [...(out.get(name) ?? []), ...keys]);
  }
  return out;
}

export async function readObserved(host: Netns, peer: Netns, peer2: Netns): Promise<Observed> {
  const [h, p, p2] = await Promise.all([elements(host), elements(peer), elements(peer2)]);
  const state = new Map<string, CtState>();
  for (const s of STATES) for (const k of h.get(s) ?? []) state.set(k, s);
  return { state, delivered: { host: new Set(h.get("got")), peer: new Set(p.get("got")), peer2: new Set(p2.get("got")) } };
}
