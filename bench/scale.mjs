#!/usr/bin/env node
// How each command's cost grows with the policy: generated policies of
// N = 100, 1,000 and 10,000 entries (host clients with distinct ports and
// ranges, host admin services with IPv4 and IPv6 sources, gateway forwards,
// and densely packed ports), each command run as a whole process
// (`node dist/cli/main.js …`) beside `node -e 0`, with wall time and peak RSS.
// A step from N to 10·N that costs more than ~N log N predicts is flagged.
// Budget (design.md): any command at 1,000 entries < 1 s; at 10,000 < 10 s
// and < 500 MB.
// As root it also times `apply` (no SSH session) and `status` inside a
// throwaway network namespace (sg-<pid>-<n>, removed in finally).
// Usage: npm run build && node bench/scale.mjs [--sizes 100,1000,10000] [--runs 3] [--timeout 120] [--only audit,explain]
//        node bench/scale.mjs --write-policies DIR   (only write the policies, to profile one command)
import { spawnSync, execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const self = fileURLToPath(import.meta.url);

// Without /usr/bin/time this script wraps the command itself: it runs the
// CLI in this process and reports its peak RSS on stderr as it exits.
const WRAP = process.argv[2] === "--wrap";
if (WRAP) {
  process.argv = [process.argv[0], ...process.argv.slice(3)];
  process.on("exit", () => process.stderr.write(`\n${process.resourceUsage().maxRSS}\n`));
  if (process.argv[1] !== "-e") await import(process.argv[1]);
}

const main = join(root, "dist", "cli", "main.js");
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const SIZES = arg("sizes", "100,1000,10000").split(",").map(Number);
const RUNS = Number(arg("runs", 3));
const TIMEOUT_S = Number(arg("timeout", 120));
const ONLY = arg("only", "")?.split(",").filter(Boolean) ?? [];
const BUDGET = { 1000: { ms: 1000 }, 10000: { ms: 10000, mb: 500 } };
const TIME = existsSync("/usr/bin/time") ? "/usr/bin/time" : undefined;

// ---- policies -------------------------------------------------------------

const v6 = (i) => `"2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::/64"`;
const v4net = (i) => `10.${(i >> 8) & 255}.${i & 255}.0/24`;

/** N clients, every third one with a small range, all on distinct ports; a few admin services. */
function hostClients(n) {
  const clients = Array.from({ length: n }, (_, i) => {
    const p = 20000 + 4 * i;
    return `  - {name: c${i}, ports: ${i % 3 === 0 ? `"${p}-${p + 2}"` : p}${i % 5 === 0 ? ", protocols: [tcp]" : ""}}`;
  });
  return `version: 1
host:
  interface: eth0
  addresses: [192.0.2.51/24, "2001:db8::51"]
clients:
${clients.join("\n")}
outbound:
  peers: true
  trackers: [80, 443, 6969]
  dns: [192.0.2.1]
admin:
  - {name: ssh, port: 22, from: [192.0.2.21, "2001:db8::21"]}
`;
}

/** N admin services, each open to its own IPv4 /24 and IPv6 /64, one client. */
function hostAdmin(n) {
  const admin = Array.from({ length: n }, (_, i) => `  - {name: s${i}, port: ${10000 + i}, from: [${v4net(i)}, ${v6(i)}]}`);
  return `version: 1
host:
  interface: eth0
  addresses: [192.0.2.51/24, "2001:db8::51"]
clients:
  - {name: qb, ports: 6881}
outbound:
  peers: true
  dns: any
admin:
${admin.join("\n")}
`;
}

/** A gateway with N forwards, each to its own LAN host (every other one with IPv6), two ports each. */
function gatewayForwards(n) {
  const forward = Array.from({ length: n }, (_, i) => {
    const p = 20000 + 3 * i;
    const h6 = i % 2 === 0 ? `, host6: "2001:db8:1::${(i + 2).toString(16)}"` : "";
    return `  - {host: 10.${(i + 2) >> 16}.${((i + 2) >> 8) & 255}.${(i + 2) & 255}${h6}, ports: "${p}-${p + 1}"}`;
  });
  return `version: 1
gateway:
  wan: ppp0
  lan: lan0
  lan_network: 10.0.0.0/8
  lan_network6: "2001:db8:1::/64"
forward:
${forward.join("\n")}
admin:
  - {name: ssh, port: 22, from: [10.0.0.0/8]}
`;
}

/** Ports packed edge to edge: N/2 one-port clients and N/2 one-port admin services, alternating. */
function dense(n) {
  const clients = [];
  const admin = [];
  for (let i = 0; i < n; i++) {
    if (i % 2 === 0) clients.push(`  - {name: c${i}, ports: ${10000 + i}}`);
    else admin.push(`  - {name: s${i}, port: ${10000 + i}, protocols: [tcp, udp], from: [${v4net(i)}, ${v6(i)}]}`);
  }
  return `version: 1
host:
  interface: eth0
  addresses: [192.0.2.51/24, "2001:db8::51"]
clients:
${clients.join("\n")}
outbound:
  peers: true
  dns: any
admin:
${admin.join("\n")}
`;
}

const POLICIES = [
  { name: "host, N clients", make: hostClients, packet: (n) => `tcp 198.51.100.7:40000 -> 192.0.2.51:${20000 + 4 * (n - 1)} in eth0` },
  { name: "host, N admin", make: hostAdmin, packet: (n) => `tcp [2001:db8:0:${(n - 1).toString(16)}::9]:40000 -> [2001:db8::51]:${10000 + n - 1} in eth0` },
  { name: "gateway, N forwards", make: gatewayForwards, packet: (n) => `udp 198.51.100.7:6881 -> 203.0.113.1:${20000 + 3 * (n - 1)} in ppp0` },
  { name: "dense ports", make: dense, packet: (n) => `udp 198.51.100.7:40000 -> 192.0.2.51:${10000 + n - 2} in eth0` },
];

// ---- measuring --------------------------------------------------------------

/** One process: wall milliseconds and peak RSS in MB (from /usr/bin/time, or from this script wrapping the CLI). */
function once(file, args, env) {
  const [cmd, argv] = TIME ? [TIME, ["-f", "%M", file, ...args]]
    : file === process.execPath ? [file, [self, "--wrap", ...args]] : [file, args];
  const start = process.hrtime.bigint();
  const r = spawnSync(cmd, argv, { cwd: root, env: { ...process.env, ...env }, timeout: TIMEOUT_S * 1000, stdio: ["ignore", "ignore", "pipe"] });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.signal) return { ms: Infinity, mb: NaN, status: "timeout" };
  const lines = r.stderr.toString().trim().split("\n");
  const kb = Number(lines[lines.length - 1]);
  return { ms, mb: kb / 1024, status: r.status, err: lines.slice(-3, -1).join(" ") };
}

/** The median of RUNS runs; one run is enough to show a step slower than 5 s. */
function measure(file, args, env = {}) {
  const samples = [];
  for (let i = 0; i < RUNS; i++) {
    const s = once(file, args, env);
    samples.push(s);
    if (s.status === "timeout" || s.ms > 5000) break;
  }
  samples.sort((a, b) => a.ms - b.ms);
  return samples[Math.floor((samples.length - 1) / 2)];
}

// ---- the namespace, for apply and status (root only) ------------------------

let nsCounter = 0;
function withNamespace(fn) {
  const ns = `sg-${process.pid}-${++nsCounter}`;
  execFileSync("ip", ["netns", "add", ns]);
  const stateDir = mkdtempSync(join(tmpdir(), "sg-scale-state-"));
  try {
    return fn(ns, stateDir);
  } finally {
    try { execFileSync("ip", ["netns", "delete", ns]); } catch { /* already gone */ }
    rmSync(stateDir, { recursive: true, force: true });
  }
}

// ---- the run ----------------------------------------------------------------

const AS_ROOT = process.getuid?.() === 0;
const commands = (file, packet) => [
  ["check", [main, "check", file]],
  ["compile nft", [main, "compile", file, "-b", "nft"]],
  ["compile iptables", [main, "compile", file, "-b", "iptables"]],
  ["compile script", [main, "compile", file, "-b", "script"]],
  ["explain", [main, "explain", file, packet]],
  ["audit", [main, "audit", file]],
].filter(([label]) => ONLY.length === 0 || ONLY.some((o) => label.startsWith(o)));

const fmtMs = (r) => (r.status === "timeout" ? `>${TIMEOUT_S}s`.padStart(8) : r.ms >= 10000 ? `${(r.ms / 1000).toFixed(1)}s`.padStart(8) : `${r.ms.toFixed(0)}ms`.padStart(8));
const fmtMb = (r) => (Number.isNaN(r.mb) ? "    ?" : `${r.mb.toFixed(0)}MB`.padStart(6));

/** Flags a step whose cost above the start-up baseline grows faster than ~N log N (with 50% slack and a 30 ms noise floor). */
function growth(prev, next, nPrev, nNext, baseMs) {
  if (!prev || prev.status === "timeout") return "";
  if (next.status === "timeout") return "  QUADRATIC? (timed out)";
  const a = Math.max(prev.ms - baseMs, 1);
  const b = next.ms - baseMs;
  const allowed = (nNext * Math.log2(nNext)) / (nPrev * Math.log2(nPrev));
  if (b < 30) return "";
  const ratio = b / a;
  return ratio > allowed * 1.5 ? `  QUADRATIC? ×${ratio.toFixed(0)} for ×${nNext / nPrev} entries` : "";
}

function verdict(n, r) {
  const b = BUDGET[n];
  if (!b) return "";
  if (r.status === "timeout" || r.ms > b.ms || (b.mb && r.mb > b.mb)) return "  OVER BUDGET";
  return "";
}

function run() {
  // A missing build would make every command "run" in start-up time: refuse instead.
  if (!existsSync(main)) {
    console.error(`${main} is missing: run \`npm run build\` first`);
    process.exit(2);
  }
  const dir = mkdtempSync(join(tmpdir(), "sg-scale-"));
  const base = measure(process.execPath, ["-e", "0"]);
  console.log(`swarmgate scale benchmark: whole processes, median of ${RUNS} (1 when slower than 5 s), wall time and peak RSS${TIME ? " (/usr/bin/time)" : ""}`);
  console.log(`node -e 0 (start-up alone): ${fmtMs(base).trim()}, ${fmtMb(base).trim()}`);
  console.log(`budget: < 1 s at 1,000 entries; < 10 s and < 500 MB at 10,000; a step costing more than ~N log N above start-up is flagged\n`);

  let flagged = 0;
  let over = 0;
  for (const policy of POLICIES) {
    console.log(`${policy.name}:`);
    console.log(`  ${"command".padEnd(18)} ${SIZES.map((n) => `N=${n}`.padStart(16)).join(" ")}`);
    const files = SIZES.map((n) => {
      const file = join(dir, `${policy.name.replace(/\W+/g, "-")}-${n}.yaml`);
      writeFileSync(file, policy.make(n));
      return file;
    });
    const rows = SIZES.map((n, i) => commands(files[i], policy.packet(n)));
    const extra = [];
    for (let c = 0; c < rows[0].length; c++) {
      const results = rows.map((r) => measure(process.execPath, r[c][1]));
      extra.push([rows[0][c][0], results]);
    }
    if (AS_ROOT && (ONLY.length === 0 || ONLY.includes("apply") || ONLY.includes("status"))) {
      const apply = [];
      const status = [];
      for (const file of files) {
        withNamespace((ns, stateDir) => {
          // An empty SSH_CONNECTION: no session for the lockout guard to judge.
          const exec = (args) => measure("ip", ["netns", "exec", ns, process.execPath, main, ...args, "--state-dir", stateDir], { SSH_CONNECTION: "" });
          apply.push(exec(["apply", file, "-b", "nft"]));
          status.push(exec(["status"]));
        });
      }
      extra.push(["apply (netns)", apply], ["status (netns)", status]);
    }
    for (const [label, results] of extra) {
      const notes = results.map((r, i) => growth(results[i - 1], r, SIZES[i - 1], SIZES[i], base.ms) + verdict(SIZES[i], r)).join("");
      // Only audit and status report a finding with 1; anything else that is not 0 is a failed run.
      const findingOk = label === "audit" || label.startsWith("status");
      const failed = results.find((r) => r.status !== "timeout" && r.status !== 0 && !(findingOk && r.status === 1));
      if (failed) over++;
      if (notes.includes("QUADRATIC")) flagged++;
      if (notes.includes("OVER")) over++;
      console.log(`  ${label.padEnd(18)} ${results.map((r) => `${fmtMs(r)} ${fmtMb(r)}`.padStart(16)).join(" ")}${notes}${failed ? `  (exit ${failed.status}: ${failed.err})` : ""}`);
    }
    console.log("");
  }

  rmSync(dir, { recursive: true, force: true });
  console.log(`${flagged} command curve(s) flagged as faster than N log N; ${over} over budget.`);
  if (!AS_ROOT) console.log("apply and status were not measured: they need root (run as root to time them in a throwaway namespace).");
  process.exitCode = flagged || over ? 1 : 0;
}

/** Only writes the generated policies (for profiling one command with node --cpu-prof). */
function writePolicies(dir) {
  mkdirSync(dir, { recursive: true });
  for (const policy of POLICIES) for (const n of SIZES) {
    const file = join(dir, `${policy.name.replace(/\W+/g, "-")}-${n}.yaml`);
    writeFileSync(file, policy.make(n));
    console.log(`${file}\t${policy.packet(n)}`);
  }
}

if (!WRAP) {
  if (arg("write-policies")) writePolicies(arg("write-policies"));
  else run();
}
