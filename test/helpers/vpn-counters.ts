// Counters on the far side of the VPN lab: an nftables table of the test's
// own (`inet sgv_count`) that counts, per source and protocol, every packet
// that arrives from the torrent host's physical addresses (a leak: it did not
// go through the tunnel) and from the VPN server's outside addresses (it did).
// The WireGuard carrier itself (host → endpoint, UDP) is counted apart, and so
// are ICMP errors the host sends to the endpoint (port unreachable, when the
// server's packets find wireguard-go gone), so that "zero from the host" means
// zero packets outside the tunnel.
import { runChecked } from "../../src/system/run.js";

export const COUNTER_TABLE = "sgv_count";

/** Names of the counters, e.g. phys4_tcp; `all` counts every protocol, `dns` UDP and TCP 53. */
export type CounterName = `${"phys4" | "phys6" | "vpn4" | "vpn6"}_${"tcp" | "udp" | "dns" | "all"}` | "phys4_wg" | "phys4_wg_icmp";
export type Counters = Record<CounterName, number>;

export interface CounterSources {
  host4: string;
  host6: string;
  vpn4: string;
  vpn6: string;
  endpointPort: number;
}

function classes(prefix: string, match: string): string[] {
  return [
    `${match} meta l4proto tcp counter name ${prefix}_tcp`,
    `${match} meta l4proto udp counter name ${prefix}_udp`,
    `${match} udp dport 53 counter name ${prefix}_dns`,
    `${match} tcp dport 53 counter name ${prefix}_dns`,
    `${match} counter name ${prefix}_all`,
  ];
}

/** The table, hooked where the namespace first sees a packet (`prerouting`) or where it passes through (`forward`). */
export function counterTable(s: CounterSources, hook: "prerouting" | "forward"): string {
  const names = ["phys4", "phys6", "vpn4", "vpn6"].flatMap((p) => ["tcp", "udp", "dns", "all"].map((c) => `${p}_${c}`)).concat("phys4_wg", "phys4_wg_icmp");
  const rules = [
    `ip saddr ${s.host4} ip daddr ${s.vpn4} udp dport ${s.endpointPort} counter name phys4_wg return`,
    `ip saddr ${s.host4} ip daddr ${s.vpn4} meta l4proto icmp counter name phys4_wg_icmp return`,
    ...classes("phys4", `ip saddr ${s.host4}`),
    ...classes("phys6", `ip6 saddr ${s.host6}`),
    ...classes("vpn4", `ip saddr ${s.vpn4}`),
    ...classes("vpn6", `ip6 saddr ${s.vpn6}`),
  ];
  return `table inet ${COUNTER_TABLE} {
${names.map((n) => `  counter ${n} { }`).join("\n")}
  chain watch {
    type filter hook ${hook} priority -300; policy accept;
${rules.map((r) => `    ${r}`).join("\n")}
  }
}
`;
}

export async function installCounters(ns: string, s: CounterSources, hook: "prerouting" | "forward"): Promise<void> {
  await runChecked("ip", ["netns", "exec", ns, "nft", "-f", "-"], { input: counterTable(s, hook) });
}

export async function readCounters(ns: string): Promise<Counters> {
  const out = await runChecked("ip", ["netns", "exec", ns, "nft", "-j", "list", "counters", "table", "inet", COUNTER_TABLE]);
  const items = JSON.parse(out.stdout).nftables as { counter?: { name: string; packets: number } }[];
  const counters: Record<string, number> = {};
  for (const item of items) if (item.counter) counters[item.counter.name] = item.counter.packets;
  return counters as Counters;
}

/** What grew between two readings (only the counters that did). */
export function grown(before: Counters, after: Counters): Partial<Counters> {
  const out: Partial<Counters> = {};
  for (const [k, v] of Object.entries(after) as [CounterName, number][]) if (v !== before[k]) out[k] = v - before[k];
  return out;
}
