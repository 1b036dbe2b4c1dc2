// The two seeders, each the real Debian daemon with its config in a temporary
// directory, driven through its own remote interface from inside its
// namespace (curl run there: the test process cannot reach a namespace's
// loopback). Both return the same Seeder shape, so a test can run the same
// swarm with either; `api` is the raw handle for what the shape does not cover.
import { writeFileSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Netns } from "../../src/system/netns.js";
import { addressesSettled, listening, until, type Proc, type Sandbox } from "./swarm-sandbox.js";
import type { Torrent } from "./swarm-torrent.js";

export type SeederKind = "qbittorrent" | "transmission";

export interface Seeder {
  kind: SeederKind;
  ns: Netns;
  proc: Proc;
  /** The peer port it was started with (setPeerPort changes it). */
  peerPort: number;
  /** Where its configuration lives (qBittorrent.conf's profile, Transmission's settings.json directory). */
  configDir: string;
  /** Adds the torrent with the complete data in torrent.seedDir, so the client checks it and seeds. */
  add(t: Torrent): Promise<void>;
  /** Resolves once the torrent is complete and the tracker accepted an announce. */
  waitSeeding(t: Torrent, timeoutMs?: number): Promise<void>;
  /** Changes the listen port through the client's own interface, as a user's Web UI click does. */
  setPeerPort(port: number): Promise<void>;
  /** Asks the client to announce now (neither re-announces a changed port by itself). */
  reannounce(t: Torrent): Promise<void>;
  stop(): Promise<void>;
}

export interface QbittorrentSeeder extends Seeder { kind: "qbittorrent"; api: QbittorrentApi }
export interface TransmissionSeeder extends Seeder { kind: "transmission"; api: TransmissionRpc }

/** qBittorrent's Web API (no login: WebUI\LocalHostAuth=false and we call from its own loopback). */
export class QbittorrentApi {
  constructor(readonly ns: Netns, readonly port: number) {}

  /** POST of /api/v2/<path> with form fields and file uploads (or GET with the fields as a query); returns the body. */
  async call(path: string, form?: Record<string, string>, files?: Record<string, string>, get = false): Promise<string> {
    const args = ["-sS", "-f", "-m", "10", ...(get ? ["-G"] : []), `http://127.0.0.1:${this.port}/api/v2/${path}`];
    // curl cannot mix --data-urlencode with -F: an upload sends its fields as multipart too.
    for (const [k, v] of Object.entries(form ?? {})) args.push(files ? "--form-string" : "--data-urlencode", `${k}=${v}`);
    for (const [k, v] of Object.entries(files ?? {})) args.push("-F", `${k}=@${v}`);
    const r = await this.ns.exec("curl", args);
    if (r.code !== 0) throw new Error(`qBittorrent API ${path}: curl exited ${r.code}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** A GET that answers JSON (torrents/info, torrents/trackers, app/preferences). */
  async json<T>(path: string, query?: Record<string, string>): Promise<T> {
    return JSON.parse(await this.call(path, query, undefined, true)) as T;
  }
}

export interface QbittorrentOptions { peerPort: number; webuiPort?: number }

export async function startQbittorrent(sb: Sandbox, ns: Netns, o: QbittorrentOptions): Promise<QbittorrentSeeder> {
  const profile = sb.dir("qbittorrent");
  const webuiPort = o.webuiPort ?? 18080;
  mkdirSync(join(profile, "qBittorrent", "config"), { recursive: true });
  writeFileSync(join(profile, "qBittorrent", "config", "qBittorrent.conf"), [
    "[LegalNotice]", "Accepted=true", "",
    "[BitTorrent]", `Session\\Port=${o.peerPort}`, "Session\\DHTEnabled=false", "Session\\LSDEnabled=false", "Session\\PeXEnabled=false", "",
    "[Network]", "PortForwardingEnabled=false", "",
    "[Preferences]", `WebUI\\Port=${webuiPort}`, "WebUI\\Address=127.0.0.1", "WebUI\\LocalHostAuth=false", "",
  ].join("\n"));
  await addressesSettled(ns);
  const proc = sb.start(ns, "qbittorrent-nox", "qbittorrent-nox", [`--profile=${profile}`]);
  const api = new QbittorrentApi(ns, webuiPort);
  await until("qbittorrent-nox's Web API", 20_000, async () => {
    if (!proc.running) throw new Error("qbittorrent-nox exited");
    return (await listening(ns, webuiPort)) ? true : undefined;
  });
  const seeder: QbittorrentSeeder = {
    kind: "qbittorrent", ns, proc, api, peerPort: o.peerPort, configDir: profile,
    async add(t) {
      await api.call("torrents/add", { savepath: t.seedDir }, { torrents: t.file });
    },
    async waitSeeding(t, timeoutMs = 20_000) {
      await until(`qBittorrent to seed ${t.name} and announce it`, timeoutMs, async () => {
        const [info] = await api.json<{ progress: number; state: string }[]>("torrents/info", { hashes: t.infoHash });
        if (!info || info.progress < 1) return undefined;
        const trackers = await api.json<{ url: string; status: number }[]>("torrents/trackers", { hash: t.infoHash });
        return trackers.some((tr) => tr.url.startsWith("http") && tr.status === 2) ? true : undefined; // 2: working
      });
    },
    async setPeerPort(port) {
      await api.call("app/setPreferences", { json: JSON.stringify({ listen_port: port }) });
      seeder.peerPort = port;
    },
    async reannounce(t) { await api.call("torrents/reannounce", { hashes: t.infoHash }); },
    stop: () => proc.stop(),
  };
  return seeder;
}

/** Transmission's RPC, with its X-Transmission-Session-Id handshake (409 carries the id to retry with). */
export class TransmissionRpc {
  private session = "";
  constructor(readonly ns: Netns, readonly port: number) {}

  async call<T = Record<string, unknown>>(method: string, args: Record<string, unknown> = {}): Promise<T> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const r = await this.ns.exec("curl", ["-sS", "-i", "-m", "10", "-H", `X-Transmission-Session-Id: ${this.session}`,
        "--data-binary", "@-", `http://127.0.0.1:${this.port}/transmission/rpc`], { input: JSON.stringify({ method, arguments: args }) });
      if (r.code !== 0) throw new Error(`Transmission RPC ${method}: curl exited ${r.code}: ${r.stderr.trim()}`);
      const split = r.stdout.indexOf("\r\n\r\n");
      const head = r.stdout.slice(0, split);
      const id = /^X-Transmission-Session-Id:\s*(\S+)/im.exec(head);
      if (/^HTTP\/\S+ 409/.test(head) && id?.[1]) { this.session = id[1]; continue; }
      const body = JSON.parse(r.stdout.slice(split + 4)) as { result: string; arguments: T };
      if (body.result !== "success") throw new Error(`Transmission RPC ${method}: ${body.result}`);
      return body.arguments;
    }
    throw new Error(`Transmission RPC ${method}: no session id after a 409`);
  }
}

export interface TransmissionOptions { peerPort: number; rpcPort?: number }

export async function startTransmission(sb: Sandbox, ns: Netns, o: TransmissionOptions): Promise<TransmissionSeeder> {
  const dir = sb.dir("transmission");
  const rpcPort = o.rpcPort ?? 19091;
  writeFileSync(join(dir, "settings.json"), JSON.stringify({
    "peer-port": o.peerPort, "peer-port-random-on-start": false, "port-forwarding-enabled": false,
    "dht-enabled": false, "lpd-enabled": false, "pex-enabled": false,
    "rpc-enabled": true, "rpc-port": rpcPort, "rpc-bind-address": "127.0.0.1", "rpc-authentication-required": false,
    "rpc-whitelist-enabled": false, "rpc-host-whitelist-enabled": false, "incomplete-dir-enabled": false, "message-level": 2,
  }, null, 1));
  await addressesSettled(ns);
  const proc = sb.start(ns, "transmission-daemon", "transmission-daemon", ["-g", dir, "-f"]);
  const api = new TransmissionRpc(ns, rpcPort);
  await until("transmission-daemon's RPC", 20_000, async () => {
    if (!proc.running) throw new Error("transmission-daemon exited");
    return (await listening(ns, rpcPort)) ? true : undefined;
  });
  type Stats = { torrents: { percentDone: number; trackerStats: { lastAnnounceSucceeded: boolean }[] }[] };
  const seeder: TransmissionSeeder = {
    kind: "transmission", ns, proc, api, peerPort: o.peerPort, configDir: dir,
    async add(t) {
      await api.call("torrent-add", { metainfo: readFileSync(t.file).toString("base64"), "download-dir": t.seedDir });
    },
    async waitSeeding(t, timeoutMs = 20_000) {
      await until(`Transmission to seed ${t.name} and announce it`, timeoutMs, async () => {
        const { torrents: [s] } = await api.call<Stats>("torrent-get", { ids: [t.infoHash], fields: ["percentDone", "trackerStats"] });
        return s && s.percentDone === 1 && s.trackerStats.some((x) => x.lastAnnounceSucceeded) ? true : undefined;
      });
    },
    async setPeerPort(port) {
      await api.call("session-set", { "peer-port": port });
      seeder.peerPort = port;
    },
    async reannounce(t) { await api.call("torrent-reannounce", { ids: [t.infoHash] }); },
    stop: () => proc.stop(),
  };
  return seeder;
}
