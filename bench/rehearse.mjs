#!/usr/bin/env node
// Times the whole `swarmgate rehearse` of the standalone example (cold start,
// sandbox, ruleset load, every flow, teardown) with each backend, beside the
// same command's `check` of the policy. Target (issue 3): under 10 s.
// Needs root. Usage: npm run build && node bench/rehearse.mjs [runs]
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const main = join(root, "dist", "cli", "main.js");
const runs = Number(process.argv[2] ?? 3);
const TARGET_S = 10;

function time(args) {
  const samples = [];
  let flows = 0;
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    const out = execFileSync(process.execPath, [main, ...args], { cwd: root, stdio: ["ignore", "pipe", "ignore"] }).toString();
    samples.push(Number(process.hrtime.bigint() - start) / 1e9);
    if (args.includes("--json")) flows = JSON.parse(out).flows.length;
  }
  samples.sort((a, b) => a - b);
  return { median: samples[Math.floor(samples.length / 2)], max: samples[samples.length - 1], flows };
}

console.log(`swarmgate rehearse benchmark: examples/standalone.yaml, ${runs} runs each, whole process, seconds (target ${TARGET_S} s)\n`);
console.log(`${"command".padEnd(52)} ${"median".padStart(7)} ${"max".padStart(7)}  flows  verdict`);
let over = 0;
for (const [label, args] of [
  ["check (validation only, for scale)", ["check", "examples/standalone.yaml"]],
  ["rehearse --backend nft", ["rehearse", "examples/standalone.yaml", "--backend", "nft", "--json"]],
  ["rehearse --backend iptables", ["rehearse", "examples/standalone.yaml", "--backend", "iptables", "--json"]],
]) {
  const t = time(args);
  const verdict = label.startsWith("check") ? "baseline" : t.max < TARGET_S ? "within target" : "OVER TARGET";
  if (verdict === "OVER TARGET") over++;
  console.log(`${label.padEnd(52)} ${t.median.toFixed(2).padStart(7)} ${t.max.toFixed(2).padStart(7)}  ${String(t.flows || "-").padStart(5)}  ${verdict}`);
}
process.exitCode = over ? 1 : 0;
