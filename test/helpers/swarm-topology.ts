// The two shapes of swarm sandbox, and the policies applied in them with the
// real CLI. Addresses are fixed: every sandbox is its own set of namespaces,
// linked only to each other, so sandboxes running side by side never meet.
//
//   host:     [internet 10.201.0.1, fd5a:201::1] ── eth0 ── [host 10.201.0.2, fd5a:201::2]
//   gateway:  [internet 10.201.0.1] ── wan0 [gateway 10.201.0.2 | 192.168.203.1] lan0 ── eth0 [lan 192.168.203.3]
//
// The tracker and the leecher live in "internet"; the seeder in "host" or "lan".
// Debian's opentracker is IPv4-only, so the swarm itself runs over IPv4; the
// IPv6 addresses make the policies dual-stack as a real host's is.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Netns } from "../../src/system/netns.js";
import { swarmgate } from "./cli-in-netns.js";
import type { Sandbox } from "./swarm-sandbox.js";

export interface SwarmNet {
  internet: Netns;
  /** Where the seeder runs. */
  seederNs: Netns;
  /** Where the policy is applied: the seeder's namespace, or the gateway. */
  firewallNs: Netns;
  trackerAddress: string;
  /** The seeder's address as the internet sees it (the host's, or the gateway's WAN address). */
  seederPublicAddress: string;
}

export async function hostTopology(sb: Sandbox): Promise<SwarmNet> {
  const internet = await sb.netns("inet");
  const host = await sb.netns("host");
  await sb.link(internet, "eth0", ["10.201.0.1/24", "fd5a:201::1/64"], host, "eth0", ["10.201.0.2/24", "fd5a:201::2/64"]);
  return { internet, seederNs: host, firewallNs: host, trackerAddress: "10.201.0.1", seederPublicAddress: "10.201.0.2" };
}

export interface GatewayNet extends SwarmNet { gateway: Netns; lan: Netns; lanHost: string }

export async function gatewayTopology(sb: Sandbox): Promise<GatewayNet> {
  const internet = await sb.netns("inet");
  const gateway = await sb.netns("gw");
  const lan = await sb.netns("lan");
  await sb.link(internet, "eth0", ["10.201.0.1/24", "fd5a:201::1/64"], gateway, "wan0", ["10.201.0.2/24", "fd5a:201::2/64"]);
  await sb.link(gateway, "lan0", ["192.168.203.1/24", "fd5a:203::1/64"], lan, "eth0", ["192.168.203.3/24", "fd5a:203::3/64"]);
  // The LAN host's way out is the gateway, which itself has no route beyond the sandbox.
  await sb.ip(lan, ["route add default via 192.168.203.1", "route add default via fd5a:203::1"]);
  return { internet, seederNs: lan, firewallNs: gateway, gateway, lan, lanHost: "192.168.203.3", trackerAddress: "10.201.0.1", seederPublicAddress: "10.201.0.2" };
}

/** A standalone host policy for hostTopology's host: `client` open on `ports`, trackers on 6969, DNS to the internet side. */
export function hostPolicy(o: { ports: string | number; client?: string }): string {
  return `version: 1
host:
  interface: eth0
  addresses: [10.201.0.2, "fd5a:201::2"]
clients:
  - name: ${o.client ?? "qbittorrent"}
    ports: ${o.ports}
outbound:
  peers: true
  trackers: [6969]
  dns: [10.201.0.1]
icmp: allow
`;
}

/** A gateway policy for gatewayTopology's gateway: `ports` forwarded to the LAN host, the LAN masqueraded. */
export function gatewayPolicy(o: { ports: string | number }): string {
  return `version: 1
gateway:
  wan: wan0
  lan: lan0
  lan_network: 192.168.203.0/24
  lan_network6: "fd5a:203::/64"
  masquerade: true
forward:
  - host: 192.168.203.3
    host6: "fd5a:203::3"
    ports: ${o.ports}
`;
}

/** Applies `policy` in `ns` with the built CLI (its own state directory); throws with the CLI's output if it fails. */
export async function applyPolicy(sb: Sandbox, ns: Netns, policy: string, backend: "nft" | "iptables" = "nft"): Promise<void> {
  const dir = sb.dir("policy");
  const file = join(dir, "policy.yaml");
  writeFileSync(file, policy);
  const r = await swarmgate(ns, ["apply", file, "-b", backend, "--state-dir", join(dir, "state")]);
  sb.note(`swarmgate apply in ${ns.name} (exit ${r.code})`, r.stdout + r.stderr);
  if (r.code !== 0) throw new Error(`swarmgate apply failed in ${ns.name} (exit ${r.code}):\n${r.stdout}${r.stderr}`);
}
