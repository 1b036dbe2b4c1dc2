// swarmgate as a library, through the package's own entry point.
import { expect, test } from "vitest";

test("import { loadPolicy, compile, emit, simulate } from the package", async () => {
  const lib = await import("../dist/index.js");
  const policy = lib.loadPolicy("examples/standalone.yaml");
  const ruleset = lib.compile(policy);
  expect(lib.emit(ruleset, "nft")[0]!.text).toContain("table inet swarmgate {");
  expect(lib.emit(ruleset, "iptables").map((a: { suffix: string }) => a.suffix)).toEqual(["v4", "v6"]);
  const packet = lib.parsePacket("tcp 203.0.113.5:40000 -> 192.168.153.51:6881 in eth0");
  expect(lib.simulate(lib.compileForSim(ruleset), packet, lib.policyEnvironment(policy, packet)).verdict).toBe("accept");
  expect(lib.audit(policy).ok).toBe(true);
  expect(() => lib.parsePolicy("version: 2\n", "p.yaml")).toThrow(lib.SwarmgateError);
});
