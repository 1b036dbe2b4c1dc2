// swarmgate clients against the real programs: each client (Debian's
// qbittorrent-nox, transmission-daemon, deluged, rtorrent, aria2c) runs in its
// own throwaway network namespace with its config laid out as a home below a
// temporary root, with its default config, a changed port and a random port;
// `clients --root` run in that namespace must report the port the client
// really listens on (as ss sees it) and list its sockets.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, closeSync, mkdirSync, openSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { ClientReport, Detection } from "../src/clients/index.js";
import { MAIN } from "./helpers/cli.js";

const isRoot = process.getuid?.() === 0;
const have = (p: string) => { try { execFileSync("which", [p], { stdio: "ignore" }); return true; } catch { return false; } };
const PROGRAMS = ["qbittorrent-nox", "transmission-daemon", "deluged", "rtorrent", "aria2c", "setpriv"];
const runnable = isRoot && PROGRAMS.every(have);

const NOBODY = 65534;

interface Scenario {
  name: string;
  kind: ClientReport["kind"];
  user: string; // the home below the temporary root
  files: Record<string, string>; // relative to the home
  command: (home: string) => string[];
  asNobody?: boolean;
  /** The port the config fixes, when it fixes one. */
  port?: number;
  /** "saved": random until the client saves the port it drew (qBittorrent with no port, deluged's random_port). */
  random: boolean | "saved";
  /** Other TCP ports the client listens on (web UI, RPC, daemon). */
  control: number[];
  /** The client is expected to listen on no peer port at all (deluged 2.0 with a range of listen ports). */
  noPeerPort?: boolean;
}

const QB_OK = "[LegalNotice]\nAccepted=true\n";
const qb = (extra: string): Record<string, string> => ({ ".config/qBittorrent/qBittorrent.conf": `${QB_OK}${extra}` });

const SCENARIOS: Scenario[] = [
  // qBittorrent as a service user: no port at all (a random one at the first start), a set one, and 0 (new at every start).
  { name: "qb-default", kind: "qbittorrent", user: "qb", files: qb(""), command: () => ["qbittorrent-nox"], asNobody: true, random: "saved", control: [8080] },
  { name: "qb-port", kind: "qbittorrent", user: "qb", files: qb("[BitTorrent]\nSession\\Port=51001\n[Preferences]\nWebUI\\Port=8181\n"), command: () => ["qbittorrent-nox"], asNobody: true, port: 51001, random: false, control: [8181] },
  { name: "qb-random", kind: "qbittorrent", user: "qb", files: qb("[BitTorrent]\nSession\\Port=0\n"), command: () => ["qbittorrent-nox"], asNobody: true, random: true, control: [8080] },
  // transmission-daemon with no settings file (its defaults), a changed port, and a random port at each start.
  { name: "tr-default", kind: "transmission", user: "tr", files: {}, command: (h) => ["transmission-daemon", "-f", "-g", join(h, ".config/transmission-daemon")], random: false, port: 51413, control: [9091] },
  { name: "tr-port", kind: "transmission", user: "tr", files: { ".config/transmission-daemon/settings.json": '{"peer-port": 51002, "rpc-port": 9092}' }, command: () => ["transmission-daemon", "-f"], random: false, port: 51002, control: [9092] },
  { name: "tr-random", kind: "transmission", user: "tr", files: { ".config/transmission-daemon/settings.json": '{"peer-port-random-on-start": true, "peer-port-random-low": 52000, "peer-port-random-high": 52999}' }, command: () => ["transmission-daemon", "-f"], random: true, control: [9091] },
  // deluged: its default (a random port drawn at the first start), a fixed port, and random_port with none saved.
  { name: "de-default", kind: "deluge", user: "de", files: {}, command: () => ["deluged", "-d", "-L", "none"], random: "saved", control: [58846] },
  { name: "de-port", kind: "deluge", user: "de", files: { ".config/deluge/core.conf": '{"file": 1, "format": 1}{"random_port": false, "listen_ports": [51003, 51003], "daemon_port": 58847}' }, command: (h) => ["deluged", "-d", "-L", "none", "-c", join(h, ".config/deluge")], random: false, port: 51003, control: [58847] },
  { name: "de-random", kind: "deluge", user: "de", files: { ".config/deluge/core.conf": '{"file": 1, "format": 1}{"random_port": true, "listen_random_port": null}' }, command: () => ["deluged", "-d", "-L", "none"], random: "saved", control: [58846] },
  // deluged 2.0 joins its listen addresses without a separator: with a range it listens on no peer port.
  { name: "de-range", kind: "deluge", user: "de", files: { ".config/deluge/core.conf": '{"file": 1, "format": 1}{\n"random_port": false,\n"listen_ports": [51010, 51020]\n}' }, command: () => ["deluged", "-d", "-L", "none"], random: false, control: [58846], noPeerPort: true },
  // rtorrent needs a terminal unless daemon mode is on; -n skips ~/.rtorrent.rc, so it is imported.
  { name: "rt-default", kind: "rtorrent", user: "rt", files: { ".rtorrent.rc": "# empty\n" }, command: (h) => rtorrent(h), random: true, control: [] },
  { name: "rt-port", kind: "rtorrent", user: "rt", files: { ".rtorrent.rc": "network.port_range.set = 51004-51004\nnetwork.port_random.set = no\n" }, command: (h) => rtorrent(h), random: false, port: 51004, control: [] },
  { name: "rt-random", kind: "rtorrent", user: "rt", files: { ".rtorrent.rc": "port_range = 51100-51199\nport_random = yes\n" }, command: (h) => rtorrent(h), random: true, control: [] },
  // aria2c listens for peers only while it has a torrent; --enable-rpc keeps it running.
  { name: "a2-default", kind: "aria2", user: "a2", files: {}, command: (h) => aria2(h), random: true, control: [6800] },
  { name: "a2-port", kind: "aria2", user: "a2", files: { ".aria2/aria2.conf": "listen-port=51005\ndht-listen-port=51006\n" }, command: (h) => aria2(h), random: false, port: 51005, control: [6800] },
  { name: "a2-random", kind: "aria2", user: "a2", files: { ".aria2/aria2.conf": "listen-port=51200-51299\nrpc-listen-port=6801\n" }, command: (h) => aria2(h), random: true, control: [6801] },
];

function rtorrent(home: string): string[] {
  return ["rtorrent", "-n", "-o", `import=${join(home, ".rtorrent.rc")}`, "-o", "system.daemon.set=true", "-o", `session.path.set=${join(home, "session")}`];
}
function aria2(home: string): string[] {
  return ["aria2c", "--enable-rpc", "--dir", join(home, "dl"), "--seed-time=0", join(home, "t.torrent")];
}

/** A one-file torrent whose tracker is unreachable: enough for aria2c to listen for peers. */
function torrent(): Buffer {
  const data = Buffer.alloc(65536, 7);
  const pieces = Buffer.concat([0, 1, 2, 3].map((i) => createHash("sha1").update(data.subarray(i * 16384, (i + 1) * 16384)).digest()));
  const b = (v: string | number | Buffer | Record<string, unknown>): Buffer => {
    if (typeof v === "number") return Buffer.from(`i${v}e`);
    if (typeof v === "string" || Buffer.isBuffer(v)) { const s = Buffer.from(v); return Buffer.concat([Buffer.from(`${s.length}:`), s]); }
    return Buffer.concat([Buffer.from("d"), ...Object.keys(v).sort().flatMap((k) => [b(k), b(v[k] as never)]), Buffer.from("e")]);
  };
  return b({ announce: "http://127.0.0.1:9/announce", info: { length: data.length, name: "f.bin", "piece length": 16384, pieces } });
}

interface Run { s: Scenario; ns: string; root: string; home: string; child?: ChildProcess; report?: Detection; code?: number | null; stderr?: string; truth?: { tcp: number[]; udp: number[] }; settleFrom?: number }

const base = mkdtempSync(join(tmpdir(), "sgc-real-"));
const runs: Run[] = SCENARIOS.map((s, i) => ({ s, ns: `sgc-${process.pid}-${i}`, root: join(base, s.name), home: join(base, s.name, "home", s.user) }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function cliInNs(ns: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const c = spawn("ip", ["netns", "exec", ns, process.execPath, MAIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    c.stdout.on("data", (d) => { stdout += d; });
    c.stderr.on("data", (d) => { stderr += d; });
    c.on("close", (code) => res({ code, stdout, stderr }));
  });
}

/** What ss says the client's process listens on, the ground truth. */
function truthOf(ns: string, pid: number): { tcp: number[]; udp: number[] } {
  const out = execFileSync("ip", ["netns", "exec", ns, "ss", "-Hltunp"], { encoding: "utf8" });
  const mine = out.split("\n").filter((l) => l.includes(`pid=${pid},`));
  const ports = (proto: string) => [...new Set(mine.filter((l) => l.startsWith(proto)).map((l) => Number(/:(\d+)\s+\S+:\S+\s/.exec(l)?.[1])))].sort((a, b) => a - b);
  return { tcp: ports("tcp"), udp: ports("udp") };
}

function cleanup(): void {
  for (const r of runs) {
    try { r.child?.kill("SIGKILL"); } catch { /* gone */ }
    try {
      // Anything else still in the namespace was started by this test.
      for (const pid of execFileSync("ip", ["netns", "pids", r.ns], { encoding: "utf8" }).split("\n").filter(Boolean)) process.kill(Number(pid), "SIGKILL");
    } catch { /* no namespace */ }
    try { execFileSync("ip", ["netns", "delete", r.ns], { stdio: "ignore" }); } catch { /* not created */ }
  }
  rmSync(base, { recursive: true, force: true });
}

describe.skipIf(!runnable)("clients with the real programs", () => {
  beforeAll(async () => {
    chmodSync(base, 0o755);
    const t = torrent();
    try {
      for (const r of runs) {
        execFileSync("ip", ["netns", "add", r.ns]);
        execFileSync("ip", ["-n", r.ns, "link", "set", "lo", "up"]);
        mkdirSync(r.home, { recursive: true });
        for (const [rel, text] of Object.entries(r.s.files)) {
          mkdirSync(dirname(join(r.home, rel)), { recursive: true });
          writeFileSync(join(r.home, rel), text);
        }
        if (r.s.kind === "aria2") { writeFileSync(join(r.home, "t.torrent"), t); mkdirSync(join(r.home, "dl")); }
        if (r.s.kind === "rtorrent") mkdirSync(join(r.home, "session"));
        if (r.s.asNobody) execFileSync("chown", ["-R", `${NOBODY}:${NOBODY}`, r.home]);
        const as = r.s.asNobody ? ["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", "--"] : [];
        const log = openSync(join(r.root, "client.log"), "w");
        r.child = spawn("ip", ["netns", "exec", r.ns, ...as, "env", `HOME=${r.home}`, ...r.s.command(r.home)], { stdio: ["ignore", log, log], cwd: r.home });
        closeSync(log);
      }
      // Wait (with ss, which is cheap; fifteen polling node processes would starve the clients
      // of the two cores) until each client listens for peers and on its control port, then ask swarmgate.
      await Promise.all(runs.map(async (r) => {
        const deadline = Date.now() + 30_000;
        const pid = r.child!.pid!;
        while (Date.now() < deadline) {
          const truth = truthOf(r.ns, pid);
          const peerUp = truth.tcp.some((p) => !r.s.control.includes(p));
          // With no peer port to wait for, give the client time to open one after its control port (5 s).
          if (r.s.noPeerPort && r.s.control.every((p) => truth.tcp.includes(p)) && !r.settleFrom) r.settleFrom = Date.now();
          const settled = r.s.noPeerPort ? r.settleFrom !== undefined && Date.now() - r.settleFrom > 5000 : peerUp;
          if (settled && r.s.control.every((p) => truth.tcp.includes(p))) {
            const { code, stdout, stderr } = await cliInNs(r.ns, ["clients", "--root", r.root, "--json"]);
            [r.code, r.stderr] = [code, stderr];
            try { r.report = JSON.parse(stdout) as Detection; } catch { r.report = undefined; }
            r.truth = truthOf(r.ns, pid);
            // A client still opening sockets while swarmgate looked: look again.
            if (JSON.stringify(r.truth) === JSON.stringify(truth)) return;
          }
          await sleep(400);
        }
      }));
    } catch (e) {
      cleanup();
      throw e;
    }
  }, 60_000);
  afterAll(cleanup);

  test.each(runs.filter((r) => r.s.noPeerPort).map((r) => [r.s.name, r] as const))("%s: listens on no peer port, and the report says why", (_, r) => {
    if (r.truth === undefined) expect.fail(`${r.s.name} never started`);
    expect(r.truth.tcp).toEqual(r.s.control);
    expect(r.code).toBe(1);
    const c = r.report!.clients.find((x) => x.listening.length > 0)!;
    expect(c.ports).toEqual({ from: 51010, to: 51020 });
    expect(r.report!.problems).toEqual([expect.objectContaining({ code: "CLIENT_CONFIG_VALUE", kind: "deluge", file: c.config })]);
    // deluged rewrote the file at start; the line still points at the key.
    expect(readFileSync(c.config!, "utf8").split("\n")[r.report!.problems[0]!.line! - 1]).toContain('"listen_ports"');
  });

  test.each(runs.filter((r) => !r.s.noPeerPort).map((r) => [r.s.name, r] as const))("%s: the reported port is the one it listens on", (_, r) => {
    const why = () => `last exit ${r.code}, stderr ${r.stderr}, report ${JSON.stringify(r.report?.clients.map((c) => [c.config, c.listening]))}, ss ${execFileSync("ip", ["netns", "exec", r.ns, "ss", "-Hltunp"], { encoding: "utf8" })}, log ${readFileSync(join(r.root, "client.log"), "utf8").slice(-2000)}`;
    if (r.truth === undefined) expect.fail(`${r.s.name} never listened: ${why()}`);
    expect(r.code).toBe(0);
    const running = r.report!.clients.filter((c) => c.listening.length > 0);
    expect(running).toHaveLength(1);
    const c = running[0]!;
    expect(c.kind).toBe(r.s.kind);
    expect(c.config?.startsWith(r.home)).toBe(true);
    expect(c.user).toBe(r.s.asNobody ? "nobody" : "root");
    const peerPorts = r.truth!.tcp.filter((p) => !r.s.control.includes(p));
    if (peerPorts.length === 1) {
      expect(c.ports).toEqual({ from: peerPorts[0], to: peerPorts[0] });
    } else {
      // qBittorrent with port 0 listens on a new ephemeral port per address: only the range is known.
      for (const p of peerPorts) expect(p >= c.ports.from && p <= c.ports.to).toBe(true);
      expect(c.random).toBe(true);
    }
    if (r.s.port !== undefined) expect(peerPorts).toEqual([r.s.port]);
    if (r.s.random === "saved") {
      // Until the client writes the port it drew, the next start may draw another.
      if (!c.random) expect(readFileSync(c.config!, "utf8")).toContain(String(c.ports.from));
    } else {
      expect(c.random).toBe(r.s.random);
    }
    // listening shows every socket ss shows for the process.
    expect([...new Set(c.listening.filter((l) => l.protocol === "tcp").map((l) => l.port))].sort((a, b) => a - b)).toEqual(r.truth!.tcp);
    expect([...new Set(c.listening.filter((l) => l.protocol === "udp").map((l) => l.port))].sort((a, b) => a - b)).toEqual(r.truth!.udp);
    // What protocols, dhtPorts and bind say shows in the sockets.
    const peerUdp = c.listening.filter((l) => l.protocol === "udp" && peerPorts.includes(l.port));
    if (c.protocols.includes("udp")) expect(peerUdp.length).toBeGreaterThan(0);
    else expect(peerUdp).toEqual([]);
    if (c.dhtPorts && c.kind === "aria2") {
      expect(c.listening.some((l) => l.protocol === "udp" && l.port >= c.dhtPorts!.from && l.port <= c.dhtPorts!.to)).toBe(true);
    }
    if (c.kind === "deluge") {
      expect(c.bind.addresses).toEqual(["0.0.0.0"]);
      expect(c.listening.filter((l) => peerPorts.includes(l.port)).every((l) => !l.address.includes(":"))).toBe(true);
    }
    if (r.s.control.length > 0 && c.kind !== "deluge") expect(c.webui?.port).toBe(r.s.control[0]);
    if (c.kind === "deluge") expect((c as unknown as { daemon: { port: number } }).daemon.port).toBe(r.s.control[0]);
  });
});
