#!/usr/bin/env node
// Times `swarmgate check` and `swarmgate compile` as whole processes (cold
// start included) on the bundled examples, side by side with Node starting
// and doing nothing. Budget (design.md): under 300 ms each.
// Usage: npm run build && node bench/compile.mjs [runs]
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const main = join(root, "dist", "cli", "main.js");
const runs = Number(process.argv[2] ?? 15);
const BUDGET_MS = 300;

function time(args) {
  const samples = [];
  for (let i = 0; i < runs + 2; i++) {
    const start = process.hrtime.bigint();
    execFileSync(process.execPath, args, { stdio: ["ignore", "ignore", "inherit"], cwd: root });
    samples.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  const s = samples.slice(2).sort((a, b) => a - b); // the first two warm the page cache
  return { median: s[Math.floor(s.length / 2)], p90: s[Math.floor(s.length * 0.9)], max: s[s.length - 1] };
}

const rows = [["node -e 0 (start-up alone)", ["-e", "0"]]];
for (const example of ["standalone", "gateway"]) {
  const file = `examples/${example}.yaml`;
  rows.push([`check ${file}`, [main, "check", file]]);
  for (const backend of ["nft", "iptables", "script"]) rows.push([`compile ${file} -b ${backend}`, [main, "compile", file, "-b", backend]]);
}

console.log(`swarmgate compile benchmark: ${runs} runs each, whole process, milliseconds (budget ${BUDGET_MS} ms)\n`);
console.log(`${"command".padEnd(50)} ${"median".padStart(7)} ${"p90".padStart(7)} ${"max".padStart(7)}  verdict`);
let over = 0;
for (const [label, args] of rows) {
  const t = time(args);
  const verdict = label.startsWith("node") ? "baseline" : t.p90 < BUDGET_MS ? "within budget" : "OVER BUDGET";
  if (verdict === "OVER BUDGET") over++;
  console.log(`${label.padEnd(50)} ${t.median.toFixed(1).padStart(7)} ${t.p90.toFixed(1).padStart(7)} ${t.max.toFixed(1).padStart(7)}  ${verdict}`);
}
process.exitCode = over ? 1 : 0;
