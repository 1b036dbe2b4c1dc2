// `ports: auto` and `ports: {from: KIND, user: NAME, config: PATH}`: a
// client's peer port read from the BitTorrent client itself when the policy
// is loaded. What the client listens on now is the truth; its configuration
// file is the next best (qBittorrent writes a first random port only seconds
// after it starts listening, and never writes a random_port). A choice that is
// not clear — several clients, a random port nobody listens on — is an error
// that names the candidates and how to pick one; never a guess.
import type { PortRange } from "../net/port.js";

export const CLIENT_KINDS = ["qbittorrent", "transmission", "deluge", "rtorrent", "aria2"] as const;
export type ClientKind = (typeof CLIENT_KINDS)[number];

/** Which client a `ports: auto` entry follows; absent fields match any. */
export interface AutoSpec { from?: ClientKind; user?: string; config?: string }

/** A listening socket of a client's process, as `swarmgate clients` reports it. */
export interface ListeningSocket { protocol: "tcp" | "udp"; address: string; port: number; pid?: number }

/** The part of a detected client (`swarmgate clients --json`) that the choice needs. */
export interface FoundClient {
  kind: ClientKind;
  /** null: a running client without a config file (its defaults). */
  config: string | null;
  user?: string | null;
  ports?: { from: number; to: number };
  random: boolean;
  listening: ListeningSocket[];
  /** Its Web UI or RPC listener, and Deluge's daemon port: never the peer port. */
  webui?: { port: number } | null;
  daemon?: { port: number };
}

export interface Detection { clients: FoundClient[]; problems: { message: string }[] }

/** Where the port came from, in words, and anything the user should know. */
export interface AutoPorts { spec: AutoSpec; ports: PortRange; source: string; warnings: string[]; kind: ClientKind; config: string | null }

export type AutoResult = { ok: true; value: AutoPorts } | { ok: false; message: string };

export type AutoPortResolver = (spec: AutoSpec) => AutoResult;

const NAMES: Record<ClientKind, string> = { qbittorrent: "qBittorrent", transmission: "Transmission", deluge: "Deluge", rtorrent: "rTorrent", aria2: "aria2" };

/** The setting that fixes a client's port, for messages. */
export const FIXED_PORT_SETTING: Record<ClientKind, string> = {
  qbittorrent: "Tools → Options → Connection: uncheck \"Use different port on each startup\" ([BitTorrent] Session\\Port=N)",
  transmission: "\"peer-port-random-on-start\": false and \"peer-port\": N in settings.json",
  deluge: "\"random_port\": false and \"listen_ports\": [N, N] in core.conf",
  rtorrent: "network.port_random.set = no and network.port_range.set = N-N in rtorrent.rc",
  aria2: "listen-port=N in aria2.conf",
};

/** How to name one client in a policy: the fewest fields that single it out among `all`. */
export function specFor(c: FoundClient, all: readonly FoundClient[]): string {
  const sameKind = all.filter((o) => o.kind === c.kind);
  if (sameKind.length === 1) return `{from: ${c.kind}}`;
  const sameUser = sameKind.filter((o) => o.user === c.user);
  if (c.user && (sameUser.length === 1 || c.config === null)) return `{from: ${c.kind}, user: ${c.user}}`;
  return c.config === null ? `{from: ${c.kind}}` : `{from: ${c.kind}, config: ${JSON.stringify(c.config)}}`;
}

const describeClient = (c: FoundClient): string =>
  `${NAMES[c.kind]} (${c.config ?? "no config file"}${c.user ? `, user ${c.user}` : ""}${c.listening.length ? `, listening on ${[...new Set(c.listening.map((l) => l.port))].join(",")}` : ", not running"})`;

/** The TCP port a client's process listens on (peer connections), if it listens on exactly one. */
function listeningPort(c: FoundClient): number | "several" | undefined {
  // Never a control port: while a client moves its peer port (qBittorrent through its Web API closes the old
  // listener before it opens the new one), its Web UI may be the only TCP listener left, and was taken for it.
  const control = new Set([c.webui?.port, c.daemon?.port]);
  const tcp = [...new Set(c.listening.filter((l) => l.protocol === "tcp" && !control.has(l.port)).map((l) => l.port))];
  const configured = c.ports;
  // A client also listens for its Web UI or RPC: the peer port is the one in its configured range, or the one UDP shares.
  const udp = new Set(c.listening.filter((l) => l.protocol === "udp").map((l) => l.port));
  const peer = tcp.filter((p) => udp.has(p));
  const inRange = configured && !c.random ? tcp.filter((p) => p >= configured.from && p <= configured.to) : [];
  const pick = inRange.length ? inRange : peer.length ? peer : tcp.length === 1 ? tcp : [];
  if (pick.length === 0) return undefined;
  return pick.length === 1 ? pick[0] : "several";
}

/** Chooses the client `spec` names among those detected and reads its port. */
export function chooseClient(spec: AutoSpec, found: Detection): AutoResult {
  const matching = found.clients.filter((c) =>
    (spec.from === undefined || c.kind === spec.from) && (spec.user === undefined || c.user === spec.user) && (spec.config === undefined || c.config === spec.config));
  const wanted = [spec.from && NAMES[spec.from], spec.user && `of user ${spec.user}`, spec.config && `with config ${spec.config}`].filter(Boolean).join(" ") || "BitTorrent client";
  if (matching.length === 0) {
    const others = found.clients.length ? `; found: ${found.clients.map(describeClient).join("; ")}` : "";
    const problems = found.problems.length ? `; could not read: ${found.problems.map((p) => p.message).join("; ")}` : "";
    return { ok: false, message: `ports: auto found no ${wanted} on this machine${others}${problems}. Run swarmgate clients to see what is found, or write the port itself` };
  }
  let chosen = matching;
  if (chosen.length > 1) {
    // The instance that runs here is the one meant; a config of a client nobody runs is only a candidate.
    const running = chosen.filter((c) => c.listening.length > 0);
    if (running.length === 1) chosen = running;
  }
  if (chosen.length > 1) {
    return { ok: false, message: `ports: auto matches ${chosen.length} clients: ${chosen.map((c) => `${describeClient(c)} — ports: ${specFor(c, found.clients)}`).join("; ")}. Name one with ports: {from: …, user: …} or {from: …, config: …}` };
  }
  const c = chosen[0]!;
  const warnings: string[] = [];
  const listening = listeningPort(c);
  let ports: PortRange;
  let how: string;
  if (typeof listening === "number") {
    ports = { first: listening, last: listening };
    how = "listening now";
    if (c.ports && !c.random && (listening < c.ports.from || listening > c.ports.to)) {
      warnings.push(`${NAMES[c.kind]} listens on ${listening} but its config says ${formatRange(c.ports)}; the port it listens on is used`);
    }
  } else if (c.ports && !c.random) {
    ports = { first: c.ports.from, last: c.ports.to };
    how = listening === "several" ? "its config (it listens on several ports)" : "its config (not listening now)";
  } else {
    return { ok: false, message: `${describeClient(c)} picks a random port${c.random ? " each time it starts" : ""} and is not listening now, so no port can be read. Start it, or give it a fixed port: ${FIXED_PORT_SETTING[c.kind]}` };
  }
  if (c.random) warnings.push(`${NAMES[c.kind]} picks a new random port each time it starts; a firewall that follows it needs swarmgate follow, or fix the port: ${FIXED_PORT_SETTING[c.kind]}`);
  return { ok: true, value: { spec, ports, source: `${NAMES[c.kind]}, ${c.config ?? "no config file"}${c.user ? `, user ${c.user}` : ""}, ${how}`, warnings, kind: c.kind, config: c.config } };
}

const formatRange = (r: { from: number; to: number }): string => (r.from === r.to ? String(r.from) : `${r.from}-${r.to}`);

/** A resolver over one detection, asked once however many entries say `auto`. */
export function resolverOf(detect: () => Detection): AutoPortResolver {
  let found: Detection | undefined;
  return (spec) => chooseClient(spec, (found ??= detect()));
}
