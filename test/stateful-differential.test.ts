// The simulator against the kernel past the first packet of a connection
// (issue 9): on every foreign fixture and on swarmgate's own compiled
// rulesets, conversations crafted with scapy — replies and later packets
// (established, TCP and UDP), ICMP errors about them (related), stray packets
// with odd TCP flags or quoting no connection (new or invalid), on two
// interfaces, IPv4 and IPv6 — and for every packet the state the
// connection-tracking model predicts and the verdict the simulator gives must
// be the kernel's.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { compile } from "../src/compile/index.js";
import { describeStateful, statefulDifferential, type StatefulResult } from "../src/lab/stateful-differential.js";
import { readForeignFiles } from "../src/parse/index.js";
import { loadPolicy } from "../src/policy/load.js";
import { ROOT } from "./helpers/cli.js";

const FIXTURES = join(ROOT, "test/fixtures/foreign");
const everything = (name: string) => ["ipset.txt", "nft.json", "iptables-save.txt", "ip6tables-save.txt"].map((f) => join(FIXTURES, name, f)).filter(existsSync);
const CONVERSATIONS = Number(process.env.STATEFUL_CONVERSATIONS ?? 160);
const SEED = Number(process.env.SEED ?? 20261203);

function check(r: StatefulResult, seed: number, dependsAllowed: boolean): void {
  expect(r.packets).toBeGreaterThan(CONVERSATIONS * 2);
  expect(r.unsent).toBe(0);
  if (!dependsAllowed) expect(r.depends).toBe(0);
  // Every state doctor reasons about was asked.
  for (const s of ["new", "established", "related", "invalid", "untracked"] as const) expect([s, r.states[s]]).not.toEqual([s, 0]);
  expect(r.disagreements.slice(0, 20).map((d) => `${describeStateful(d)} (seed ${seed})`)).toEqual([]);
}

describe("foreign rulesets: established, related, invalid, two interfaces, both families", () => {
  test.each([
    ["classic-qbittorrent", "192.168.0.50/24", false],
    ["gateway-wrong-direction", "198.51.100.2/24", false],
    ["docker-like", "192.168.0.60/24", false],
    ["fail2ban-like", "192.168.0.70/24", true],
    ["ufw", "192.168.1.80/24", true],
    ["nft-handwritten", "198.51.100.3/24", false],
    ["firewalld", "192.168.1.90/24", true],
    ["swarmgate-standalone-iptables", "192.168.153.51/24", false],
    ["swarmgate-standalone-nft", "192.168.153.51/24", false],
    ["swarmgate-gateway-nft", "198.51.100.2/24", false],
  ] as const)("%s", async (name, v4, dependsAllowed) => {
    const r = await statefulDifferential({ load: { files: everything(name) }, host: { iface: "eth0", v4, v6: "2001:db8::99/64" }, conversations: CONVERSATIONS, seed: SEED, dependsAllowed });
    check(r, SEED, dependsAllowed);
  });
});

describe("swarmgate's own rulesets, compiled and loaded through each backend", () => {
  test.each(["nft", "iptables"] as const)("examples/standalone.yaml, %s", async (backend) => {
    const ruleset = compile(loadPolicy(join(ROOT, "examples/standalone.yaml")));
    const r = await statefulDifferential({ load: { ruleset, backend }, host: { iface: "eth0", v4: "192.168.153.51/24", v6: "2001:db8::51/64" }, conversations: CONVERSATIONS, seed: SEED });
    check(r, SEED, false);
  });
});

test("a simulator that forgets RELATED is caught by the ICMP errors, and only by them", async () => {
  // The kernel gets the classic script; the simulator reads its state rules as ESTABLISHED alone.
  const dir = mkdtempSync(join(tmpdir(), "sg-stateful-"));
  const [original] = everything("classic-qbittorrent").filter((f) => f.endsWith("/iptables-save.txt"));
  writeFileSync(join(dir, "wrong.txt"), readFileSync(original!, "utf8").replaceAll("--state RELATED,ESTABLISHED", "--state ESTABLISHED"));
  const simulateWith = readForeignFiles([join(dir, "wrong.txt")]).ruleset;
  const r = await statefulDifferential({ load: { files: [original!] }, simulateWith, host: { iface: "eth0", v4: "192.168.0.50/24", v6: "2001:db8::99/64" }, conversations: CONVERSATIONS, seed: SEED });
  expect(r.disagreements.length).toBeGreaterThan(0);
  expect(r.disagreements.every((d) => d.probe.packet.protocol === "icmp" && d.probe.packet.state === "related")).toBe(true);
});
