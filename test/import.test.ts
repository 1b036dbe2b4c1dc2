// swarmgate import: a policy from a ruleset other tools wrote, and the exact
// difference in exposure between the two. On swarmgate's own output (read
// back from the kernel by test/fixtures/foreign/capture.mjs) the policy is the
// same as the one compiled, to the address: nothing closes, nothing opens.
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, test } from "vitest";
import { parsePolicy } from "../src/policy/load.js";
import { cli, ROOT } from "./helpers/cli.js";

const FIXTURES = join(ROOT, "test/fixtures/foreign");
const from = (name: string) => ["ipset.txt", "nft.json", "iptables-save.txt", "ip6tables-save.txt"].map((f) => join(FIXTURES, name, f)).filter(existsSync).flatMap((f) => ["--from", f]);
interface Line { direction: string; family: number; protocol: string; ports: string; peers: string; was?: string }
interface Result { ok: boolean; policy: string; closes: Line[]; opens: Line[]; notExpressed: string[] }

async function importJson(name: string, args: string[]): Promise<Result> {
  const r = await cli(["import", ...from(name), "--json", ...args]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Result;
}

test.each(["swarmgate-standalone-nft", "swarmgate-standalone-iptables"])("round trip: %s, read back from the kernel, imports to a policy with the same exposure", async (name) => {
  const r = await importJson(name, ["--interface", "eth0", "--local", "eth0=192.168.153.51", "--local", "eth0=2001:db8::51"]);
  expect(r.closes).toEqual([]);
  expect(r.opens).toEqual([]);
  const policy = parsePolicy(r.policy, "imported.yaml");
  expect(policy.clients.map((c) => [c.ports.first, c.ports.last])).toEqual([[6881, 6881]]);
  expect(policy.admin.map((a) => a.name)).toEqual(["ssh", "vnc", "port-5901"]);
});

test("the classic script: stateless openings and open IPv6 are closed, DNS over TCP opened; each rule named", async () => {
  const r = await importJson("classic-qbittorrent", ["--local", "eth0=192.168.0.50"]);
  const policy = parsePolicy(r.policy, "imported.yaml");
  expect(policy.clients.map((c) => [c.ports.first, c.protocols])).toEqual([[6881, ["tcp", "udp"]]]);
  expect(policy.admin.map((a) => [a.name, a.ports.first])).toEqual([["ssh", 22], ["webui", 8080]]);
  expect(policy.outbound).toMatchObject({ peers: true, dns: "any" });
  expect(r.policy).toMatch(/- \{name: ssh, port: 22, from: \["192\.168\.0\.2"\]\}  # from \S*classic-qbittorrent\/iptables-save\.txt:10\n/);
  expect(r.closes).toContainEqual({ direction: "inbound", family: 4, protocol: "udp", ports: "1-1023", peers: "anywhere", was: expect.stringMatching(/^open through a stateless rule, from source port 53 \(\S*iptables-save\.txt:15\)$/) });
  expect(r.closes).toContainEqual(expect.objectContaining({ direction: "inbound", family: 6, protocol: "tcp", ports: "1-6880", peers: "anywhere", was: "open: nothing filtered it" }));
  expect(r.opens).toEqual([{ direction: "outbound", family: 4, protocol: "tcp", ports: "53", peers: "anywhere" }]);
  expect(r.notExpressed).toContainEqual(expect.stringMatching(/^inbound IPv4 UDP 1-1023 from anywhere, source port 53 only: a stateless rule/));
});

test("-o writes a policy that swarmgate check accepts, whole", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sg-import-"));
  const out = join(dir, "policy.yaml");
  const r = await cli(["import", ...from("classic-qbittorrent"), "--local", "eth0=192.168.0.50", "-o", out]);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toMatch(new RegExp(`^wrote ${out.replace(/[/.]/g, "\\$&")}\n`));
  expect(readFileSync(out, "utf8")).toMatch(/^# Imported by swarmgate from /);
  expect((await cli(["check", out])).code).toBe(0);
});

test("bad input: exit 2, nothing written", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sg-import-"));
  const r = await cli(["import", "--from", join(dir, "missing.txt"), "-o", join(dir, "p.yaml")]);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain("error[IMPORT_UNREADABLE]");
  expect(existsSync(join(dir, "p.yaml"))).toBe(false);
});
