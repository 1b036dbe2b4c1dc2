// The simulator on its own: packet syntax, the hook order, NAT, jumps, several
// tables on one hook, and the verdicts the policy promises. (Agreement with
// the kernel is test/differential.test.ts.)
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { compile } from "../src/compile/index.js";
import { SwarmgateError } from "../src/errors.js";
import type { Ruleset } from "../src/ir/ruleset.js";
import { formatAddress, parseAddress } from "../src/net/address.js";
import { anyPrefix } from "../src/net/prefix.js";
import { loadPolicy, parsePolicy } from "../src/policy/load.js";
import { compileForSim } from "../src/sim/compiled.js";
import { staticEnvironment } from "../src/sim/environment.js";
import { policyEnvironment } from "../src/sim/policy-environment.js";
import { simulate } from "../src/sim/simulate.js";
import { parsePacket } from "../src/sim/spec.js";

const ROOT = join(import.meta.dirname, "..");
const standalone = loadPolicy(join(ROOT, "examples/standalone.yaml"));
const gateway = loadPolicy(join(ROOT, "examples/gateway.yaml"));
const simStandalone = compileForSim(compile(standalone));
const simGateway = compileForSim(compile(gateway));

function verdict(which: "standalone" | "gateway", spec: string) {
  const policy = which === "standalone" ? standalone : gateway;
  const packet = parsePacket(spec);
  return simulate(which === "standalone" ? simStandalone : simGateway, packet, policyEnvironment(policy, packet), { trace: true });
}

describe("packet syntax", () => {
  test("IPv4, IPv6 in brackets, interfaces, state, flags, uid, ICMP types", () => {
    expect(parsePacket("tcp 203.0.113.5:40000 -> 192.168.153.51:6881 in eth0")).toMatchObject({ family: 4, protocol: "tcp", sport: 40000, dport: 6881, iif: "eth0", state: "new" });
    expect(parsePacket("udp [2001:db8::5]:6881 -> [2001:db8::51]:6881 in eth0 established")).toMatchObject({ family: 6, state: "established", dport: 6881 });
    expect(parsePacket("tcp 10.0.0.1:1 -> 10.0.0.2:2 in lan0 out ppp0 flags syn,ack uid 1000")).toMatchObject({ iif: "lan0", oif: "ppp0", flags: ["syn", "ack"], uid: 1000 });
    expect(parsePacket("icmp 198.51.100.7 -> 192.0.2.51 in eth0")).toMatchObject({ protocol: "icmp", icmpType: 8 });
    expect(parsePacket("icmpv6 2001:db8::7 -> 2001:db8::51 nd-neighbor-solicit in eth0")).toMatchObject({ protocol: "icmpv6", icmpType: 135 });
    expect(parsePacket("tcp 10.0.0.1 -> 10.0.0.2:22 out eth0", { state: "invalid" })).toMatchObject({ state: "invalid", sport: 40000 });
  });

  test.each([
    ["sctp 1.2.3.4:1 -> 5.6.7.8:2 in eth0", "starts with tcp, udp"],
    ["tcp 1.2.3.4:1 5.6.7.8:2 in eth0", "SOURCE -> DESTINATION"],
    ["tcp 1.2.3.4:1 -> 5.6.7.8 in eth0", "needs a port"],
    ["tcp 1.2.3.4:1 -> 2001:db8::1:22 in eth0", "needs a port ([address]:port)"],
    ["tcp 1.2.3.4:1 -> 5.6.7.999:22 in eth0", "is not an IPv4 or IPv6 address"],
    ["tcp 1.2.3.4:1 -> [2001:db8::1]:22 in eth0", "one address family"],
    ["tcp 1.2.3.4:1 -> 5.6.7.8:70000 in eth0", "out of range"],
    ["tcp 1.2.3.4:1 -> 5.6.7.8:22", "say where the packet is"],
    ["tcp 1.2.3.4:1 -> 5.6.7.8:22 in eth0 sideways", 'unknown word "sideways"'],
    ["tcp 1.2.3.4:1 -> 5.6.7.8:22 in eth0 flags syn,boo", 'unknown TCP flag "boo"'],
    ["tcp [::ffff:192.168.1.21]:1 -> [2001:db8::1]:22 in eth0", "IPv4-mapped IPv6 address, which no packet carries on the wire; write 192.168.1.21"],
  ])("%s is rejected", (spec, message) => {
    let error: unknown;
    try { parsePacket(spec); } catch (e) { error = e; }
    expect(error).toBeInstanceOf(SwarmgateError);
    expect((error as SwarmgateError).code).toBe("PACKET_SYNTAX");
    expect((error as SwarmgateError).message).toContain(message);
  });
});

describe("verdicts on the standalone example", () => {
  test.each([
    ["tcp 203.0.113.5:40000 -> 192.168.153.51:6881 in eth0", "accept", "clients[0]"],
    ["udp [2001:db8::5]:40000 -> [2001:db8::51]:6881 in eth0", "accept", "clients[0]"],
    ["tcp 192.168.153.21:40000 -> 192.168.153.51:22 in eth0", "accept", "admin[0]"],
    ["tcp 192.168.153.99:40000 -> 192.168.153.51:5901 in eth0", "accept", "admin[2]"],
    ["tcp 192.168.153.99:40000 -> 192.168.153.51:22 in eth0", "drop", undefined],
    ["tcp 192.168.153.21:40000 -> 192.168.153.51:22 in wlan0", "drop", undefined],
    ["tcp 203.0.113.5:40000 -> 192.168.153.51:22 in eth0 established", "accept", ""],
    ["tcp 203.0.113.5:40000 -> 192.168.153.51:6881 in eth0 invalid", "drop", ""],
    ["tcp 203.0.113.5:40000 -> 192.168.153.51:6881 in eth0 flags ack", "drop", ""],
    ["tcp 203.0.113.5:40000 -> 192.168.153.51:6881 in eth0 flags syn,fin", "drop", ""],
    ["udp 203.0.113.5:53 -> 192.168.153.51:40000 in eth0", "drop", undefined],
    ["icmp 203.0.113.5 -> 192.168.153.51 in eth0", "accept", "icmp"],
    ["icmpv6 2001:db8::5 -> 2001:db8::51 nd-neighbor-solicit in eth0", "accept", ""],
    ["udp 192.168.153.51:40000 -> 195.170.0.1:53 out eth0", "accept", "outbound.dns"],
    ["tcp 192.168.153.51:40000 -> 195.170.0.1:53 out eth0", "accept", "outbound.dns"],
    ["udp 192.168.153.51:40000 -> 8.8.8.8:53 out eth0", "drop", undefined],
    ["tcp 192.168.153.51:40000 -> 203.0.113.80:443 out eth0", "accept", "outbound.trackers[1]"],
    ["tcp 192.168.153.51:40000 -> 203.0.113.80:25 out eth0", "drop", undefined],
    ["tcp 127.0.0.1:40000 -> 127.0.0.1:25 in lo", "accept", ""],
  ])("%s → %s", (spec, expected, path) => {
    const r = verdict("standalone", spec);
    expect(r.verdict).toBe(expected);
    if (path === undefined) expect(r.deciding?.kind).toBe("policy");
    else expect(r.deciding?.rule?.origin.path).toBe(path);
  });
});

describe("verdicts on the gateway example", () => {
  test("a forwarded peer connection is DNATed to its LAN host and forwarded", () => {
    const r = verdict("gateway", "udp 198.51.100.7:6881 -> 203.0.113.1:6895 in ppp0");
    expect(r.verdict).toBe("accept");
    expect(r.path).toBe("forward");
    expect(formatAddress(r.translated!.daddr!)).toBe("192.168.1.3");
    expect(r.translated!.oif).toBe("lan0");
    expect(r.deciding?.rule?.origin.path).toBe("forward[0]");
  });

  test("UDP to a TCP-only forward, and a LAN host reached directly, are dropped", () => {
    expect(verdict("gateway", "udp 198.51.100.7:6881 -> 203.0.113.1:6905 in ppp0").verdict).toBe("drop");
    expect(verdict("gateway", "tcp 198.51.100.7:6881 -> 192.168.1.3:6890 in ppp0 out lan0").verdict).toBe("drop");
  });

  test("the LAN goes out masqueraded", () => {
    const policy = gateway;
    const env = staticEnvironment({ local: [], routes: [{ prefix: policy.gateway!.lanNetwork, iface: "lan0" }, { prefix: anyPrefix(4), iface: "ppp0" }],
      addresses: [{ iface: "ppp0", address: parseAddress("203.0.113.1")! }] });
    const r = simulate(simGateway, parsePacket("tcp 192.168.1.3:40000 -> 198.51.100.7:443 in lan0 out ppp0"), env, { trace: true });
    expect(r.verdict).toBe("accept");
    expect(formatAddress(r.translated!.saddr!)).toBe("203.0.113.1");
  });

  test("admin from the LAN only", () => {
    expect(verdict("gateway", "tcp 192.168.1.50:40000 -> 192.168.1.1:22 in lan0").verdict).toBe("accept");
    expect(verdict("gateway", "tcp 198.51.100.7:40000 -> 203.0.113.1:22 in ppp0").verdict).toBe("drop");
    expect(verdict("gateway", "tcp 192.168.1.50:40000 -> 203.0.113.1:22 in ppp0").verdict).toBe("drop"); // spoofed LAN source on the WAN
  });
});

describe("netfilter semantics beyond what the compiler emits", () => {
  const p = (t: string) => { const a = parseAddress(t); if (!a) throw new Error(t); return a; };
  const rule = (matches: Ruleset["tables"][number]["chains"][number]["rules"][number]["matches"], verdict: Ruleset["tables"][number]["chains"][number]["rules"][number]["verdict"]) =>
    ({ matches, verdict, origin: { path: "", intent: "test" } });
  const env = staticEnvironment({ local: [p("192.0.2.1")], routes: [{ prefix: anyPrefix(4), iface: "eth0" }] });
  const packet = parsePacket("tcp 198.51.100.7:40000 -> 192.0.2.1:22 in eth0");

  test("jump, return and fall-through to the chain policy", () => {
    const ruleset: Ruleset = { tables: [{ family: "inet", name: "t", chains: [
      { name: "input", base: { type: "filter", hook: "input", priority: 0, policy: "drop" }, rules: [
        rule([], { kind: "jump", chain: "sub" }),
        rule([{ kind: "dport", protocol: "tcp", ranges: [{ first: 22, last: 22 }] }], { kind: "accept" }),
      ] },
      { name: "sub", rules: [rule([{ kind: "saddr", family: 4, prefixes: [anyPrefix(4)] }], { kind: "return" }), rule([], { kind: "drop" })] },
    ] }] };
    const r = simulate(compileForSim(ruleset), packet, env, { trace: true });
    expect(r.verdict).toBe("accept");
    expect(r.trace.map((s) => `${s.chain}:${s.action}`)).toEqual(["input:jump", "sub:return", "input:accept"]);
  });

  test("every table's chain on a hook must accept; lower priority runs first", () => {
    const base = (name: string, priority: number, verdict: "accept" | "drop") =>
      ({ family: "inet" as const, name, chains: [{ name: "input", base: { type: "filter" as const, hook: "input" as const, priority, policy: "accept" as const }, rules: [rule([], { kind: verdict })] }] });
    const r = simulate(compileForSim({ tables: [base("late", 10, "drop"), base("early", -10, "accept")] }), packet, env, { trace: true });
    expect(r.verdict).toBe("drop");
    expect(r.trace.map((s) => s.table)).toEqual(["inet early", "inet late"]);
  });
});

test("an IPv4 DNAT never takes an IPv6 packet: the gateway's own IPv6 service on a forwarded port stays its own (found by the audit property)", () => {
  const p = parsePolicy(JSON.stringify({ version: 1, gateway: { wan: "ppp0", lan: "lan0", lan_network: "250.0.0.0/8", lan_network6: "123::/33", masquerade: false },
    forward: [{ host: "250.0.0.2", host6: "123::2", ports: 2624, protocols: ["tcp"] }], admin: [{ name: "admin0", port: "2624-2630", from: ["::/16"] }] }), "cx.json");
  const spec = "tcp [0:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:40000 -> [2001:db8::1]:2624 in ppp0";
  const r = simulate(compileForSim(compile(p)), parsePacket(spec), policyEnvironment(p, parsePacket(spec)));
  expect(r).toMatchObject({ verdict: "accept", path: "input" });
  expect(r.translated).toBeUndefined();
});
