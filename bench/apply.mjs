#!/usr/bin/env node
// swarmgate apply against the classic recipe, side by side, inside a
// throwaway network namespace (never this machine's own firewall):
//   classic: a shell script that resets policies to ACCEPT, flushes every
//            table, then runs one iptables call per rule (the host is open
//            from the reset until the last call);
//   swarmgate: the whole `swarmgate apply` process (Node start included),
//            one transaction, never open.
// The same rules both ways (swarmgate's own compiled rules), for the
// standalone example and for generated policies of about 500 and 5,000 rules.
// Needs root. Usage: npm run build && node bench/apply.mjs
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const main = join(root, "dist", "cli", "main.js");
const { parsePolicy, loadPolicy } = await import(join(root, "dist/policy/load.js"));
const { compile } = await import(join(root, "dist/compile/index.js"));
const { emitIptables } = await import(join(root, "dist/backend/iptables.js"));
const CLASSIC_LIMIT_S = 180;

// Named like every swarmgate namespace (sg-<pid>-<n>), so a crashed run is cleaned up by the next one.
const ns = `sg-${process.pid}-999999`;
const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: ["pipe", "pipe", "pipe"], ...opts }).toString();
const inNs = (cmd, args, opts) => sh("ip", ["netns", "exec", ns, cmd, ...args], opts);

function generated(n) {
  const admin = Array.from({ length: n }, (_, i) => `  - {name: svc${i}, port: ${10000 + (i % 50000)}, from: [10.${(i >> 8) & 255}.${i & 255}.0/24]}`).join("\n");
  return parsePolicy(`version: 1\nhost:\n  interface: eth0\nclients:\n  - {name: qb, ports: 6881}\noutbound:\n  peers: true\n  dns: any\nadmin:\n${admin}\n`, `generated-${n}.yaml`);
}

/** The classic recipe for the same rules: reset, flush, one call per rule, then default deny. */
function classicScript(ruleset, variant = "") {
  const lines = ["#!/bin/sh", "set -e"];
  for (const [tool, family] of [[`iptables${variant}`, 4], [`ip6tables${variant}`, 6]]) {
    lines.push(`${tool} -P INPUT ACCEPT`, `${tool} -P OUTPUT ACCEPT`, `${tool} -F`, `${tool} -X`);
    const text = emitIptables(ruleset, family, { jumps: false });
    for (const l of text.split("\n")) {
      if (l.startsWith(":SWARMGATE-")) lines.push(`${tool} -N ${l.slice(1).split(" ")[0]}`);
      else if (l.startsWith("-A ")) lines.push(`${tool} ${l.replace(/ -j RETURN$/, " -j ACCEPT")}`);
    }
    lines.push(`${tool} -A INPUT -j SWARMGATE-INPUT`, `${tool} -A OUTPUT -j SWARMGATE-OUTPUT`);
  }
  return lines.join("\n") + "\n";
}

function seconds(fn) {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

const rows = [];
sh("ip", ["netns", "add", ns]);
try {
  const dir = mkdtempSync(join(tmpdir(), "sg-bench-"));
  const cases = [
    ["standalone example", loadPolicy(join(root, "examples/standalone.yaml")), join(root, "examples/standalone.yaml")],
    ["generated, ~500 rules", generated(470), null],
    ["generated, ~5,000 rules", generated(4970), null],
  ];
  for (const [label, policy, file] of cases) {
    const path = file ?? join(dir, `${label.replace(/\W+/g, "-")}.yaml`);
    if (!file) writeFileSync(path, policy.source.text);
    const ruleset = compile(policy);
    const rules = ruleset.tables.flatMap((t) => t.chains).reduce((n, c) => n + c.rules.length, 0);
    const calls = classicScript(ruleset).split("\n").filter((l) => /^ip6?tables/.test(l)).length;
    const classic = {};
    for (const [variant, suffix] of [["nft", ""], ["legacy", "-legacy"]]) {
      const script = join(dir, `classic${suffix}.sh`);
      writeFileSync(script, classicScript(ruleset, suffix));
      try {
        classic[variant] = seconds(() => inNs("timeout", [String(CLASSIC_LIMIT_S), "sh", script]));
      } catch {
        classic[variant] = Infinity;
      }
      inNs("sh", ["-c", `for t in iptables${suffix} ip6tables${suffix}; do $t -F; $t -X; $t -P INPUT ACCEPT; $t -P OUTPUT ACCEPT; done; nft flush ruleset`]);
    }
    const results = {};
    for (const backend of ["nft", "iptables"]) {
      const state = mkdtempSync(join(dir, "state-"));
      results[backend] = seconds(() => inNs(process.execPath, [main, "apply", path, "--force", "-b", backend, "--state-dir", state]));
      inNs(process.execPath, [main, "stop", "--state-dir", state]);
    }
    rows.push({ label, rules, calls, classic, ...results });
    process.stderr.write(`${label}: done\n`);
  }
} finally {
  sh("ip", ["netns", "del", ns]);
}

const fmt = (s) => (s === Infinity ? `>${CLASSIC_LIMIT_S} s` : `${s.toFixed(2)} s`);
const ratio = (classic, x) => (classic === Infinity ? `>${(CLASSIC_LIMIT_S / x).toFixed(0)}×` : `${(classic / x).toFixed(1)}×`);
console.log("swarmgate apply vs the classic one-call-per-rule iptables script (the same rules), whole processes, in a network namespace\n");
console.log(`${"case".padEnd(26)} ${"rules".padStart(6)} ${"calls".padStart(6)} ${"classic nft".padStart(12)} ${"classic legacy".padStart(15)} ${"apply -b nft".padStart(13)} ${"apply -b ipt".padStart(13)}   ratios (classic nft / legacy ÷ apply nft)`);
for (const r of rows) {
  console.log(`${r.label.padEnd(26)} ${String(r.rules).padStart(6)} ${String(r.calls).padStart(6)} ${fmt(r.classic.nft).padStart(12)} ${fmt(r.classic.legacy).padStart(15)} ${fmt(r.nft).padStart(13)} ${fmt(r.iptables).padStart(13)}   ${ratio(r.classic.nft, r.nft)} / ${ratio(r.classic.legacy, r.nft)}`);
}
console.log("\nclassic nft: the script run with iptables-nft (this machine's iptables); classic legacy: with iptables-legacy.");
console.log("ratio = classic time / swarmgate apply time (higher is better for swarmgate).");
console.log("The classic script leaves the host open from its first call (policies reset to ACCEPT, tables flushed)");
console.log("until its last; swarmgate's change is one transaction per family: the host is never open.");
