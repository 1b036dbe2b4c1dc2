// Round trip (issue 9): a generated host or gateway policy is compiled, loaded
// through each backend's own plan into a throwaway namespace, read back from
// what the kernel then holds (nft -j list ruleset, iptables-save,
// ip6tables-save, as --live reads it), and imported; the exposure of the
// ruleset read back, and of the imported policy compiled again, must both
// equal the exposure of the original policy — an empty difference either way
// (for a gateway, on the WAN and the LAN, forwarded connections included).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { exposure, type ExposureSpace } from "../src/analyze/exposure.js";
import { exposureDiff, type DiffLine } from "../src/analyze/exposure-diff.js";
import { importPolicy } from "../src/analyze/import.js";
import { importGatewayPolicy } from "../src/analyze/import-gateway.js";
import { readGatewayNat } from "../src/analyze/gateway-nat.js";
import type { Policy } from "../src/policy/types.js";
import { kernelBackend } from "../src/backend/registry.js";
import { compile } from "../src/compile/index.js";
import type { Ruleset } from "../src/ir/ruleset.js";
import { parseAddress } from "../src/net/address.js";
import { readForeign } from "../src/parse/index.js";
import { parsePolicy } from "../src/policy/load.js";
import { staticEnvironment } from "../src/sim/environment.js";
import { withNetns, type Netns } from "../src/system/netns.js";
import { policySpace } from "../src/analyze/policy-space.js";
import { gatewayPolicy, hostPolicy } from "./helpers/policies.js";

const RUNS = Number(process.env.ROUNDTRIP_RUNS ?? 8);
const SEED = Number(process.env.SEED ?? 20261204);
const IFACE = "eth0";
const local = { 4: parseAddress("192.0.2.51")!, 6: parseAddress("2001:db8::51")! };
const env = staticEnvironment({ local: [local[4], local[6]], routes: [], addresses: [{ iface: IFACE, address: local[4] }, { iface: IFACE, address: local[6] }] });
const space: ExposureSpace = { interfaces: [IFACE], local, forwards: false, routes: [], own: [local[4], local[6]] };

// The generated policies with one known machine: its interface and an address of each family.
const cases = fc.sample(hostPolicy.map((p) => ({ ...p, host: { interface: IFACE, addresses: ["192.0.2.51", "2001:db8::51"] } })), { numRuns: RUNS, seed: SEED });

/** What the kernel in the namespace holds, saved as --live reads it, then read by the file readers. */
async function readBack(ns: Netns): Promise<Ruleset> {
  const dir = mkdtempSync(join(tmpdir(), "sg-roundtrip-"));
  try {
    const dumps: [string, string, string[]][] = [["nft.json", "nft", ["-j", "list", "ruleset"]], ["iptables-save.txt", "iptables-save", []], ["ip6tables-save.txt", "ip6tables-save", []]];
    const files: string[] = [];
    for (const [file, command, args] of dumps) {
      writeFileSync(join(dir, file), (await ns.execChecked(command, args)).stdout);
      files.push(join(dir, file));
    }
    return (await readForeign(files)).ruleset;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const show = (d: { closes: DiffLine[]; opens: DiffLine[] }) => [...d.closes.map((l) => `closes ${JSON.stringify(l)}`), ...d.opens.map((l) => `opens ${JSON.stringify(l)}`)];

describe.each(["nft", "iptables"] as const)("compile → load → read back → import, %s", (backendName) => {
  test.each(cases.map((c, i) => [i, c] as const))("generated policy %i", async (i, generated) => {
    const text = JSON.stringify(generated, null, 1);
    const policy = parsePolicy(text, `generated-${i}.json`);
    const compiled = compile(policy);
    const original = exposure(compiled, env, space);
    const backend = await kernelBackend(backendName);
    const read = await withNetns(1, async (ns) => {
      for (const { step } of backend.plan(backend.ownedOf(compiled), backend.empty())) await ns.execChecked(step.command, step.args, step.input === undefined ? {} : { input: step.input });
      return readBack(ns);
    });
    const back = exposure(read, env, space);
    const context = `seed ${SEED}, case ${i}, policy ${text}`;
    expect([context, show(exposureDiff(original, back, IFACE))]).toEqual([context, []]);
    const imported = importPolicy({ exposure: back, iface: IFACE, local, source: "the namespace" });
    const again = exposure(compile(parsePolicy(imported.yaml, "imported.yaml")), env, space);
    expect([context, imported.yaml, show(exposureDiff(original, again, IFACE))]).toEqual([context, imported.yaml, []]);
  });
});

// Gateways: the ruleset read back from the kernel has the policy's exposure, forwards included; imported, it gives
// a gateway policy whose exposure is the original's on both interfaces, forwarded connections included.
const gateways = fc.sample(gatewayPolicy, { numRuns: Math.max(2, RUNS / 2), seed: SEED + 2 });

describe.each(["nft", "iptables"] as const)("gateway: compile → load → read back → import, %s", (backendName) => {
  test.each(gateways.map((c, i) => [i, c] as const))("generated gateway %i", async (i, generated) => {
    const text = JSON.stringify(generated, null, 1);
    const policy = parsePolicy(text, `gateway-${i}.json`);
    const compiled = compile(policy);
    const { space: gwSpace, env: gwEnv } = policySpace(policy);
    const backend = await kernelBackend(backendName);
    const read = await withNetns(1, async (ns) => {
      for (const { step } of backend.plan(backend.ownedOf(compiled), backend.empty())) await ns.execChecked(step.command, step.args, step.input === undefined ? {} : { input: step.input });
      return readBack(ns);
    });
    const [original, back] = [exposure(compiled, gwEnv, gwSpace), exposure(read, gwEnv, gwSpace)];
    const context = `seed ${SEED + 2}, gateway ${i}, policy ${text}`;
    // Each forward is judged, not an empty report compared with another.
    expect(original.filter((e) => e.direction === "forwarded" && e.target).length >= Math.min(1, policy.forward.length)).toBe(true);
    for (const iface of gwSpace.interfaces) expect([context, iface, show(exposureDiff(original, back, iface))]).toEqual([context, iface, []]);
    const imported = importGateway(policy, read, back);
    const again = exposure(compile(parsePolicy(imported.yaml, "imported.yaml")), gwEnv, gwSpace);
    for (const iface of gwSpace.interfaces) expect([context, iface, imported.yaml, show(exposureDiff(original, again, iface))]).toEqual([context, iface, imported.yaml, []]);
  });
});

/** A gateway's ruleset imported as the CLI does, with the policy's WAN, LAN, networks and routes known (as --lan, --lan-network and --route say them). */
function importGateway(policy: Policy, ruleset: Ruleset, judged: ReturnType<typeof exposure>) {
  const gw = policy.gateway!;
  const { space } = policySpace(policy);
  return importGatewayPolicy({ exposure: judged, wan: gw.wan, lan: gw.lan, lanNetwork: gw.lanNetwork, ...(gw.lanNetwork6 && { lanNetwork6: gw.lanNetwork6 }), nat: readGatewayNat(ruleset), lanRoutes: space.routes, local: space.local, source: "test" });
}

describe("gateway import gives back what a policy says (no kernel)", () => {
  test("100 generated gateway policies: the same exposure on the WAN and the LAN, forwards included", () => {
    const many = fc.sample(gatewayPolicy, { numRuns: 100, seed: SEED + 3 });
    for (const [i, generated] of many.entries()) {
      const policy = parsePolicy(JSON.stringify(generated), `gateway-${i}.json`);
      const compiled = compile(policy);
      const { space: gwSpace, env: gwEnv } = policySpace(policy);
      const original = exposure(compiled, gwEnv, gwSpace);
      const imported = importGateway(policy, compiled, original);
      const again = exposure(compile(parsePolicy(imported.yaml, "imported.yaml")), gwEnv, gwSpace);
      const context = `seed ${SEED + 3}, case ${i}: ${JSON.stringify(generated)}`;
      for (const iface of gwSpace.interfaces) expect([context, iface, imported.yaml, show(exposureDiff(original, again, iface))]).toEqual([context, iface, imported.yaml, []]);
      expect([context, imported.notExpressed]).toEqual([context, []]);
    }
  });
});

/** Import on a policy's own exposure, without the kernel: the difference must be empty. */
function importDiff(generated: object): { yaml: string; diff: string[] } {
  const original = exposure(compile(parsePolicy(JSON.stringify(generated))), env, space);
  const imported = importPolicy({ exposure: original, iface: IFACE, local, source: "test" });
  return { yaml: imported.yaml, diff: show(exposureDiff(original, exposure(compile(parsePolicy(imported.yaml, "imported.yaml")), env, space), IFACE)) };
}

describe("import gives back what a policy says (no kernel)", () => {
  const host = { interface: IFACE, addresses: ["192.0.2.51", "2001:db8::51"] };

  test.each([
    ["a client's Local Service Discovery", { clients: [{ name: "q", ports: 6881, lsd: true }], outbound: { peers: false, dns: "any" } }, "lsd: true"],
    ["LSD beside the peers' range, which covers 6771 too", { clients: [{ name: "q", ports: 6881, lsd: true }], outbound: { peers: true, trackers: [443], dns: "any" } }, "peers: true"],
    ["a tracker limited to some destinations, IPv6 only", { outbound: { trackers: [{ ports: [4974, 5118], to: ["2001:db8:7::/48"], protocols: ["udp"] }] } }, 'to: ["2001:db8:7::/48"]'],
    ["an admin service from both families: one entry", { admin: [{ name: "a", port: 2222, from: ["198.51.100.0/24", "2001:db8:5::/48"] }] }, 'from: ["198.51.100.0/24", "2001:db8:5::/48"]'],
    ["an admin service from a network holding ::1, which the exposure says as anyone but the rest", { admin: [{ name: "a", port: 2222, protocols: ["udp"], from: ["::/19"] }] }, 'from: ["::/19"]'],
    ["TCP and UDP admin on one port from the same sources", { admin: [{ name: "a", port: 2222, protocols: ["tcp", "udp"], from: ["10.0.0.0/8"] }] }, "protocols: [tcp, udp]"],
  ])("%s", (_what, policy, expected) => {
    const r = importDiff({ version: 1, host, ...policy });
    expect(r.yaml).toContain(expected);
    expect([r.yaml, r.diff]).toEqual([r.yaml, []]);
  });

  test("100 generated host policies", () => {
    const many = fc.sample(hostPolicy.map((p) => ({ ...p, host })), { numRuns: 100, seed: SEED + 1 });
    for (const [i, p] of many.entries()) {
      const r = importDiff(p);
      expect([`seed ${SEED + 1}, case ${i}: ${JSON.stringify(p)}`, r.diff]).toEqual([`seed ${SEED + 1}, case ${i}: ${JSON.stringify(p)}`, []]);
    }
  });
});
