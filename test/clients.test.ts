// swarmgate clients: each reader on config text (defaults, keys, old and new
// syntax, malformed input), discovery below a temporary --root, and the
// command's JSON shape and exit statuses.
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { readAria2 } from "../src/clients/aria2.js";
import { readDeluge } from "../src/clients/deluge.js";
import { detectClients } from "../src/clients/index.js";
import { parsePasswd } from "../src/clients/homes.js";
import { processConfig } from "../src/clients/process-config.js";
import type { ClientProcess } from "../src/clients/processes.js";
import { readQbittorrent } from "../src/clients/qbittorrent.js";
import { readRtorrent } from "../src/clients/rtorrent.js";
import { decodeAddress, parseProcNet, readSockets } from "../src/clients/sockets.js";
import { readTransmission } from "../src/clients/transmission.js";
import type { ClientSettings, ReadResult } from "../src/clients/types.js";
import { cli } from "./helpers/cli.js";

const ok = (r: ReadResult): ClientSettings => {
  expect(r.problems).toEqual([]);
  expect(r.settings).not.toBeNull();
  return r.settings!;
};
const codes = (r: ReadResult) => r.problems.map((p) => [p.code, p.line, p.column]);

describe("qBittorrent", () => {
  test("defaults: no Session\\Port means a random port at the first start", () => {
    expect(ok(readQbittorrent("[LegalNotice]\nAccepted=true\n"))).toEqual({
      ports: { from: 1024, to: 65535 }, random: true, protocols: ["tcp", "udp"], dht: true, lsd: true, natpmp: true,
      bind: { interface: null, addresses: [] }, webui: { port: 8080, address: "*" },
    });
  });

  test("Session\\Port, port 0 (new at every start) and the legacy key", () => {
    expect(ok(readQbittorrent("[BitTorrent]\nSession\\Port=5030\n"))).toMatchObject({ ports: { from: 5030, to: 5030 }, random: false });
    expect(ok(readQbittorrent("[BitTorrent]\nSession\\Port=0\n", { ephemeral: { from: 32768, to: 60999 } })))
      .toMatchObject({ ports: { from: 32768, to: 60999 }, random: true });
    expect(ok(readQbittorrent("[Preferences]\nConnection\\PortRangeMin=6881\n"))).toMatchObject({ ports: { from: 6881, to: 6881 }, random: false });
    // 4.5 copies the legacy key over the new one while MigrationVersion < 2, and ignores it after.
    const both = "[BitTorrent]\nSession\\Port=7000\n[Preferences]\nConnection\\PortRangeMin=6881\n";
    expect(ok(readQbittorrent(both)).ports).toEqual({ from: 6881, to: 6881 });
    expect(ok(readQbittorrent(`${both}[Meta]\nMigrationVersion=4\n`)).ports).toEqual({ from: 7000, to: 7000 });
    expect(ok(readQbittorrent("[BitTorrent]\nSession\\UseRandomPort=true\nSession\\Port=7000\n"))).toMatchObject({ random: true });
    expect(ok(readQbittorrent("[Meta]\nMigrationVersion=4\n[BitTorrent]\nSession\\UseRandomPort=true\nSession\\Port=7000\n"))).toMatchObject({ random: false });
    expect(ok(readQbittorrent("[BitTorrent]\nSession\\Port=7000\n", { args: ["--torrenting-port=7100"] })).ports).toEqual({ from: 7100, to: 7100 });
  });

  test("protocols, DHT, LSD, port forwarding, interface, Web UI", () => {
    const s = ok(readQbittorrent([
      "[BitTorrent]", "Session\\BTProtocol=TCP", "Session\\DHTEnabled=false", "Session\\LSDEnabled=false",
      "Session\\Interface=eth0", "Session\\InterfaceName=eth0", "Session\\InterfaceAddress=192.168.1.5",
      "[Network]", "PortForwardingEnabled=false",
      "[Preferences]", "WebUI\\Port=8081", "WebUI\\Address=192.168.1.5", "",
    ].join("\r\n")));
    expect(s).toMatchObject({
      protocols: ["tcp"], dht: false, lsd: false, natpmp: false,
      bind: { interface: "eth0", addresses: ["192.168.1.5"] }, webui: { port: 8081, address: "192.168.1.5" },
    });
    // DHT keeps UDP open on the peer port even with TCP as the only peer protocol.
    expect(ok(readQbittorrent("[BitTorrent]\nSession\\BTProtocol=TCP\n")).protocols).toEqual(["tcp", "udp"]);
    expect(ok(readQbittorrent("[BitTorrent]\nSession\\BTProtocol=UTP\n")).protocols).toEqual(["udp"]);
    expect(ok(readQbittorrent("[Preferences]\nWebUI\\Port=9000\n", { args: ["--webui-port=9001"] })).webui).toEqual({ port: 9001, address: "*" });
  });

  test("a bad value is a problem at its line and the default applies", () => {
    const r = readQbittorrent("[BitTorrent]\nSession\\Port=70000\nSession\\DHTEnabled=maybe\n[Oops\n");
    expect(codes(r)).toEqual([["CLIENT_CONFIG_SYNTAX", 4, 6], ["CLIENT_CONFIG_VALUE", 2, undefined], ["CLIENT_CONFIG_VALUE", 3, undefined]]);
    expect(r.settings).toMatchObject({ ports: { from: 1024, to: 65535 }, random: true, dht: true });
  });
});

describe("Transmission", () => {
  test("defaults as transmission-daemon --dump-settings prints them", () => {
    expect(ok(readTransmission("{}"))).toEqual({
      ports: { from: 51413, to: 51413 }, random: false, protocols: ["tcp", "udp"], dht: true, lsd: false, natpmp: true,
      bind: { interface: null, addresses: ["0.0.0.0", "::"] }, webui: { port: 9091, address: "0.0.0.0" },
    });
    expect(ok(readTransmission(""))).toMatchObject({ ports: { from: 51413, to: 51413 } });
  });

  test("each key, the random range, snake_case (4.1) and the command line", () => {
    const s = ok(readTransmission(JSON.stringify({
      "peer-port": 51414, "bind-address-ipv4": "10.0.0.2", "bind-address-ipv6": "fd00::2", "rpc-port": 9092,
      "rpc-bind-address": "127.0.0.1", "port-forwarding-enabled": false, "dht-enabled": false, "lpd-enabled": true, "utp-enabled": false,
    })));
    expect(s).toEqual({
      ports: { from: 51414, to: 51414 }, random: false, protocols: ["tcp"], dht: false, lsd: true, natpmp: false,
      bind: { interface: null, addresses: ["10.0.0.2", "fd00::2"] }, webui: { port: 9092, address: "127.0.0.1" },
    });
    expect(ok(readTransmission('{"peer-port-random-on-start": true, "peer-port-random-low": 50000, "peer-port-random-high": 50100}')))
      .toMatchObject({ ports: { from: 50000, to: 50100 }, random: true });
    expect(ok(readTransmission('{"peer_port": 40000, "peer-port": 1, "rpc_port": 9999}'))).toMatchObject({ ports: { from: 40000, to: 40000 }, webui: { port: 9999 } });
    expect(ok(readTransmission('{"peer-port": 40000}', ["-f", "-P", "40001", "--port=9095"]))).toMatchObject({ ports: { from: 40001, to: 40001 }, webui: { port: 9095 } });
    expect(ok(readTransmission('{"rpc-enabled": false}')).webui).toBeNull();
  });

  test("bad JSON is a syntax problem with line and column; a bad value one at its key", () => {
    const r = readTransmission('{\n  "peer-port": 51413,\n  "dht-enabled": true,\n}\n');
    expect(r.settings).toBeNull();
    expect(codes(r)).toEqual([["CLIENT_CONFIG_SYNTAX", 4, 1]]);
    const v = readTransmission('{\n  "peer-port": "high"\n}');
    expect(codes(v)).toEqual([["CLIENT_CONFIG_VALUE", 2, undefined]]);
    expect(v.settings!.ports).toEqual({ from: 51413, to: 51413 });
    expect(codes(readTransmission("[1, 2]"))).toEqual([["CLIENT_CONFIG_SYNTAX", 1, undefined]]);
  });
});

describe("Deluge", () => {
  const core = (o: object) => `{\n    "file": 1,\n    "format": 1\n}${JSON.stringify(o, null, 4)}`;

  test("defaults: random_port with no saved port draws one at the first start, IPv4 only", () => {
    expect(ok(readDeluge(core({})))).toEqual({
      ports: { from: 49152, to: 65524 }, random: true, protocols: ["tcp", "udp"], dht: true, lsd: true, natpmp: true,
      bind: { interface: null, addresses: ["0.0.0.0"] }, webui: null, daemon: { port: 58846, address: "127.0.0.1" },
    });
  });

  test("a saved random port is kept; listen_ports; interface; web.conf; daemon", () => {
    expect(ok(readDeluge(core({ random_port: true, listen_random_port: 60623 })))).toMatchObject({ ports: { from: 60623, to: 60623 }, random: false });
    expect(ok(readDeluge(core({ random_port: false, listen_ports: [6885, 6885], listen_random_port: 60623 }))).ports).toEqual({ from: 6885, to: 6885 });
    expect(ok(readDeluge(core({ listen_interface: "192.168.1.9", dht: false, lsd: false, natpmp: false, upnp: false })))).toMatchObject({
      bind: { interface: null, addresses: ["192.168.1.9"] }, dht: false, lsd: false, natpmp: false,
    });
    expect(ok(readDeluge(core({ listen_interface: "wg0", outgoing_interface: "wg0" }))).bind).toEqual({ interface: "wg0", addresses: [], outgoing: "wg0" });
    expect(ok(readDeluge(core({ natpmp: false }))).natpmp).toBe(true); // UPnP still maps the port
    expect(ok(readDeluge(core({ natpmp: false, upnp: false }))).natpmp).toBe(false);
    const web = '{\n  "file": 2,\n  "format": 1\n}{\n  "port": 8113,\n  "interface": "127.0.0.1"\n}';
    expect(ok(readDeluge(core({ daemon_port: 58847, allow_remote: true }), web))).toMatchObject({
      webui: { port: 8113, address: "127.0.0.1" }, daemon: { port: 58847, address: "0.0.0.0" },
    });
    // A deluge 1.x file is the settings object alone.
    expect(ok(readDeluge('{"random_port": false, "listen_ports": [7000, 7000]}')).ports).toEqual({ from: 7000, to: 7000 });
  });

  test("a range of listen ports is flagged: deluged 2.0 listens on none of them", () => {
    const r = readDeluge(core({ random_port: false, listen_ports: [6881, 6891] }));
    expect(r.settings!.ports).toEqual({ from: 6881, to: 6891 });
    expect(codes(r)).toEqual([["CLIENT_CONFIG_VALUE", 6, undefined]]);
  });

  test("malformed: the second object broken, a third object, garbage between", () => {
    const broken = readDeluge('{"file": 1, "format": 1}{\n  "random_port": false,\n  "listen_ports": [6881 6891]\n}');
    expect(broken.settings).toBeNull();
    expect(codes(broken)).toEqual([["CLIENT_CONFIG_SYNTAX", 3, 25]]);
    expect(codes(readDeluge('{"file": 1}{}\n{"x": 1}'))).toEqual([["CLIENT_CONFIG_SYNTAX", 2, 1]]);
    expect(codes(readDeluge('{"file": 1} oops {}'))[0]!.slice(0, 2)).toEqual(["CLIENT_CONFIG_SYNTAX", 1]);
    expect(codes(readDeluge('{"file": 1}{"a": '))[0]!.slice(0, 2)).toEqual(["CLIENT_CONFIG_SYNTAX", 1]);
  });
});

describe("rTorrent", () => {
  test("defaults as 0.9.8 runs with no rc: 6881-6999 at random, DHT off", () => {
    expect(ok(readRtorrent({ text: "" }))).toEqual({
      ports: { from: 6881, to: 6999 }, random: true, protocols: ["tcp"], dht: false, lsd: false, natpmp: false,
      bind: { interface: null, addresses: [] }, webui: null,
    });
  });

  test("old and new syntax read alike; the last setting wins; -o runs after the file", () => {
    const old = ok(readRtorrent({ text: "# old\nport_range = 50000-50000\nport_random = no\ndht = auto\ndht_port = 6882\nbind = 10.0.0.5\nscgi_port = 127.0.0.1:5000\n" }));
    const neu = ok(readRtorrent({ text: 'network.port_range.set = "50000-50000"\nnetwork.port_random.set = no\ndht.mode.set = auto\ndht.port.set = 6882\nnetwork.bind_address.set = 10.0.0.5\nnetwork.scgi.open_port = 127.0.0.1:5000\n' }));
    const expected = {
      ports: { from: 50000, to: 50000 }, random: false, protocols: ["tcp"], dht: true, lsd: false, natpmp: false,
      bind: { interface: null, addresses: ["10.0.0.5"] }, webui: { port: 5000, address: "127.0.0.1" }, dhtPorts: { from: 6882, to: 6882 },
    };
    expect(old).toEqual(expected);
    expect(neu).toEqual(expected);
    expect(ok(readRtorrent({ text: "port_range = 6890-6999\nport_range = 7000-7010\n" })).ports).toEqual({ from: 7000, to: 7010 });
    expect(ok(readRtorrent({ text: "port_range = 6890-6999\n", args: ["-n", "-o", "network.port_range.set=7100-7100,system.daemon.set=true"] })))
      .toMatchObject({ ports: { from: 7100, to: 7100 }, random: false });
    expect(ok(readRtorrent({ text: "network.port_open.set = no\n" })).protocols).toEqual([]);
  });

  test("import and try_import are followed; a continued line is one command", () => {
    const files: Record<string, string> = { "/home/a/.config/rtorrent/rtorrent.rc": "network.port_range.set = 51000-51000\n" };
    const s = ok(readRtorrent({ text: "import = /home/a/.config/rtorrent/rtorrent.rc\ntry_import = /nope\ndht.mode.set = \\\n  on\n", include: (p) => files[p] }));
    expect(s).toMatchObject({ ports: { from: 51000, to: 51000 }, dht: true, dhtPorts: { from: 6881, to: 6881 } });
  });

  test("bad values and lines are problems at their line", () => {
    const r = readRtorrent({ text: "port_range = lots\nport_random = perhaps\njust words\ndht = sometimes\n" });
    expect(r.problems.map((p) => [p.code, p.line])).toEqual([
      ["CLIENT_CONFIG_SYNTAX", 3], ["CLIENT_CONFIG_VALUE", 1], ["CLIENT_CONFIG_VALUE", 2], ["CLIENT_CONFIG_VALUE", 4],
    ]);
    expect(r.settings!.ports).toEqual({ from: 6881, to: 6999 });
  });
});

describe("aria2", () => {
  test("defaults: 6881-6999 tried in random order, DHT on its own UDP range, RPC off", () => {
    expect(ok(readAria2(""))).toEqual({
      ports: { from: 6881, to: 6999 }, random: true, protocols: ["tcp"], dht: true, lsd: false, natpmp: false,
      bind: { interface: null, addresses: [] }, webui: null, dhtPorts: { from: 6881, to: 6999 },
    });
  });

  test("each option, and the command line over the file", () => {
    const s = ok(readAria2("listen-port=51500\ndht-listen-port=51501\nenable-dht=true\nbt-enable-lpd=true\ninterface=eth1\nenable-rpc=true\nrpc-listen-port=6801\nrpc-listen-all=true\n"));
    expect(s).toEqual({
      ports: { from: 51500, to: 51500 }, random: false, protocols: ["tcp"], dht: true, lsd: true, natpmp: false,
      bind: { interface: "eth1", addresses: [] }, webui: { port: 6801, address: "*" }, dhtPorts: { from: 51501, to: 51501 },
    });
    expect(ok(readAria2("enable-dht=false\nlisten-port=6881,6885,6890-6899\n"))).toMatchObject({ ports: { from: 6881, to: 6899 }, dht: false });
    expect(ok(readAria2("enable-dht=false\nenable-dht6=true\n")).dht).toBe(true);
    expect(ok(readAria2("listen-port=51500\n", ["--listen-port=51600", "--enable-rpc", "--interface", "10.1.1.1"])))
      .toMatchObject({ ports: { from: 51600, to: 51600 }, webui: { port: 6800, address: "localhost" }, bind: { addresses: ["10.1.1.1"] } });
  });

  test("bad values and lines are problems at their line", () => {
    const r = readAria2("listen-port=99999\nenable-dht=yes\nnonsense\n");
    expect(r.problems.map((p) => [p.code, p.line])).toEqual([["CLIENT_CONFIG_SYNTAX", 3], ["CLIENT_CONFIG_VALUE", 2], ["CLIENT_CONFIG_VALUE", 1]]);
  });
});

describe("sockets and processes", () => {
  test("/proc/net lines: listening TCP and unconnected UDP, addresses decoded", () => {
    const tcp = [
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
      "   0: 0100007F:13A6 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 100 0 0 10 0",
      "   1: 0100007F:13A6 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0 100 0 0 10 0",
    ].join("\n");
    expect(parseProcNet(tcp, "tcp")).toEqual([{ protocol: "tcp", address: "127.0.0.1", port: 5030, inode: 4242 }]);
    const udp6 = [
      "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops",
      "   0: 00000000000000000000000001000000:13A6 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 99 2 0 0",
    ].join("\n");
    expect(parseProcNet(udp6, "udp")).toEqual([{ protocol: "udp", address: "::1", port: 5030, inode: 99 }]);
    expect(decodeAddress("000080FE00000000FF005302FE6EB2B0")).toBe("fe80::253:ff:b0b2:6efe");
    expect(decodeAddress("0000000000000000FFFF00000100007F")).toBe("::ffff:127.0.0.1");
  });

  test("readSockets reads both protocols, or only the one asked for (follow's frequent poll reads UDP alone)", () => {
    const proc = mkdtempSync(join(tmpdir(), "sg-proc-"));
    try {
      mkdirSync(join(proc, "net"));
      const head = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
      writeFileSync(join(proc, "net", "tcp"), `${head}   0: 00000000:1A0B 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 11 1 0 100 0 0 10 0\n`);
      writeFileSync(join(proc, "net", "udp"), `${head}   0: 00000000:1A0C 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 12 2 0 0\n`);
      // no tcp6 or udp6: a kernel without IPv6 has none
      const ports = (only?: "tcp" | "udp") => [...readSockets(proc, only).values()].map((s) => `${s.protocol}:${s.port}`);
      expect(ports()).toEqual(["tcp:6667", "udp:6668"]);
      expect(ports("udp")).toEqual(["udp:6668"]);
      expect(ports("tcp")).toEqual(["tcp:6667"]);
    } finally {
      rmSync(proc, { recursive: true, force: true });
    }
  });

  test("a running client's config from its command line, environment and home", () => {
    const proc = (kind: ClientProcess["kind"], program: string, args: string[], env: Record<string, string> = {}): ClientProcess =>
      ({ pid: 1, kind, program, args, env: new Map(Object.entries(env)), uid: 1000, cwd: "/work", rootDir: "/", socketInodes: [] });
    const users = parsePasswd("alice:x:1000:1000::/home/alice:/bin/sh\n");
    const existing = new Set(["/home/alice/.config/rtorrent/rtorrent.rc"]);
    const at = (p: ClientProcess) => processConfig(p, users, (path) => existing.has(path)).config;
    expect(at(proc("qbittorrent", "qbittorrent-nox", []))).toBe("/home/alice/.config/qBittorrent/qBittorrent.conf");
    expect(at(proc("qbittorrent", "qbittorrent-nox", ["--profile=p", "--configuration=x"]))).toBe("/work/p/qBittorrent_x/config/qBittorrent.conf");
    expect(at(proc("qbittorrent", "qbittorrent-nox", [], { QBT_PROFILE: "/opt/q" }))).toBe("/opt/q/qBittorrent/config/qBittorrent.conf");
    expect(at(proc("transmission", "transmission-daemon", ["-f", "-g", "/etc/tr"]))).toBe("/etc/tr/settings.json");
    expect(at(proc("transmission", "transmission-daemon", [], { HOME: "/h", XDG_CONFIG_HOME: "/x" }))).toBe("/x/transmission-daemon/settings.json");
    expect(at(proc("transmission", "transmission-daemon", [], { TRANSMISSION_HOME: "/t" }))).toBe("/t/settings.json");
    expect(at(proc("deluge", "deluged", ["-d", "-c", "/var/lib/deluged/config"]))).toBe("/var/lib/deluged/config/core.conf");
    expect(at(proc("deluge", "deluged", ["--config=cfg"]))).toBe("/work/cfg/core.conf");
    expect(at(proc("rtorrent", "rtorrent", []))).toBe("/home/alice/.config/rtorrent/rtorrent.rc");
    expect(at(proc("rtorrent", "rtorrent", [], { XDG_CONFIG_HOME: "/x" }))).toBe("/home/alice/.rtorrent.rc");
    expect(at(proc("rtorrent", "rtorrent", ["-n", "-o", "import=~/rt.rc"]))).toBe("/home/alice/rt.rc");
    expect(at(proc("rtorrent", "rtorrent", ["-n"]))).toBeNull();
    expect(at(proc("aria2", "aria2c", ["--conf-path=/etc/aria2.conf"]))).toBe("/etc/aria2.conf");
    expect(at(proc("aria2", "aria2c", ["--no-conf"]))).toBeNull();
  });
});

describe("discovery below --root", () => {
  const root = mkdtempSync(join(tmpdir(), "sgc-clients-"));
  const emptyProc = mkdtempSync(join(tmpdir(), "sgc-proc-"));
  afterAll(() => {
    rmSync(root, { recursive: true, force: true });
    rmSync(emptyProc, { recursive: true, force: true });
  });
  const put = (path: string, text: string) => {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  };
  put("/etc/passwd", [
    "root:x:0:0:root:/root:/bin/bash",
    "alice:x:1000:1000:Alice:/home/alice:/bin/bash",
    "bob:x:1001:1001:Bob:/srv/bob:/bin/bash",
    "debian-transmission:x:101:103::/var/lib/transmission-daemon:/usr/sbin/nologin",
    "debian-deluged:x:102:104::/var/lib/deluged:/usr/sbin/nologin",
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
    "garbage line",
  ].join("\n"));
  put("/home/alice/.config/qBittorrent/qBittorrent.conf", "[BitTorrent]\nSession\\Port=5030\n");
  put("/home/alice/.config/qBittorrent_work/qBittorrent.conf", "[BitTorrent]\nSession\\Port=5031\n");
  put("/home/alice/.aria2/aria2.conf", "listen-port=51500\n");
  put("/home/alice/.config/aria2/aria2.conf", "listen-port=1\n"); // shadowed by ~/.aria2/aria2.conf
  put("/srv/bob/.rtorrent.rc", "import = ~/rt/extra.rc\n");
  put("/srv/bob/rt/extra.rc", "network.port_range.set = 52000-52000\nnetwork.port_random.set = no\n");
  put("/home/carol/.rtorrent.rc", "port_range = 1-2\n"); // shadowed by ~/.config/rtorrent/rtorrent.rc
  put("/home/carol/.config/rtorrent/rtorrent.rc", "port_range = 52100-52100\nport_random = no\n");
  put("/home/carol/.config/deluge/core.conf", '{"file": 1, "format": 1}{"random_port": false, "listen_ports": [53000, 53000]}');
  put("/etc/transmission-daemon/settings.json", '{"peer-port": 54000}');
  mkdirSync(join(root, "/var/lib/transmission-daemon/.config/transmission-daemon"), { recursive: true });
  // Debian's link is absolute: below --root it must mean root's /etc, not this machine's.
  symlinkSync("/etc/transmission-daemon/settings.json", join(root, "/var/lib/transmission-daemon/.config/transmission-daemon/settings.json"));
  put("/var/lib/deluged/config/core.conf", '{"file": 1, "format": 1}{"random_port": true, "listen_random_port": 55000}');
  put("/var/lib/deluged/config/web.conf", '{"file": 2, "format": 1}{"port": 8112}');
  // Broken ones: a FIFO, a directory, a huge file, bad JSON.
  mkdirSync(join(root, "/home/dave/.config/transmission-daemon"), { recursive: true });
  execFileSync("mkfifo", [join(root, "/home/dave/.config/transmission-daemon/settings.json")]);
  mkdirSync(join(root, "/home/dave/.config/qBittorrent/qBittorrent.conf"), { recursive: true });
  put("/home/erin/.rtorrent.rc", "#".repeat(5 * 1024 * 1024));
  put("/home/erin/.config/deluge/core.conf", '{"file": 1, "format": 1}{\n  "random_port": false,\n  "listen_ports": [1, 2],,\n}');

  test("every home and service place, one entry per file, users from passwd", () => {
    const started = Date.now();
    const { clients, problems } = detectClients({ root, proc: emptyProc });
    expect(Date.now() - started).toBeLessThan(2000); // the FIFO did not block
    const got = clients.map((c) => [c.kind, c.config!.slice(root.length), c.user, c.ports.from, c.random]);
    expect(got).toEqual([
      ["qbittorrent", "/home/alice/.config/qBittorrent/qBittorrent.conf", "alice", 5030, false],
      ["qbittorrent", "/home/alice/.config/qBittorrent_work/qBittorrent.conf", "alice", 5031, false],
      ["transmission", "/var/lib/transmission-daemon/.config/transmission-daemon/settings.json", "debian-transmission", 54000, false],
      ["deluge", "/home/carol/.config/deluge/core.conf", "carol", 53000, false],
      ["deluge", "/var/lib/deluged/config/core.conf", "debian-deluged", 55000, false],
      ["rtorrent", "/home/carol/.config/rtorrent/rtorrent.rc", "carol", 52100, false],
      ["rtorrent", "/srv/bob/.rtorrent.rc", "bob", 52000, false],
      ["aria2", "/home/alice/.aria2/aria2.conf", "alice", 51500, false],
    ]);
    expect(clients.find((c) => c.kind === "deluge" && c.user === "debian-deluged")!.webui).toEqual({ port: 8112, address: "0.0.0.0" });
    for (const c of clients) expect(c.listening).toEqual([]);
    const byFile = problems.map((p) => [p.kind, p.file.slice(root.length), p.code, p.line]).sort((a, b) => String(a[1]).localeCompare(String(b[1])));
    expect(byFile).toEqual([
      ["qbittorrent", "/home/dave/.config/qBittorrent/qBittorrent.conf", "CLIENT_CONFIG_NOT_REGULAR", undefined],
      ["transmission", "/home/dave/.config/transmission-daemon/settings.json", "CLIENT_CONFIG_NOT_REGULAR", undefined],
      ["deluge", "/home/erin/.config/deluge/core.conf", "CLIENT_CONFIG_SYNTAX", 3],
      ["rtorrent", "/home/erin/.rtorrent.rc", "CLIENT_CONFIG_TOO_LARGE", undefined],
    ]);
    expect(problems.find((p) => p.code === "CLIENT_CONFIG_NOT_REGULAR" && p.kind === "transmission")!.message).toMatch(/FIFO/);
  });

  test("the command: JSON shape, exit 1 with problems, exit 2 for a bad --root, text without a stack", async () => {
    const r = await cli(["clients", "--root", root, "--json"]);
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout) as { clients: Record<string, unknown>[]; problems: Record<string, unknown>[] };
    expect(Object.keys(out)).toEqual(["clients", "problems"]);
    const qb = out.clients[0]!;
    expect(Object.keys(qb)).toEqual(["kind", "config", "user", "ports", "random", "protocols", "dht", "lsd", "natpmp", "bind", "webui", "listening"]);
    expect(qb).toMatchObject({ kind: "qbittorrent", user: "alice", ports: { from: 5030, to: 5030 }, random: false, protocols: ["tcp", "udp"], webui: { port: 8080, address: "*" } });
    expect(out.problems[0]).toEqual(expect.objectContaining({ code: expect.stringMatching(/^CLIENT_CONFIG_/), kind: expect.any(String), file: expect.any(String), message: expect.any(String) }));

    const clean = mkdtempSync(join(tmpdir(), "sgc-clients-clean-"));
    try {
      mkdirSync(join(clean, "home/zed/.config/transmission-daemon"), { recursive: true });
      writeFileSync(join(clean, "home/zed/.config/transmission-daemon/settings.json"), "{}");
      const c = await cli(["clients", "--root", clean, "--json"]);
      expect(c.code).toBe(0);
      expect((JSON.parse(c.stdout) as { clients: { ports: unknown }[] }).clients.map((x) => x.ports)).toEqual([{ from: 51413, to: 51413 }]);
      const t = await cli(["clients", "--root", clean]);
      expect(t.code).toBe(0);
      expect(t.stdout).toMatch(/^transmission \(.*settings\.json, user zed\)\n  peer port  51413 tcp\+udp\n/);
    } finally {
      rmSync(clean, { recursive: true, force: true });
    }

    const text = await cli(["clients", "--root", root]);
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/core\.conf:3:\d+: error\[CLIENT_CONFIG_SYNTAX\]: deluge: /);
    expect(text.stderr).not.toMatch(/at .*\.js:\d+/);

    for (const bad of [join(root, "nope"), join(root, "etc/passwd")]) {
      const b = await cli(["clients", "--root", bad, "--json"]);
      expect(b.code).toBe(2);
      expect(JSON.parse(b.stdout)).toMatchObject({ ok: false, errors: [{ code: "CLIENT_ROOT_INVALID" }] });
    }
    expect((await cli(["clients", "--bogus"])).code).toBe(2);
  });
});

describe("running clients, from a made-up /proc", () => {
  const base = mkdtempSync(join(tmpdir(), "sgc-fakeproc-"));
  afterAll(() => rmSync(base, { recursive: true, force: true }));
  const root = join(base, "root");
  const proc = join(base, "proc");
  const put = (path: string, text: string) => {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
  };
  const link = (path: string, target: string) => {
    mkdirSync(dirname(path), { recursive: true });
    symlinkSync(target, path);
  };
  const NET = "net:[4026531999]";
  link(join(proc, "self", "ns", "net"), NET);
  put(join(proc, "sys", "net", "ipv4", "ip_local_port_range"), "32768\t60999\n");
  const hex = (port: number) => port.toString(16).toUpperCase().padStart(4, "0");
  const tcp = (n: number, addr: string, port: number, inode: number) => `   ${n}: ${addr}:${hex(port)} 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 ${inode} 1 0 100 0 0 10 0`;
  const udp = (n: number, addr: string, port: number, inode: number) => `   ${n}: ${addr}:${hex(port)} 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 ${inode} 2 0 0`;
  const head = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";
  put(join(proc, "net", "tcp"), [head, tcp(0, "0100007F", 6950, 701), tcp(1, "00000000", 51413, 801), tcp(2, "00000000", 9091, 802), tcp(3, "00000000", 40000, 901), tcp(4, "0100007F", 5040, 1001), tcp(5, "00000000", 8080, 1002)].join("\n"));
  put(join(proc, "net", "udp"), [head, udp(0, "00000000", 51413, 803), udp(1, "00000000", 6771, 1003)].join("\n"));
  put(join(proc, "net", "tcp6"), head);
  put(join(proc, "net", "udp6"), head);
  const fakeProcess = (pid: number, p: { comm: string; exe: string; argv: string[]; env: Record<string, string>; uid: number; inodes: number[]; net?: string }) => {
    const dir = join(proc, String(pid));
    put(join(dir, "comm"), `${p.comm}\n`);
    link(join(dir, "exe"), p.exe);
    put(join(dir, "cmdline"), `${p.argv.join("\0")}\0`);
    put(join(dir, "environ"), Object.entries(p.env).map(([k, v]) => `${k}=${v}\0`).join(""));
    put(join(dir, "status"), `Name:\t${p.comm}\nUid:\t${p.uid}\t${p.uid}\t${p.uid}\t${p.uid}\n`);
    link(join(dir, "ns", "net"), p.net ?? NET);
    link(join(dir, "root"), "/");
    link(join(dir, "cwd"), "/");
    p.inodes.forEach((inode, fd) => link(join(dir, "fd", String(fd + 3)), `socket:[${inode}]`));
  };
  put(join(root, "home/rt/.rtorrent.rc"), "network.port_range.set = 6900-6999\n");
  // rtorrent: its rc below --root, found by its inode; the port it chose from its range.
  fakeProcess(100, { comm: "rtorrent main", exe: "/usr/bin/rtorrent", argv: ["rtorrent"], env: { HOME: join(root, "home/rt") }, uid: 0, inodes: [701] });
  // transmission-daemon with -g outside --root and -P overriding the file; a socket of another process is not its own.
  put(join(base, "elsewhere/settings.json"), '{"peer-port": 1234}');
  fakeProcess(200, { comm: "transmission-da", exe: "/usr/bin/transmission-daemon", argv: ["transmission-daemon", "-f", "-g", join(base, "elsewhere"), "-P", "51413"], env: {}, uid: 0, inodes: [801, 802, 803] });
  // aria2c in another network namespace: not this namespace's client.
  fakeProcess(300, { comm: "aria2c", exe: "/usr/bin/aria2c", argv: ["aria2c", "--enable-rpc"], env: { HOME: "/nonexistent" }, uid: 0, inodes: [901], net: "net:[1]" });
  // qBittorrent listening on another port than its file says (changed in the Web UI, not saved yet).
  put(join(root, "etc/passwd"), "rt:x:1500:1500::/home/rt:/bin/sh\nqb:x:1501:1501::/home/qb:/bin/sh\n");
  put(join(root, "home/qb/.config/qBittorrent/qBittorrent.conf"), "[BitTorrent]\nSession\\Port=5030\n");
  fakeProcess(500, { comm: "qbittorrent-nox", exe: "/usr/bin/qbittorrent-nox", argv: ["qbittorrent-nox"], env: { HOME: join(root, "home/qb") }, uid: 0, inodes: [1001, 1002, 1003] });
  // A process merely named like a client is not one.
  fakeProcess(400, { comm: "deluged", exe: "/usr/bin/bash", argv: ["bash"], env: {}, uid: 0, inodes: [] });

  test("each running client matched to its config, its sockets and the port it chose", () => {
    const { clients, problems } = detectClients({ root, proc });
    expect(problems).toEqual([]);
    expect(clients.map((c) => [c.kind, c.config, c.ports, c.random, c.listening.map((l) => `${l.protocol} ${l.address}:${l.port} ${l.pid}`)])).toEqual([
      ["qbittorrent", join(root, "home/qb/.config/qBittorrent/qBittorrent.conf"), { from: 5040, to: 5040 }, false, ["tcp 127.0.0.1:5040 500", "tcp 0.0.0.0:8080 500", "udp 0.0.0.0:6771 500"]],
      ["transmission", join(base, "elsewhere/settings.json"), { from: 51413, to: 51413 }, false, ["tcp 0.0.0.0:9091 200", "tcp 0.0.0.0:51413 200", "udp 0.0.0.0:51413 200"]],
      ["rtorrent", join(root, "home/rt/.rtorrent.rc"), { from: 6950, to: 6950 }, true, ["tcp 127.0.0.1:6950 100"]],
    ]);
    expect(clients.find((c) => c.kind === "rtorrent")!.user).toBe("root");
  });
});

describe.skipIf(process.getuid?.() !== 0)("a config the user may not read", () => {
  test("is a CLIENT_CONFIG_UNREADABLE problem, not a crash", async () => {
    const root = mkdtempSync(join(tmpdir(), "sgc-clients-perm-"));
    try {
      chmodSync(root, 0o755);
      mkdirSync(join(root, "home/u/.config/qBittorrent"), { recursive: true });
      writeFileSync(join(root, "home/u/.config/qBittorrent/qBittorrent.conf"), "[BitTorrent]\nSession\\Port=5000\n");
      chmodSync(join(root, "home/u/.config/qBittorrent/qBittorrent.conf"), 0o000);
      const r = await cli(["clients", "--root", root, "--json"], { via: { command: "setpriv", args: ["--reuid=65534", "--regid=65534", "--clear-groups"] } });
      expect(r.code).toBe(1);
      const out = JSON.parse(r.stdout) as { clients: unknown[]; problems: { code: string; kind: string; file: string; message: string }[] };
      expect(out.clients).toEqual([]);
      expect(out.problems).toEqual([{ code: "CLIENT_CONFIG_UNREADABLE", kind: "qbittorrent", file: join(root, "home/u/.config/qBittorrent/qBittorrent.conf"), message: expect.stringContaining("EACCES") }]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
