#!/usr/bin/env node
// TCP throughput through a real WireGuard tunnel (Debian's wireguard-go over
// TUN, configured with wg) with swarmgate's kill-switch ruleset applied on the
// client side, beside the same tunnel with no firewall, measured in the same
// run and alternated (iperf3, a few seconds each). The budget (issue 11): with
// the ruleset, at least 95 % of the throughput without it. The policy confines
// the whole machine (scope: machine), so every packet the client sends passes
// the kill-switch chain; the tunnel interface and the peer port are opened as
// a BitTorrent host behind a VPN would have them. Namespaces sgb-<pid>-*, a
// veth pair between them only, no route out; removed in finally.
// Usage: npm run build && node bench/vpn.mjs [--seconds 3] [--rounds 3] [--backend nft|iptables]
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const main = join(root, "dist", "cli", "main.js");
const arg = (name, fallback) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : fallback; };
const SECONDS = Number(arg("seconds", 3));
const ROUNDS = Number(arg("rounds", 3));
const BACKEND = arg("backend", "nft");

if (process.getuid?.() !== 0) { console.error("bench/vpn.mjs needs root (network namespaces)"); process.exit(2); }
for (const tool of ["wireguard-go", "wg", "iperf3"]) {
  try { execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" }); } catch { console.error(`bench/vpn.mjs needs ${tool} (sh scripts/test-programs.sh installs it)`); process.exit(2); }
}

const ns = { host: `sgb-${process.pid}-host`, server: `sgb-${process.pid}-server` };
const wg = { host: `sgbh${process.pid % 100000}`, server: `sgbs${process.pid % 100000}` };
const dir = mkdtempSync(join(tmpdir(), "sgb-"));
const procs = [];
const sh = (args, input) => execFileSync(args[0], args.slice(1), { input, encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] });
const inNs = (n, args, input) => sh(["ip", "netns", "exec", n, ...args], input);

function setUp() {
  for (const n of Object.values(ns)) { sh(["ip", "netns", "add", n]); sh(["ip", "-n", n, "link", "set", "lo", "up"]); }
  sh(["ip", "-n", ns.host, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", ns.server]);
  sh(["ip", "-n", ns.host, "addr", "add", "192.168.60.2/24", "dev", "eth0"]);
  sh(["ip", "-n", ns.server, "addr", "add", "192.168.60.1/24", "dev", "eth0"]);
  for (const n of Object.values(ns)) sh(["ip", "-n", n, "link", "set", "eth0", "up"]);
  const keys = {};
  for (const side of ["host", "server"]) {
    const priv = sh(["wg", "genkey"]).trim();
    keys[side] = { priv, pub: sh(["wg", "pubkey"], priv).trim() };
    writeFileSync(join(dir, `${side}.key`), priv, { mode: 0o600 });
  }
  for (const side of ["host", "server"]) {
    const child = spawn("ip", ["netns", "exec", ns[side], "wireguard-go", "-f", wg[side]], { stdio: "ignore", env: { ...process.env, WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD: "1" } });
    procs.push(child);
  }
  const waitFor = (n, ifname) => { for (let i = 0; i < 100; i++) { try { sh(["ip", "-n", n, "link", "show", ifname]); return; } catch { execFileSync("sleep", ["0.05"]); } } throw new Error(`${ifname} did not appear`); };
  waitFor(ns.host, wg.host); waitFor(ns.server, wg.server);
  inNs(ns.server, ["wg", "set", wg.server, "listen-port", "51820", "private-key", join(dir, "server.key"), "peer", keys.host.pub, "allowed-ips", "10.77.0.2/32"]);
  inNs(ns.host, ["wg", "set", wg.host, "private-key", join(dir, "host.key"), "peer", keys.server.pub, "allowed-ips", "10.77.0.0/24", "endpoint", "192.168.60.1:51820", "persistent-keepalive", "5"]);
  sh(["ip", "-n", ns.server, "addr", "add", "10.77.0.1/24", "dev", wg.server]);
  sh(["ip", "-n", ns.host, "addr", "add", "10.77.0.2/24", "dev", wg.host]);
  for (const side of ["host", "server"]) sh(["ip", "-n", ns[side], "link", "set", wg[side], "up"]);
  procs.push(spawn("ip", ["netns", "exec", ns.server, "iperf3", "-s", "-B", "10.77.0.1"], { stdio: "ignore" }));
  execFileSync("sleep", ["0.5"]);
}

const POLICY = () => `version: 1
host:
  interface: eth0
  addresses: [192.168.60.2/24]
clients:
  - {name: qb, ports: 51413}
outbound:
  peers: true
  trackers: [80, 443, 6969]
  dns: [10.77.0.1]
vpn:
  interface: ${wg.host}
  endpoints: ["192.168.60.1:51820/udp"]
  scope: machine
`;

/** One iperf3 run from the host to the server's tunnel address, in bits per second. */
function throughput() {
  const out = inNs(ns.host, ["iperf3", "-c", "10.77.0.1", "-t", String(SECONDS), "-J"]);
  return JSON.parse(out).end.sum_received.bits_per_second;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
try {
  setUp();
  const policy = join(dir, "policy.yaml");
  writeFileSync(policy, POLICY());
  const state = join(dir, "state");
  const apply = () => inNs(ns.host, [process.execPath, main, "apply", policy, "-b", BACKEND, "--state-dir", state, "--force"]);
  const stop = () => inNs(ns.host, [process.execPath, main, "stop", "--state-dir", state]);
  throughput(); // warm the tunnel (handshake, TCP windows)
  const without = [];
  const withRules = [];
  for (let r = 0; r < ROUNDS; r++) {
    without.push(throughput());
    apply();
    withRules.push(throughput());
    stop();
  }
  const a = median(without);
  const b = median(withRules);
  const gbit = (x) => `${(x / 1e9).toFixed(3)} Gbit/s`;
  console.log(`TCP through wireguard-go (${SECONDS} s per run, median of ${ROUNDS}, load average ${(await import("node:os")).loadavg()[0].toFixed(1)})`);
  console.log(`  no firewall                          ${gbit(a)}   runs: ${without.map(gbit).join(", ")}`);
  console.log(`  swarmgate vpn kill switch (${BACKEND.padEnd(8)}) ${gbit(b)}   runs: ${withRules.map(gbit).join(", ")}`);
  console.log(`  ratio ${(100 * b / a).toFixed(1)} %  (budget: at least 95 %)  ${b / a >= 0.95 ? "OK" : "UNDER BUDGET"}`);
} finally {
  for (const p of procs) p.kill("SIGKILL");
  for (const n of Object.values(ns)) { try { sh(["ip", "netns", "del", n]); } catch { /* already gone */ } }
  for (const name of Object.values(wg)) rmSync(`/var/run/wireguard/${name}.sock`, { force: true });
  rmSync(dir, { recursive: true, force: true });
}
