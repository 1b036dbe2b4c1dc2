// The port mapper idling against the real miniupnpd, side by side with
// Debian's natpmpc doing the same renewals from a shell loop. Renewals are
// compressed (lifetime 4 s: a renewal round every 2 s instead of every 30 s)
// so that a short window holds many of them. Prints measured figures only:
// CPU time over the window (utime+stime from /proc, children included for the
// shell loop) and resident memory.
//
//   npm run build && node bench/portmap.mjs [window seconds, default 20]
//
// Needs root (network namespaces); every namespace is named sgp-bench-*.

import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createWorld, INSIDE, run } from "../test/helpers/portmap-lab.mjs";

const WINDOW_S = Number(process.argv[2] ?? 20);
const LIFETIME = 4;
const TICK = Number((await run("getconf", ["CLK_TCK"])).stdout.trim()) || 100; // /proc counts in these

function cpuTicks(pid, withChildren) {
  // /proc/<pid>/stat: fields after the ")" — utime 14, stime 15, cutime 16, cstime 17 (1-based)
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
  const own = f[11] + f[12];
  return withChildren ? own + f[13] + f[14] : own;
}

function memKb(pid, key) {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) : NaN;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function measure(pid, withChildren) {
  await sleep(3000); // past start-up and the first mapping
  const t0 = cpuTicks(pid, withChildren);
  const w0 = Date.now();
  let peakRss = 0;
  while (Date.now() - w0 < WINDOW_S * 1000) {
    peakRss = Math.max(peakRss, memKb(pid, "VmRSS"));
    await sleep(250);
  }
  const ticks = cpuTicks(pid, withChildren) - t0;
  const seconds = (Date.now() - w0) / 1000;
  return { cpuMs: (ticks * 1000) / TICK, seconds, cpuPercent: (ticks / TICK / seconds) * 100, rssKb: memKb(pid, "VmRSS"), peakRss };
}

const mb = (kb) => (kb / 1024).toFixed(1);

const world = await createWorld("bench");
try {
  await world.startMiniupnpd(["min_lifetime=2"]);
  const rows = [];

  for (const protocol of ["natpmp", "pcp"]) {
    const d = world.startMapper({ gateway: INSIDE, internalPort: 6881, lifetime: LIFETIME, protocol });
    await d.waitFor((m) => m.event?.type === "changed");
    const from = d.events.length;
    const r = await measure(d.pid, false);
    const renewals = d.events.slice(from).filter((m) => m.event?.type === "renewed").length;
    await d.stop();
    rows.push([`swarmgate PortMapper (${protocol}, node ${process.version})`, r, renewals]);
  }

  // natpmpc: one process per request, as a cron or shell user would run it.
  const loop = `while :; do natpmpc -g ${INSIDE} -a 6882 6882 udp ${LIFETIME} >/dev/null; natpmpc -g ${INSIDE} -a 6882 6882 tcp ${LIFETIME} >/dev/null; sleep ${LIFETIME / 2}; done`;
  const sh = spawn("ip", ["netns", "exec", world.ns.cl, "sh", "-c", loop], { stdio: "ignore" });
  try {
    const r = await measure(sh.pid, true);
    const rounds = Math.round(r.seconds / (LIFETIME / 2));
    rows.push(["natpmpc in a sh loop (CPU: sh + children; RSS: sh)", r, rounds]);
  } finally {
    sh.kill("SIGKILL");
  }
  // natpmpc lives for milliseconds: its peak RSS comes from GNU time, not from polling.
  const peak = await run("ip", ["netns", "exec", world.ns.cl, "/usr/bin/time", "-f", "%M", "natpmpc", "-g", INSIDE, "-a", "6882", "6882", "udp", String(LIFETIME)]);
  const peakKb = Number(peak.stderr.trim().split("\n").at(-1));

  // For scale: a node process that does nothing at all.
  const idle = spawn("ip", ["netns", "exec", world.ns.cl, process.execPath, "-e", "setInterval(() => {}, 1e9)"], { stdio: "ignore" });
  await sleep(1500);
  const idleRss = memKb(idle.pid, "VmRSS");
  idle.kill("SIGKILL");

  console.log(`window ${WINDOW_S} s each; lifetime ${LIFETIME} s, so a renewal round every ${LIFETIME / 2} s (15x the rate of lifetime 60 s)`);
  console.log("client                                              renewal rounds  CPU ms  CPU %   RSS MB (peak)");
  for (const [name, r, n] of rows) {
    console.log(
      `${name.padEnd(52)}${String(n).padStart(14)}${r.cpuMs.toFixed(0).padStart(8)}${r.cpuPercent.toFixed(2).padStart(7)}   ${mb(r.rssKb)} (${mb(r.peakRss)})`,
    );
  }
  console.log(`one natpmpc run, peak RSS (GNU time): ${Number.isFinite(peakKb) ? mb(peakKb) : "?"} MB`);
  console.log(`an idle node process (setInterval only), RSS: ${mb(idleRss)} MB`);
} finally {
  await world.destroy();
}
