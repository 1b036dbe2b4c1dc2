// `swarmgate explain` as a user runs it.
import { expect, test } from "vitest";
import { cli } from "./helpers/cli.js";


test("an accepted packet: verdict, path and the deciding rule with its place in the policy", async () => {
  const r = await cli(["explain", "examples/standalone.yaml", "tcp 203.0.113.5:40000 -> 192.168.153.51:6881 in eth0"]);
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/^ACCEPT: tcp 203\.0\.113\.5:40000 -> 192\.168\.153\.51:6881 in eth0 new \(to this machine\)/);
  expect(r.stdout).toContain('iifname "eth0" tcp dport 6881 counter accept');
  expect(r.stdout).toContain("from the policy: clients[0] at examples/standalone.yaml:6:5");
});

test("a dropped packet over IPv6 names the default drop", async () => {
  const r = await cli(["explain", "examples/standalone.yaml", "tcp [2001:db8::5]:40000 -> [2001:db8::51]:22 in eth0"]);
  expect(r.stdout).toMatch(/^DROP: /);
  expect(r.stdout).toContain("Decided by the policy drop of inet swarmgate/input");
});

test("--json: verdict, the translated destination of a forwarded packet, the trace", async () => {
  const r = await cli(["explain", "examples/gateway.yaml", "udp 198.51.100.7:6881 -> 203.0.113.1:6895 in ppp0", "--json"]);
  const out = JSON.parse(r.stdout);
  expect(out).toMatchObject({ verdict: "accept", path: "forward", translated: { daddr: "192.168.1.3", oif: "lan0" } });
  expect(out.decidedBy).toMatchObject({ path: "forward[0]", location: "examples/gateway.yaml:8:5" });
  expect(out.trace.map((s: { hook: string }) => s.hook)).toEqual(["prerouting", "prerouting", "forward", "postrouting"]);
});

test("--state and --flags", async () => {
  const r = await cli(["explain", "examples/standalone.yaml", "tcp 203.0.113.5:40000 -> 192.168.153.51:22 in eth0", "--state", "established", "--json"]);
  expect(JSON.parse(r.stdout).verdict).toBe("accept");
  const f = await cli(["explain", "examples/standalone.yaml", "tcp 203.0.113.5:40000 -> 192.168.153.51:6881 in eth0", "--flags", "fin,syn", "--json"]);
  expect(JSON.parse(f.stdout)).toMatchObject({ verdict: "drop", decidedBy: { intent: "hardening: drop TCP packets with SYN and FIN together" } });
});

test("a packet that does not parse: one message with a caret, exit 2", async () => {
  const r = await cli(["explain", "examples/standalone.yaml", "tcp 203.0.113.5:40000 -> 192.168.153.51 in eth0"]);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain("error[PACKET_SYNTAX]: 192.168.153.51 needs a port (address:port)");
  expect(r.stderr).toContain("^");
});

test("audit: exact exposure, readiness and lint; exit 0 when ready, 1 when not", async () => {
  const ok = await cli(["audit", "examples/standalone.yaml"]);
  expect(ok.code).toBe(0);
  expect(ok.stdout).toMatch(/^examples\/standalone\.yaml: 22 of 22 readiness checks pass; 0 lint finding\(s\)/);
  expect(ok.stdout).toMatch(/tcp\s+6881\s+from anywhere except 127\.0\.0\.0\/8\s+via eth0\s+IPv4\s+clients\[0\]/);
  expect(ok.stdout).toContain("PASS  HTTPS trackers answer (TCP 443, IPv6)");
  const bad = await cli(["audit", "test/scenarios/named-trackers.yaml", "--json"]);
  expect(bad.code).toBe(1);
  const out = JSON.parse(bad.stdout);
  expect(out.ok).toBe(false);
  expect(out.checks).toContainEqual(expect.objectContaining({ title: "this machine reaches peers over TCP (IPv4)", status: "fail" }));
});
