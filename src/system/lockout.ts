// The lockout guard: when apply runs over SSH, the user's own session (and
// every other established SSH connection) must still be able to connect anew
// under the new ruleset, or apply refuses. Each session is judged on the
// interface it really uses: the one the kernel routes its client through.
import { formatAddress, parseAddress, type Address } from "../net/address.js";
import { prefixContains } from "../net/prefix.js";
import type { Ruleset } from "../ir/ruleset.js";
import type { Policy } from "../policy/types.js";
import { compileForSim } from "../sim/compiled.js";
import { policyEnvironment } from "../sim/policy-environment.js";
import { simulate } from "../sim/simulate.js";
import { onPath, run } from "./run.js";

export interface Session { client: Address; clientPort: number; server: Address; serverPort: number; source: string; iface?: string }

function parseEndpoint(text: string): { address: Address; port: number } | undefined {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(text);
  const address = m ? parseAddress(m[1]!.replace(/^::ffff:/, "")) : undefined;
  return m && address ? { address, port: Number(m[2]) } : undefined;
}

/** SSH_CONNECTION and the established connections to port 22. */
export async function sshSessions(env: NodeJS.ProcessEnv = process.env): Promise<Session[]> {
  const out: Session[] = [];
  const parts = env.SSH_CONNECTION?.trim().split(/\s+/);
  if (parts?.length === 4) {
    const client = parseAddress(parts[0]!.replace(/^::ffff:/, ""));
    const server = parseAddress(parts[2]!.replace(/^::ffff:/, ""));
    if (client && server) out.push({ client, clientPort: Number(parts[1]), server, serverPort: Number(parts[3]), source: "SSH_CONNECTION" });
  }
  if (onPath("ss")) {
    const r = await run("ss", ["-Htn", "state", "established", "( sport = :22 )"]);
    for (const line of r.stdout.split("\n")) {
      const cols = line.trim().split(/\s+/);
      const local = cols.length >= 4 ? parseEndpoint(cols[cols.length - 2]!) : undefined;
      const peer = cols.length >= 4 ? parseEndpoint(cols[cols.length - 1]!) : undefined;
      if (local && peer) out.push({ client: peer.address, clientPort: peer.port, server: local.address, serverPort: local.port, source: "established connection" });
    }
  }
  for (const s of out) s.iface = await routeInterface(s.client, s.server);
  return out;
}

/** The interface the kernel uses to reach the client from the server address (`ip route get`). */
async function routeInterface(client: Address, server: Address): Promise<string | undefined> {
  if (!onPath("ip")) return undefined;
  const r = await run("ip", ["-o", `-${client.family}`, "route", "get", formatAddress(client), "from", formatAddress(server)]);
  if (r.code !== 0) return undefined;
  return /\bdev (\S+)/.exec(r.stdout)?.[1];
}

/** The sessions whose client could not open a new SSH connection under the ruleset. */
export function cutSessions(policy: Policy, ruleset: Ruleset, sessions: Session[]): Session[] {
  if (sessions.length === 0) return []; // nobody to lock out: no need to build the simulator
  const sim = compileForSim(ruleset);
  return sessions.filter((s) => {
    if (s.client.family !== s.server.family) return false;
    const gw = policy.gateway;
    const lan = gw ? [gw.lanNetwork, ...(gw.lanNetwork6 ? [gw.lanNetwork6] : [])] : [];
    const loopback = s.client.family === 4 ? s.client.value >> 24n === 127n : s.client.value === 1n;
    const iif = s.iface ?? (loopback ? "lo" : gw ? (lan.some((n) => prefixContains(n, s.client)) ? gw.lan : gw.wan) : policy.host?.interface ?? "eth0");
    const packet = { family: s.client.family, iif, saddr: s.client, daddr: s.server, protocol: "tcp" as const, sport: s.clientPort, dport: s.serverPort, state: "new" as const };
    return simulate(sim, packet, policyEnvironment(policy, packet)).verdict !== "accept";
  });
}
