// The simulator against the kernel: for each bundled example and scenario, with
// both backends, 2,000 generated new connections are sent for real through the
// rehearsal sandbox and evaluated by the simulator; every verdict must agree.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { compile } from "../src/compile/index.js";
import type { Ruleset } from "../src/ir/ruleset.js";
import { differential, type DifferentialResult } from "../src/lab/differential.js";
import { formatAddress } from "../src/net/address.js";
import { loadPolicy } from "../src/policy/load.js";
import { formatPacket } from "../src/sim/spec.js";

const ROOT = join(import.meta.dirname, "..");
const POLICIES = [
  "examples/standalone.yaml",
  "examples/gateway.yaml",
  ...readdirSync(join(ROOT, "test/scenarios")).filter((f) => f.endsWith(".yaml")).sort().map((f) => `test/scenarios/${f}`),
];
const COUNT = Number(process.env.DIFFERENTIAL_PACKETS ?? 2000);
const BASE_SEED = Number(process.env.SEED ?? 20261122);

function report(r: DifferentialResult, seed: number): string {
  return r.disagreements.slice(0, 10).map((d) => [
    `${formatPacket(d.probe.packet, formatAddress)}: simulator ${d.simulated.verdict}, kernel ${d.kernel}${d.where.length ? ` at ${d.where.join(", ")}` : ""} (seed ${seed})`,
    ...d.simulated.trace.map((s) => `    ${s.hook} ${s.chain} ${s.kind === "rule" ? `rule ${s.ruleIndex! + 1} ${s.action}: ${s.rule!.origin.intent}` : s.action}`),
  ].join("\n")).join("\n");
}

describe.each(["nft", "iptables"] as const)("simulator = kernel, %s", (backend) => {
  test.each(POLICIES.map((file, i) => [file, BASE_SEED + i] as const))("%s", async (file, seed) => {
    const result = await differential(loadPolicy(join(ROOT, file)), { backend, count: COUNT, seed });
    expect(result.sent).toBeGreaterThan(COUNT * 0.95);
    expect(report(result, seed)).toBe("");
  });
});

test("a simulator that misreads one rule is caught", async () => {
  const policy = loadPolicy(join(ROOT, "examples/standalone.yaml"));
  const ruleset = compile(policy);
  // The simulator believes the client's port is one higher than the kernel does.
  const wrong: Ruleset = { tables: ruleset.tables.map((t) => ({ ...t, chains: t.chains.map((c) => ({ ...c, rules: c.rules.map((r) => (
    r.origin.path === "clients[0]" ? { ...r, matches: r.matches.map((m) => (m.kind === "dport" ? { ...m, ranges: [{ first: 6882, last: 6882 }] } : m)) } : r)) })) })) };
  const result = await differential(policy, { backend: "nft", count: COUNT, seed: BASE_SEED, simulateWith: wrong });
  expect(result.disagreements.length).toBeGreaterThan(0);
  expect(result.disagreements.every((d) => d.probe.dport === 6881 || d.probe.dport === 6882)).toBe(true);
});
