#!/usr/bin/env node
// The whole `swarmgate portmap` command idling as a service would: a vpn
// policy applied in the client namespace of the NAT-PMP world
// (test/helpers/portmap-lab.mjs, Debian's real miniupnpd), the mapping made,
// then CPU share and resident memory over a measured window while it renews
// (the budget: under 1 % CPU and 60 MB). bench/portmap.mjs measures the
// mapper alone, beside natpmpc.
// Usage: npm run build && node bench/portmap-cli.mjs [--lifetime 60] [--seconds 30]   (root)
import { spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createWorld, INSIDE, run } from "../test/helpers/portmap-lab.mjs";

const main = join(dirname(fileURLToPath(import.meta.url)), "..", "dist", "cli", "main.js");
const arg = (name, fallback) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? Number(process.argv[i + 1]) : fallback; };
const LIFETIME = arg("lifetime", 60);
const SECONDS = arg("seconds", 30);
if (process.getuid?.() !== 0) { console.error("bench/portmap-cli.mjs needs root"); process.exit(2); }

const world = await createWorld(`bpc${process.pid % 10000}`);
const dir = mkdtempSync(join(tmpdir(), "sg-bench-portmap-"));
let portmap;
try {
  const cl = world.ns.cl;
  for (const args of [["link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"], ["addr", "add", "192.168.99.2/24", "dev", "eth0"], ["link", "set", "eth0", "up"]]) {
    await run("ip", ["netns", "exec", cl, "ip", ...args]);
  }
  await world.startMiniupnpd();
  mkdirSync(join(dir, "etc"));
  writeFileSync(join(dir, "etc", "passwd"), "root:x:0:0::/root:/bin/sh\n");
  mkdirSync(join(dir, "root", ".config", "qBittorrent"), { recursive: true });
  writeFileSync(join(dir, "root", ".config", "qBittorrent", "qBittorrent.conf"), "[BitTorrent]\nSession\\Port=41001\n");
  const hook = join(dir, "set-port.sh");
  writeFileSync(hook, "#!/bin/sh\nexit 0\n");
  chmodSync(hook, 0o755);
  const policy = join(dir, "policy.yaml");
  writeFileSync(policy, `version: 1\nhost:\n  interface: eth0\n  addresses: [192.168.99.2/24]\nclients:\n  - {name: qb, ports: auto}\noutbound:\n  peers: true\n  dns: [192.168.99.1]\nvpn:\n  interface: sgpcl\n  endpoints: ["${INSIDE}:51820/udp"]\n  scope: machine\n  port_forwarding: {protocol: natpmp, gateway: ${INSIDE}}\n`);
  const common = ["--clients-root", dir, "--state-dir", join(dir, "state")];
  const applied = await run("ip", ["netns", "exec", cl, process.execPath, main, "apply", policy, "-b", "nft", ...common]);
  if (applied.code !== 0) throw new Error(`apply failed: ${applied.stderr}`);
  portmap = spawn("ip", ["netns", "exec", cl, process.execPath, main, "portmap", policy, "--lifetime", String(LIFETIME), "--hook", hook, ...common], { stdio: "ignore" });
  let pid;
  for (let i = 0; i < 100 && pid === undefined; i++) {
    await new Promise((r) => setTimeout(r, 200));
    try { pid = Number(/"pid":(\d+)/.exec(readFileSync(join(dir, "state", "portmap.json"), "utf8"))[1]); } catch { /* not mapped yet */ }
  }
  if (pid === undefined) throw new Error("portmap made no mapping within 20 s");
  const ticks = () => { const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" "); return Number(f[11]) + Number(f[12]); };
  const before = ticks();
  const start = Date.now();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const cpu = (ticks() - before) / 100 / ((Date.now() - start) / 1000);
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const mb = (key) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)[1]) / 1024;
  console.log(`swarmgate portmap idling (lifetime ${LIFETIME} s, ${SECONDS} s measured): ${(100 * cpu).toFixed(2)} % of a CPU, ${mb("VmRSS").toFixed(1)} MB resident (peak ${mb("VmHWM").toFixed(1)} MB)`);
  console.log(`budget: < 1 % CPU and < 60 MB — ${cpu < 0.01 && mb("VmHWM") < 60 ? "OK" : "OVER BUDGET"}`);
} finally {
  portmap?.kill("SIGTERM");
  await new Promise((r) => setTimeout(r, 2500));
  await world.destroy();
  rmSync(dir, { recursive: true, force: true });
}
