// The swarm harness's seeders (test/helpers/swarm-seeders.ts), started as a
// given user in a namespace of the VPN lab instead of as root in a Sandbox
// namespace: the kill switch confines a user (routing "users" sends that uid
// into the tunnel), so the client must run as that user for its peer traffic
// and its tracker announces to go through the tunnel. Same configs as the
// harness's (no DHT, LSD, PEX, no port mapping of its own), the same API
// handles (QbittorrentApi, TransmissionRpc), the programs started through
// Sandbox.start under setpriv. Only the settle check differs: the harness's
// addressesSettled wants an IPv6 link-local address on every interface, and
// a WireGuard (TUN) interface never gets one.
import { chmodSync, chownSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { runChecked } from "../../src/system/run.js";
import type { Netns } from "../../src/system/netns.js";
import { listening, until, type Sandbox } from "./swarm-sandbox.js";
import { QbittorrentApi, TransmissionRpc, type QbittorrentSeeder, type TransmissionSeeder } from "./swarm-seeders.js";
import type { User } from "./vpn-lab.js";

/** chown -R, for a config directory the client (not root) writes. */
function chownTree(path: string, who: User): void {
  chownSync(path, who.uid, who.gid);
  if (!statSync(path).isDirectory()) return;
  for (const e of readdirSync(path)) chownTree(join(path, e), who);
}

/**
 * Lets the user reach `dir` through its parents: the run's TMPDIR
 * (test/helpers/global-tmp.ts) is mode 0700, so a client that is not root
 * could not reach its profile or the data it seeds. Adds search permission
 * only (o+x, no listing) to each parent below the first one that has it.
 */
export function reachable(dir: string): void {
  for (let d = dirname(dir); d !== dirname(d); d = dirname(d)) {
    const mode = statSync(d).mode & 0o7777;
    if (mode & 0o001) break;
    chmodSync(d, mode | 0o011);
  }
}

/** Waits until no address of `ns` is tentative (DAD done) on the interfaces that have IPv6 at all. */
async function settled(ns: Netns): Promise<void> {
  type Link = { ifname: string; addr_info: { family: string; tentative?: boolean }[] };
  await until(`the addresses of ${ns.name} to settle`, 10_000, async () => {
    const links = JSON.parse((await runChecked("ip", ["-j", "-n", ns.name, "addr", "show"])).stdout) as Link[];
    return links.every((l) => l.addr_info.every((a) => !a.tentative)) ? true : undefined;
  }, 100);
}

const asUser = (who: User) => [`--reuid=${who.uid}`, `--regid=${who.gid}`, "--clear-groups"];

/**
 * o.bind: the interface qBittorrent binds to (Session\\Interface), as a VPN user
 * sets it to the tunnel. Unbound, it listens and announces on every address
 * of every interface; behind the kill switch the announces from eth0's
 * addresses are dropped, and the tracker stays "updating" (status 3) until
 * they time out, although the tunnel's announce was answered.
 */
export async function startQbittorrentAs(sb: Sandbox, ns: Netns, who: User, o: { peerPort: number; webuiPort?: number; bind?: string }): Promise<QbittorrentSeeder> {
  const profile = sb.dir("qbittorrent");
  const webuiPort = o.webuiPort ?? 18080;
  mkdirSync(join(profile, "qBittorrent", "config"), { recursive: true });
  writeFileSync(join(profile, "qBittorrent", "config", "qBittorrent.conf"), [
    "[LegalNotice]", "Accepted=true", "",
    "[BitTorrent]", `Session\\Port=${o.peerPort}`, "Session\\DHTEnabled=false", "Session\\LSDEnabled=false", "Session\\PeXEnabled=false",
    ...(o.bind ? [`Session\\Interface=${o.bind}`, `Session\\InterfaceName=${o.bind}`] : []), "",
    "[Network]", "PortForwardingEnabled=false", "",
    "[Preferences]", `WebUI\\Port=${webuiPort}`, "WebUI\\Address=127.0.0.1", "WebUI\\LocalHostAuth=false", "",
  ].join("\n"));
  chownTree(profile, who);
  reachable(profile);
  await settled(ns);
  const proc = sb.start(ns, "qbittorrent-nox", "setpriv", [...asUser(who), "qbittorrent-nox", `--profile=${profile}`], { HOME: profile });
  const api = new QbittorrentApi(ns, webuiPort);
  await until("qbittorrent-nox's Web API", 20_000, async () => {
    if (!proc.running) throw new Error("qbittorrent-nox exited");
    return (await listening(ns, webuiPort)) ? true : undefined;
  });
  const seeder: QbittorrentSeeder = {
    kind: "qbittorrent", ns, proc, api, peerPort: o.peerPort, configDir: profile,
    async add(t) { await api.call("torrents/add", { savepath: t.seedDir }, { torrents: t.file }); },
    async waitSeeding(t, timeoutMs = 20_000) {
      await until(`qBittorrent to seed ${t.name} and announce it`, timeoutMs, async () => {
        const [info] = await api.json<{ progress: number; state: string }[]>("torrents/info", { hashes: t.infoHash });
        if (!info || info.progress < 1) throw new Error(`torrent: ${JSON.stringify(info)}`);
        const trackers = await api.json<{ url: string; status: number; msg: string }[]>("torrents/trackers", { hash: t.infoHash });
        if (trackers.some((tr) => tr.url.startsWith("http") && tr.status === 2)) return true; // 2: working
        throw new Error(`${info.state}; trackers: ${JSON.stringify(trackers.filter((tr) => tr.url.startsWith("http")))}`);
      });
    },
    async setPeerPort(port) {
      await api.call("app/setPreferences", { json: JSON.stringify({ listen_port: port }) });
      seeder.peerPort = port;
    },
    async reannounce(t) { await api.call("torrents/reannounce", { hashes: t.infoHash }); },
    stop: () => proc.stop(6000),
  };
  return seeder;
}

export async function startTransmissionAs(sb: Sandbox, ns: Netns, who: User, o: { peerPort: number; rpcPort?: number }): Promise<TransmissionSeeder> {
  const dir = sb.dir("transmission");
  const rpcPort = o.rpcPort ?? 19091;
  writeFileSync(join(dir, "settings.json"), JSON.stringify({
    "peer-port": o.peerPort, "peer-port-random-on-start": false, "port-forwarding-enabled": false,
    "dht-enabled": false, "lpd-enabled": false, "pex-enabled": false,
    "rpc-enabled": true, "rpc-port": rpcPort, "rpc-bind-address": "127.0.0.1", "rpc-authentication-required": false,
    "rpc-whitelist-enabled": false, "rpc-host-whitelist-enabled": false, "incomplete-dir-enabled": false, "message-level": 2,
  }, null, 1));
  chownTree(dir, who);
  reachable(dir);
  await settled(ns);
  const proc = sb.start(ns, "transmission-daemon", "setpriv", [...asUser(who), "transmission-daemon", "-g", dir, "-f"], { HOME: dir });
  const api = new TransmissionRpc(ns, rpcPort);
  await until("transmission-daemon's RPC", 20_000, async () => {
    if (!proc.running) throw new Error("transmission-daemon exited");
    return (await listening(ns, rpcPort)) ? true : undefined;
  });
  type Stats = { torrents: { percentDone: number; trackerStats: { lastAnnounceSucceeded: boolean }[] }[] };
  const seeder: TransmissionSeeder = {
    kind: "transmission", ns, proc, api, peerPort: o.peerPort, configDir: dir,
    async add(t) { await api.call("torrent-add", { metainfo: readFileSync(t.file).toString("base64"), "download-dir": t.seedDir }); },
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
