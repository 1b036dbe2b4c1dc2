// A real BitTorrent swarm in network namespaces, for tests that prove an
// applied swarmgate policy with the real programs: opentracker (Debian's,
// IPv4-only and whitelist-only), a seeder (qbittorrent-nox or
// transmission-daemon), and aria2c as a leecher that cannot accept inbound
// connections, so that a transfer succeeds only if the leecher can connect to
// the seeder's peer port through the firewall. DHT, LSD and PEX are off on both
// sides: the tracker is the only way the two find each other.
//
//   const sb = new Sandbox();
//   try {
//     const s = await startSwarm(sb, { where: "host", seeder: "qbittorrent", peerPort: 6881, policy: hostPolicy({ ports: 6881 }) });
//     const r = await s.transfer(30_000);
//     expect(r.ok, sb.report()).toBe(true);          // report(): phases, apply output, each program's last lines
//     await s.seeder.setPeerPort(6890);               // through qBittorrent's Web API (Transmission: RPC session-set)
//   } finally {
//     await sb.close();                               // stops every program, deletes the namespaces and files
//   }
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Netns } from "../../src/system/netns.js";
import { listening, until, type Proc, type Sandbox } from "./swarm-sandbox.js";
import { startQbittorrent, startTransmission, type Seeder, type SeederKind } from "./swarm-seeders.js";
import { gatewayTopology, hostTopology, applyPolicy, type SwarmNet } from "./swarm-topology.js";
import { intactBytes, makeTorrent, sha256, type Torrent } from "./swarm-torrent.js";

export * from "./swarm-sandbox.js";
export * from "./swarm-seeders.js";
export * from "./swarm-torrent.js";
export * from "./swarm-topology.js";

export const TRACKER_PORT = 6969;
export const announceUrl = (address: string, port = TRACKER_PORT): string => `http://${address}:${port}/announce`;

export interface Tracker { proc: Proc; announce: string; stop(): Promise<void> }

/**
 * Starts opentracker on `address` (TCP and UDP `port`) with `infoHashes` on its
 * whitelist. It chroots into its directory and drops to user nobody (it
 * refuses to run as root), so the directory is world-readable.
 */
export async function startTracker(sb: Sandbox, ns: Netns, address: string, infoHashes: string[], port = TRACKER_PORT): Promise<Tracker> {
  const dir = sb.dir("tracker");
  writeFileSync(join(dir, "whitelist.txt"), infoHashes.map((h) => `${h}\n`).join(""), { mode: 0o644 });
  const proc = sb.start(ns, "opentracker", "opentracker", ["-i", address, "-p", String(port), "-P", String(port), "-d", dir, "-w", "whitelist.txt"]);
  await until("opentracker to listen", 10_000, async () => {
    if (!proc.running) throw new Error("opentracker exited");
    return (await listening(ns, port)) ? true : undefined;
  });
  return { proc, announce: announceUrl(address, port), stop: () => proc.stop() };
}

/** The leecher's listen port, which blockInbound closes. */
export const LEECHER_PORT = 6999;

/**
 * Refuses every inbound TCP and UDP packet to `port` in `ns` (a table of the
 * test's own, not swarmgate's). Refused with a reset, not dropped: a seeder
 * that learned the leecher's address and tries it must fail at once, because
 * libtorrent (qBittorrent) turns away an incoming connection from an address it
 * is still connecting to, and a dropped SYN keeps it connecting for a while.
 */
export async function blockInbound(ns: Netns, port: number): Promise<void> {
  await ns.execChecked("nft", ["-f", "-"], {
    input: `table inet sgs_leecher\nflush table inet sgs_leecher\ntable inet sgs_leecher {\n  chain input {\n    type filter hook input priority -10; policy accept;\n    tcp dport ${port} reject with tcp reset\n    udp dport ${port} reject\n  }\n}\n`,
  });
}

export interface TransferResult {
  /** aria2c finished (exit 0) and the file is complete with the right checksum. */
  ok: boolean;
  /** Bytes of the file that arrived intact (counted in 16 KiB blocks against the original). */
  bytes: number;
  seconds: number;
  /** aria2c's exit status (null: stopped at the deadline). */
  code: number | null;
  /** Every peer (address:port) aria2c tried to connect to, from its log (itself left out). */
  dialed: string[];
  /** The peers (address:port) that completed a BitTorrent handshake with aria2c. */
  handshakes: string[];
  proc: Proc;
}

export interface LeechOptions {
  /** Stop aria2c after this long; a transfer that has not finished by then failed. */
  timeoutMs: number;
  listenPort?: number;
  /** More aria2c options, e.g. --interface=ADDR to come from another of the namespace's addresses. */
  args?: string[];
}

/**
 * Downloads `t` with aria2c in `ns`, its own listen port blocked there, and no
 * DHT, LSD or PEX. Every call is a fresh download into a new directory.
 */
export async function leech(sb: Sandbox, ns: Netns, t: Torrent, o: LeechOptions): Promise<TransferResult> {
  const port = o.listenPort ?? LEECHER_PORT;
  await blockInbound(ns, port);
  const dir = sb.dir("leecher");
  const started = Date.now();
  const proc = sb.start(ns, "aria2c", "aria2c", [
    `--dir=${dir}`, `--listen-port=${port}`, "--seed-time=0",
    "--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false",
    // Ask the tracker again every 2 s: a seeder that announced late is still found.
    "--bt-tracker-interval=2", "--file-allocation=none", "--allow-overwrite=true", "--auto-file-renaming=false",
    "--summary-interval=1", "--console-log-level=notice", "--enable-color=false",
    `--log=${join(dir, "aria2c.log")}`, "--log-level=info", ...(o.args ?? []), t.file,
  ]);
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; void proc.stop(); }, o.timeoutMs);
  const code = await proc.exited;
  clearTimeout(timer);
  const seconds = (Date.now() - started) / 1000;
  const got = readOrEmpty(join(dir, t.name));
  const peers = peersInLog(readOrEmpty(join(dir, "aria2c.log")).toString("utf8"), port);
  sb.note(`aria2c's log about peers (${ns.name})`, peers.lines.join("\n") || "(nothing about peers)");
  const ok = code === 0 && got.length === t.size && sha256(got) === t.sha256;
  const bytes = intactBytes(readFileSync(join(t.seedDir, t.name)), got);
  return { ok, bytes, seconds, code: timedOut ? null : code, proc, dialed: peers.dialed, handshakes: peers.handshakes };
}

/**
 * What aria2c's info log says about peers: whom it dialled, who completed the
 * handshake, and those lines for a report. opentracker hands the leecher its
 * own entry back; aria2c dialling itself (its own port) is left out.
 */
function peersInLog(log: string, ownPort: number): { dialed: string[]; handshakes: string[]; lines: string[] } {
  const own = new RegExp(`:${ownPort}\\b`);
  const found = (re: RegExp) => [...new Set([...log.matchAll(re)].map((m) => m[1] ?? ""))].filter((a) => !own.test(a));
  const lines = log.split("\n")
    .filter((l) => /PeerInitiateConnection|handshake peerId|unchoke|ERROR|Download complete/.test(l) && !own.test(l))
    .map((l) => l.replace(/ \[[\w.]+:\d+\]/, "")); // the source file:line of each message
  return { dialed: found(/PeerInitiateConnectionCommand.* Connecting to (\S+)/g), handshakes: found(/From: (\S+) handshake/g), lines };
}

function readOrEmpty(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch {
    return Buffer.alloc(0);
  }
}

export interface SwarmOptions {
  /** The seeder on the firewalled host itself, or on a LAN host behind the firewalled gateway. */
  where: "host" | "gateway";
  seeder: SeederKind;
  peerPort: number;
  /**
   * Applied (with the CLI) in net.firewallNs before the seeder starts; null: the caller applies one when it likes
   * (host only: a gateway without its policy neither forwards nor masquerades, so the LAN seeder could never announce).
   */
  policy: string | null;
  /** The backend apply uses (default nft). */
  backend?: "nft" | "iptables";
  /** Size of the shared file (default 3 MB). */
  size?: number;
}

export interface Swarm {
  net: SwarmNet;
  torrent: Torrent;
  tracker: Tracker;
  seeder: Seeder;
  /** One fresh download by aria2c from the internet side. */
  transfer(timeoutMs: number): Promise<TransferResult>;
}

/** Namespaces, policy, torrent, tracker and a seeder that has checked the data and announced it; each phase timed in sb.report(). */
export async function startSwarm(sb: Sandbox, o: SwarmOptions): Promise<Swarm> {
  const net = await sb.step("namespaces", () => o.where === "host" ? hostTopology(sb) : gatewayTopology(sb));
  // The policy is in force before the seeder starts; the torrent and the tracker need not wait for it.
  const policy = o.policy;
  const applied = policy === null ? Promise.resolve()
    : sb.step(`swarmgate apply -b ${o.backend ?? "nft"}`, () => applyPolicy(sb, net.firewallNs, policy, o.backend));
  applied.catch(() => { /* awaited below; this only keeps it from counting as unhandled meanwhile */ });
  const torrent = await sb.step("mktorrent", () => makeTorrent(sb.dir("data"), announceUrl(net.trackerAddress), o.size));
  const tracker = await sb.step("opentracker", () => startTracker(sb, net.internet, net.trackerAddress, [torrent.infoHash]));
  await applied;
  const seeder = await sb.step<Seeder>(`${o.seeder} start`, () => o.seeder === "qbittorrent"
    ? startQbittorrent(sb, net.seederNs, { peerPort: o.peerPort })
    : startTransmission(sb, net.seederNs, { peerPort: o.peerPort }));
  await sb.step(`${o.seeder} checks and announces`, async () => { await seeder.add(torrent); await seeder.waitSeeding(torrent); });
  return {
    net, torrent, tracker, seeder,
    transfer: (timeoutMs) => sb.step("aria2c download", () => leech(sb, net.internet, torrent, { timeoutMs })),
  };
}
