// For generated valid policies: the loader accepts them, compile never throws,
// and every backend's output is loaded for real by the real tools (a syntax
// check alone would accept a jump to a missing chain).
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { expect, test } from "vitest";
import { compile } from "../src/compile/index.js";
import { emit } from "../src/backend/registry.js";
import { withNetns, type Netns } from "../src/system/netns.js";
import { parsePolicy } from "../src/policy/load.js";
import { gatewayPolicy, hostPolicy } from "./helpers/policies.js";

const RUNS = Number(process.env.PROPERTY_RUNS ?? 40);

async function loadsForReal(ns: Netns, policyText: string): Promise<void> {
  const ruleset = compile(parsePolicy(policyText, "generated.json"));
  const [nft] = emit(ruleset, "nft");
  const [v4, v6] = emit(ruleset, "iptables");
  const [script] = emit(ruleset, "script");
  const tools: [string, string[], string][] = [
    ["nft", ["-f", "-"], nft!.text],
    // Without --noflush each run starts from empty filter and nat tables.
    ["iptables-restore", [], v4!.text],
    ["ip6tables-restore", [], v6!.text],
  ];
  for (const [tool, args, input] of tools) {
    const r = await ns.exec(tool, args, { input });
    expect(r.code, `${tool} rejected the output of\n${policyText}\n${r.stderr}`).toBe(0);
  }
  const dir = mkdtempSync(join(tmpdir(), "sg-prop-"));
  writeFileSync(join(dir, "fw.sh"), script!.text);
  chmodSync(join(dir, "fw.sh"), 0o755);
  const syntax = await ns.exec("sh", ["-n", join(dir, "fw.sh")]);
  expect(syntax.code, syntax.stderr).toBe(0);
}

test.each([["host", hostPolicy], ["gateway", gatewayPolicy]] as const)("generated %s policies compile and load", async (_role, arb) => {
  await withNetns(1, async (ns) => {
    await fc.assert(fc.asyncProperty(arb, async (policy) => {
      await loadsForReal(ns, JSON.stringify(policy, null, 1));
    }), { numRuns: RUNS });
  });
}, 120_000);
