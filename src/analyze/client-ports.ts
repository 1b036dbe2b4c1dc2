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
  const who = (c: FoundClient) => `${NAMES[c.kind]} (${c.config ?? "no config file"}${c.user ? `, user ${c.user}` : ""})`;
  const opened = (port: number) => clients.some((e) => port >= e.ports.first && port <= e.ports.last);
  const entries = clients.map((e) => `${e.path} ${e.name} opens ${e.ports.first === e.ports.last ? e.ports.first : `${e.ports.first}-${e.ports.last}`}`).join(", ");
  const fix = (port: number) => `write ports: ${port}, or ports: auto to read it from the client`;
  const random = (c: FoundClient) => `${who(c)} picks a new random port each time it starts, so a fixed port in the policy goes stale: ${FIXED_PORT_SETTING[c.kind]}, or use ports: auto with swarmgate follow`;
  const running = found.filter((c) => c.listening.length > 0);
  const out: string[] = [];
  if (running.length) {
    for (const c of running) {
      const used = portInUse(c);
      if (used && !opened(used.port)) out.push(`${who(c)} ${used.how} port ${used.port}, which no client entry opens (${entries}): ${fix(used.port)}`);
      if (c.random) out.push(random(c));
    }
    return out;
  }
  // Nothing runs: installed clients that are never started are no reason to warn, unless the policy opens none of their ports.
  const configured = found.flatMap((c) => { const u = portInUse(c); return u ? [{ c, port: u.port }] : []; });
  if (configured.length && !configured.some(({ port }) => opened(port))) {
    out.push(`no client entry (${entries}) opens the port of a client configured here: ${configured.map(({ c, port }) => `${who(c)} port ${port}`).join("; ")}; ${configured.length === 1 ? fix(configured[0]!.port) : "write the port of the one you use, or ports: auto"}`);
  }
  if (found.length === 1 && found[0]!.random) out.push(random(found[0]!));
  return out;
}
