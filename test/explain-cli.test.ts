// `swarmgate explain` as a user runs it.
import { describe, expect, test } from "vitest";
import { SwarmgateError } from "../src/errors.js";
import { parsePacket } from "../src/sim/spec.js";
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
  // With no state given, a SYN+FIN is what the kernel's conntrack makes of it: invalid (test/stateful-differential.test.ts).
  const f = await cli(["explain", "examples/standalone.yaml", "tcp 203.0.113.5:40000 -> 192.168.153.51:6881 in eth0", "--flags", "fin,syn", "--json"]);
  expect(JSON.parse(f.stdout)).toMatchObject({ verdict: "drop", decidedBy: { intent: "connection tracking: drop invalid packets" } });
  const n = await cli(["explain", "examples/standalone.yaml", "tcp 203.0.113.5:40000 -> 192.168.153.51:6881 in eth0", "--flags", "fin,syn", "--state", "new", "--json"]);
  expect(JSON.parse(n.stdout)).toMatchObject({ verdict: "drop", decidedBy: { intent: "hardening: drop TCP packets with SYN and FIN together" } });
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
  expect(ok.stdout).toMatch(/tcp\s+6881\s+from anywhere except 127\.0\.0\.0\/8, 192\.168\.153\.51\s+via eth0\s+IPv4\s+clients\[0\]/);
  expect(ok.stdout).toContain("PASS  HTTPS trackers answer (TCP 443, IPv6)");
  const bad = await cli(["audit", "test/scenarios/named-trackers.yaml", "--json"]);
  expect(bad.code).toBe(1);
  const out = JSON.parse(bad.stdout);
  expect(out.ok).toBe(false);
  expect(out.checks).toContainEqual(expect.objectContaining({ title: "this machine reaches peers over TCP (IPv4)", status: "fail" }));
});

// Issue 8, defect 25: nonsense is rejected with PACKET_SYNTAX and the column of the offending word.
const P = "tcp 1.2.3.4:1 -> 5.6.7.8:2 in eth0";
const columnOf = (spec: string, word: string, nth = 1) => {
  let at = -1;
  for (let i = 0; i < nth; i++) at = spec.indexOf(word, at + 1);
  return at + 1;
};

describe("packet syntax: contradictions and repeats", () => {
  test.each([
    ["icmp 1.2.3.4:80 -> 5.6.7.8:22 in eth0", "80", 1],
    ["icmp 1.2.3.4 -> [2001:db8::1]:22 in eth0", "22", 1],
    ["icmpv6 1.2.3.4 -> 5.6.7.8 in eth0", "icmpv6", 1],
    ["icmp 2001:db8::1 -> 2001:db8::2 in eth0", "icmp", 1],
    [`${P} uid 1e30`, "1e30", 1],
    [`${P} uid 4294967296`, "4294967296", 1],
    [`${P} uid -1`, "-1", 1],
    ["udp 1.2.3.4:1 -> 5.6.7.8:2 in eth0 flags syn", "flags", 1],
    [`${P} in eth1`, "in", 2],
    [`${P} out eth1 out eth2`, "out", 2],
    [`${P} new established`, "established", 1],
    [`${P} flags syn flags ack`, "flags", 2],
    [`${P} uid 1 uid 2`, "uid", 2],
    ["icmp 1.2.3.4 -> 5.6.7.8 in eth0 echo-request echo-reply", "echo-reply", 1],
  ])("%s: PACKET_SYNTAX at the offending word", (spec, word, nth) => {
    let error: unknown;
    try { parsePacket(spec); } catch (e) { error = e; }
    expect(error).toBeInstanceOf(SwarmgateError);
    expect((error as SwarmgateError).diagnostics[0]).toMatchObject({ code: "PACKET_SYNTAX", column: columnOf(spec, word, nth) });
  });

  test("what stays valid: ping picks the family, the largest uid, flags on TCP", () => {
    expect(parsePacket("ping 2001:db8::1 -> 2001:db8::2 in eth0")).toMatchObject({ protocol: "icmpv6", icmpType: 128 });
    expect(parsePacket("icmpv6 2001:db8::1 -> 2001:db8::2 in eth0")).toMatchObject({ protocol: "icmpv6" });
    expect(parsePacket(`${P} uid 4294967295 flags syn`)).toMatchObject({ uid: 4294967295, flags: ["syn"] });
  });

  test("an option and the same word in the packet is an error, not an override", () => {
    for (const [spec, overrides, word] of [
      [`${P} established`, { state: "new" }, "established"],
      [`${P} flags syn`, { flags: "ack" }, "flags"],
      [`${P} uid 5`, { uid: 5 }, "uid"],
    ] as const) {
      expect(() => parsePacket(spec, overrides)).toThrow(expect.objectContaining({ diagnostics: [expect.objectContaining({ code: "PACKET_SYNTAX", column: columnOf(spec, word) })] }));
    }
    expect(() => parsePacket("udp 1.2.3.4:1 -> 5.6.7.8:2 in eth0", { flags: "syn" })).toThrow(expect.objectContaining({ code: "PACKET_SYNTAX" }));
    expect(() => parsePacket(P, { state: "sideways" })).toThrow(expect.objectContaining({ code: "PACKET_SYNTAX" }));
  });

  test("from the command line: exit 2 and the column in JSON", async () => {
    const spec = `${P} new`;
    const r = await cli(["explain", "examples/standalone.yaml", spec, "--state", "established", "--json"]);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout).errors[0]).toMatchObject({ code: "PACKET_SYNTAX", column: columnOf(spec, "new") });
    const u = await cli(["explain", "examples/standalone.yaml", `${P} uid 1e30`, "--json"]);
    expect(u.code).toBe(2);
    expect(JSON.parse(u.stdout).errors[0]).toMatchObject({ code: "PACKET_SYNTAX", column: columnOf(`${P} uid 1e30`, "1e30") });
  });
});
