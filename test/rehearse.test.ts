// Rehearsals with the real kernel: both examples and every scenario under
// test/scenarios, with both backends, every flow as the policy says.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { rehearse, type Rehearsal } from "../src/lab/rehearse.js";
import { loadPolicy } from "../src/policy/load.js";

const ROOT = join(import.meta.dirname, "..");
const POLICIES = [
  "examples/standalone.yaml",
  "examples/gateway.yaml",
  ...readdirSync(join(ROOT, "test/scenarios")).filter((f) => f.endsWith(".yaml")).sort().map((f) => `test/scenarios/${f}`),
];

export function failures(r: Rehearsal): string {
  return r.flows.filter((f) => !f.ok).map((f) => `${f.id}. ${f.what}: expected ${f.expect}, observed ${f.observed} (${f.detail})\n   ${f.expectedRule}`).join("\n");
}

test("there are at least ten scenarios besides the examples", () => {
  expect(POLICIES.length - 2).toBeGreaterThanOrEqual(10);
});

describe.each(["nft", "iptables"] as const)("rehearse with %s", (backend) => {
  test.each(POLICIES)("%s", async (file) => {
    const result = await rehearse(loadPolicy(join(ROOT, file)), { backend });
    expect(result.flows.length).toBeGreaterThan(20);
    expect(result.flows.some((f) => f.expect === "open")).toBe(true);
    expect(result.flows.some((f) => f.expect === "closed")).toBe(true);
    expect(failures(result)).toBe("");
    expect(result.ok).toBe(true);
  });
});
