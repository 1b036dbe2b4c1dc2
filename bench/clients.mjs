#!/usr/bin/env node
// Times `swarmgate clients --json` as a whole process on a root with all five
// clients configured (qBittorrent, Transmission, Deluge, rTorrent, aria2),
// side by side with Node doing nothing and with `ss -ltunp` alone: once in a
// network namespace where the five real clients run (so the /proc scan and the
// socket matching do their work) and once where none runs. Budget (design.md): 300 ms.
// Needs root and the clients (scripts/test-programs.sh).
// Usage: npm run build && sudo node bench/clients.mjs [runs]
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const main = join(repo, "dist", "cli", "main.js");
const runs = Number(process.argv[2] ?? 15);
const BUDGET_MS = 300;
const busy = `sgc-bench-${process.pid}`;
const idle = `sgc-bidle-${process.pid}`;
const root = mkdtempSync(join(tmpdir(), "sgc-bench-"));
chmodSync(root, 0o755);

const put = (path, text) => {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), text);
};
const home = (u) => join(root, "home", u);
put("etc/passwd", ["root:x:0:0:root:/root:/bin/bash", ...["qb", "tr", "de", "rt", "a2"].map((u, i) => `${u}:x:${2000 + i}:${2000 + i}::/home/${u}:/bin/sh`)].join("\n") + "\n");
put("home/qb/.config/qBittorrent/qBittorrent.conf", "[LegalNotice]\nAccepted=true\n[BitTorrent]\nSession\\Port=51001\n");
put("home/tr/.config/transmission-daemon/settings.json", '{"peer-port": 51002}');
put("home/de/.config/deluge/core.conf", '{"file": 1, "format": 1}{"random_port": false, "listen_ports": [51003, 51003]}');
put("home/rt/.rtorrent.rc", "network.port_range.set = 51004-51004\nnetwork.port_random.set = no\n");
put("home/a2/.aria2/aria2.conf", "listen-port=51005\n");
mkdirSync(join(home("rt"), "session"));
mkdirSync(join(home("a2"), "dl"));
writeFileSync(join(home("a2"), "t.torrent"), torrent());

function torrent() {
  const data = Buffer.alloc(16384, 7);
  const b = (v) => {
    if (typeof v === "number") return Buffer.from(`i${v}e`);
    if (typeof v === "string" || Buffer.isBuffer(v)) { const s = Buffer.from(v); return Buffer.concat([Buffer.from(`${s.length}:`), s]); }
    return Buffer.concat([Buffer.from("d"), ...Object.keys(v).sort().flatMap((k) => [b(k), b(v[k])]), Buffer.from("e")]);
  };
  const pieces = createHash("sha1").update(data).digest();
  return b({ announce: "http://127.0.0.1:9/announce", info: { length: data.length, name: "f.bin", "piece length": 16384, pieces } });
}

const children = [];
function cleanup() {
  for (const c of children) { try { c.kill("SIGKILL"); } catch { /* gone */ } }
  for (const ns of [busy, idle]) {
    try {
      for (const pid of execFileSync("ip", ["netns", "pids", ns], { encoding: "utf8" }).split("\n").filter(Boolean)) process.kill(Number(pid), "SIGKILL");
    } catch { /* none */ }
    try { execFileSync("ip", ["netns", "delete", ns], { stdio: "ignore" }); } catch { /* none */ }
  }
  rmSync(root, { recursive: true, force: true });
}

/** Wall time, and the CPU time (user + system) the command itself used, which other load on the machine does not inflate. */
function time(ns, args) {
  const wall = [];
  const cpu = [];
  for (let i = 0; i < runs + 2; i++) {
    const start = process.hrtime.bigint();
    // exit status 1 (a problem found) is fine here
    const r = spawnSync("ip", ["netns", "exec", ns, "/usr/bin/time", "-f", "SGCCPU %U %S", ...args], { stdio: ["ignore", "ignore", "pipe"], cwd: repo, encoding: "utf8" });
    wall.push(Number(process.hrtime.bigint() - start) / 1e6);
    const m = /SGCCPU ([\d.]+) ([\d.]+)/.exec(r.stderr ?? "");
    if (m) cpu.push((Number(m[1]) + Number(m[2])) * 1000);
  }
  const stats = (samples) => {
    const s = samples.slice(2).sort((a, b) => a - b); // the first two warm the page cache
    return { median: s[Math.floor(s.length / 2)], p90: s[Math.floor(s.length * 0.9)], max: s[s.length - 1] };
  };
  return { ...stats(wall), cpu: stats(cpu).median };
}

try {
  for (const ns of [busy, idle]) {
    execFileSync("ip", ["netns", "add", ns]);
    execFileSync("ip", ["-n", ns, "link", "set", "lo", "up"]);
  }
  const start = (u, argv) => children.push(spawn("ip", ["netns", "exec", busy, "env", `HOME=${home(u)}`, ...argv], { stdio: "ignore", cwd: home(u) }));
  start("qb", ["qbittorrent-nox"]);
  start("tr", ["transmission-daemon", "-f"]);
  start("de", ["deluged", "-d", "-L", "none"]);
  start("rt", ["rtorrent", "-n", "-o", `import=${join(home("rt"), ".rtorrent.rc")}`, "-o", "system.daemon.set=true", "-o", `session.path.set=${join(home("rt"), "session")}`]);
  start("a2", ["aria2c", "--enable-rpc", "--dir", join(home("a2"), "dl"), join(home("a2"), "t.torrent")]);
  const want = [51001, 51002, 51003, 51004, 51005];
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ss = execFileSync("ip", ["netns", "exec", busy, "ss", "-Hltn"], { encoding: "utf8" });
    if (want.every((p) => ss.includes(`:${p} `))) break;
    if (Date.now() > deadline) throw new Error(`the clients did not all listen within 60 s:\n${ss}`);
    execFileSync("sleep", ["0.5"]);
  }
  // Let the clients finish starting (deluged and qBittorrent keep a core busy for a few seconds).
  execFileSync("sleep", ["3"]);
  const report = JSON.parse(execFileSync("ip", ["netns", "exec", busy, process.execPath, main, "clients", "--root", root, "--json"], { encoding: "utf8" }));
  const seen = report.clients.filter((c) => c.listening.length > 0).map((c) => `${c.kind} ${c.ports.from}`);

  console.log(`swarmgate clients benchmark: ${runs} runs each, whole process via ip netns exec, milliseconds (budget ${BUDGET_MS} ms)`);
  console.log(`root with five clients configured; running and matched in the busy namespace: ${seen.join(", ")}\n`);
  console.log(`load average before: ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")} (on ${availableParallelism()} cores)\n`);
  console.log(`${"command".padEnd(58)} ${"median".padStart(7)} ${"p90".padStart(7)} ${"max".padStart(7)} ${"cpu".padStart(7)}  verdict`);
  let over = 0;
  const rows = [
    ["node -e 0 (start-up alone)", busy, [process.execPath, "-e", "0"]],
    ["ss -ltunp (five clients running)", busy, ["ss", "-ltunp"]],
    ["swarmgate --version (the command's own start-up)", busy, [process.execPath, main, "--version"]],
    ["clients --root R --json (five clients running)", busy, [process.execPath, main, "clients", "--root", root, "--json"]],
    ["clients --root R --json (none running)", idle, [process.execPath, main, "clients", "--root", root, "--json"]],
    ["clients --json (this machine's own /, five running)", busy, [process.execPath, main, "clients", "--json"]],
  ];
  for (const [label, ns, args] of rows) {
    const t = time(ns, args);
    const verdict = label.startsWith("clients") ? (t.p90 < BUDGET_MS ? "within budget" : "OVER BUDGET") : "baseline";
    if (verdict === "OVER BUDGET") over++;
    console.log(`${label.padEnd(58)} ${t.median.toFixed(1).padStart(7)} ${t.p90.toFixed(1).padStart(7)} ${t.max.toFixed(1).padStart(7)} ${t.cpu.toFixed(0).padStart(7)}  ${verdict}`);
  }
  console.log("\nwall: median, p90, max of whole-process time; cpu: median user+system time of the process (GNU time, 10 ms resolution)");
  process.exitCode = over ? 1 : 0;
} finally {
  cleanup();
}
