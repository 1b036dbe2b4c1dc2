// The policy's client ports beside the clients' own: the most common reason a
// "correct" firewall leaves a client unreachable is that the client listens
// on another port than the policy opens (a random first port, a change in the
// Web UI, a service config in /var/lib). Clients running here count; when
// none runs, the configured ones do. Warnings only: the policy is what the
// user asked for.
import { FIXED_PORT_SETTING, type FoundClient } from "../policy/auto-ports.js";
import type { Client } from "../policy/types.js";

const NAMES = { qbittorrent: "qBittorrent", transmission: "Transmission", deluge: "Deluge", rtorrent: "rTorrent", aria2: "aria2" } as const;

/** The peer port a client uses: the one it listens on (in its range, or shared by TCP and UDP), else its configured one. */
export function portInUse(c: FoundClient): { port: number; how: string } | undefined {
  const tcp = [...new Set(c.listening.filter((l) => l.protocol === "tcp").map((l) => l.port))];
  const udp = new Set(c.listening.filter((l) => l.protocol === "udp").map((l) => l.port));
  const inRange = c.ports && !c.random ? tcp.filter((p) => p >= c.ports!.from && p <= c.ports!.to) : [];
  const pick = inRange.length ? inRange : tcp.filter((p) => udp.has(p));
  if (pick.length === 1) return { port: pick[0]!, how: "listens on" };
  if (c.ports && !c.random && c.ports.from === c.ports.to) return { port: c.ports.from, how: "is configured for" };
  return undefined;
}

export function clientPortWarnings(clients: readonly Client[], found: readonly FoundClient[]): string[] {
  const running = found.filter((c) => c.listening.length > 0);
  const considered = running.length ? running : found;
  const out: string[] = [];
  for (const c of considered) {
    const who = `${NAMES[c.kind]} (${c.config ?? "no config file"}${c.user ? `, user ${c.user}` : ""})`;
    const used = portInUse(c);
    if (used && !clients.some((e) => used.port >= e.ports.first && used.port <= e.ports.last)) {
      const entries = clients.map((e) => `${e.path} ${e.name} opens ${e.ports.first === e.ports.last ? e.ports.first : `${e.ports.first}-${e.ports.last}`}`).join(", ");
      out.push(`${who} ${used.how} port ${used.port}, which no client entry opens${entries ? ` (${entries})` : ""}: write ports: ${used.port}, or ports: auto to read it from the client`);
    }
    if (c.random) out.push(`${who} picks a new random port each time it starts, so a fixed port in the policy goes stale: ${FIXED_PORT_SETTING[c.kind]}, or use ports: auto with swarmgate follow`);
  }
  return out;
}
