// The connection-tracking model (sim/conntrack.ts), as the stateful
// differential found the kernel to behave, and what explain makes of a packet
// that names no state.
import { describe, expect, test } from "vitest";
import { parseAddress } from "../src/net/address.js";
import type { TcpFlag } from "../src/ir/match.js";
import { readForeignFiles } from "../src/parse/index.js";
import { compileForSim } from "../src/sim/compiled.js";
import { Conntrack, stateWithoutConnection } from "../src/sim/conntrack.js";
import { staticEnvironment } from "../src/sim/environment.js";
import type { Packet } from "../src/sim/packet.js";
import { simulate } from "../src/sim/simulate.js";
import { parsePacket } from "../src/sim/spec.js";
import { join } from "node:path";
import { ROOT } from "./helpers/cli.js";

const A = parseAddress("198.51.100.7")!;
const B = parseAddress("192.168.0.50")!;
const tcp = (flags: TcpFlag[], out = false): Packet => ({ family: 4, protocol: "tcp", saddr: out ? B : A, daddr: out ? A : B, sport: out ? 6881 : 40000, dport: out ? 40000 : 6881, flags, state: "new", iif: "eth0" });
const udp = (out = false): Packet => ({ family: 4, protocol: "udp", saddr: out ? B : A, daddr: out ? A : B, sport: out ? 6881 : 40000, dport: out ? 40000 : 6881, state: "new", iif: "eth0" });

describe("a packet of no connection", () => {
  test.each([
    [["syn"], "new"], [["ack"], "new"], [["psh", "ack"], "new"], [["syn", "urg"], "new"],
    [["rst"], "invalid"], [["rst", "ack"], "invalid"], [["syn", "ack"], "invalid"], [["fin", "ack"], "invalid"],
    [["fin"], "invalid"], [["syn", "fin"], "invalid"], [[], "invalid"], [["fin", "psh", "urg"], "invalid"], [["urg"], "invalid"],
  ] as [TcpFlag[], string][])("TCP %j is %s (a bare ACK is picked up mid-stream)", (flags, state) => {
    expect(stateWithoutConnection(tcp(flags))).toBe(state);
  });

  test("ICMP: a request is new; a reply, or an error quoting nothing, invalid; neighbour discovery untracked", () => {
    const icmp = (family: 4 | 6, icmpType: number): Packet => ({ family, protocol: family === 4 ? "icmp" : "icmpv6", saddr: family === 4 ? A : parseAddress("2001:db8::7")!, daddr: family === 4 ? B : parseAddress("2001:db8::50")!, icmpType, state: "new", iif: "eth0" });
    expect([8, 0, 3, 11].map((t) => stateWithoutConnection(icmp(4, t)))).toEqual(["new", "invalid", "invalid", "invalid"]);
    expect([128, 129, 1, 2, 135, 136, 143].map((t) => stateWithoutConnection(icmp(6, t)))).toEqual(["new", "invalid", "invalid", "invalid", "untracked", "untracked", "untracked"]);
  });

  test("explain without a state gives the kernel's; a given state is kept", () => {
    expect(parsePacket("tcp 1.2.3.4:1 -> 5.6.7.8:22 in eth0 flags syn,fin").state).toBe("invalid");
    expect(parsePacket("tcp 1.2.3.4:1 -> 5.6.7.8:22 in eth0 flags ack").state).toBe("new");
    expect(parsePacket("tcp 1.2.3.4:1 -> 5.6.7.8:22 in eth0").state).toBe("new");
    expect(parsePacket("icmp 1.2.3.4 -> 5.6.7.8 echo-reply in eth0").state).toBe("invalid");
    expect(parsePacket("tcp 1.2.3.4:1 -> 5.6.7.8:22 in eth0 flags syn,fin new").state).toBe("new");
  });
});

describe("a connection", () => {
  test("TCP handshake: new, then established both ways; an ACK before the SYN+ACK is invalid; RST still established", () => {
    const ct = new Conntrack();
    const step = (p: Packet) => { const t = ct.track(p); t.seen(); t.confirm(); return t.state; };
    expect(step(tcp(["syn"]))).toBe("new");
    expect(ct.track(tcp(["ack"])).state).toBe("invalid");
    expect([tcp(["syn", "ack"], true), tcp(["ack"]), tcp(["psh", "ack"]), tcp(["psh", "ack"], true), tcp(["rst"])].map(step)).toEqual(["established", "established", "established", "established", "established"]);
  });

  test("a first packet that was not let through makes no connection; a reply makes its side established", () => {
    const ct = new Conntrack();
    const first = ct.track(udp());
    first.seen();
    expect(ct.track(udp(true)).state).toBe("new");
    first.confirm();
    const answer = ct.track(udp(true));
    expect(answer.state).toBe("established");
    expect(ct.track(udp()).state).toBe("new");
    answer.seen();
    expect(ct.track(udp()).state).toBe("established");
  });

  test("an ICMP error quoting a packet of a connection is related", () => {
    const ct = new Conntrack();
    ct.track(udp()).confirm();
    const error: Packet = { family: 4, protocol: "icmp", saddr: B, daddr: A, icmpType: 3, state: "new", oif: "eth0" };
    expect(ct.track(error, udp()).state).toBe("related");
    expect(ct.track(error, { ...udp(), sport: 40001 }).state).toBe("invalid");
  });
});

test("a connection NAT redirected: its replies come from where it was sent, and so do ICMP errors about it", () => {
  const ct = new Conntrack();
  // 198.51.100.7:40000 -> 192.168.0.50:2222, redirected to port 22.
  const syn: Packet = { ...tcp(["syn"]), dport: 2222 };
  const t = ct.track(syn);
  t.seen();
  t.confirm({ dport: 22 });
  const answer = (sport: number): Packet => ({ ...tcp(["syn", "ack"], true), sport, dport: 40000 });
  expect(ct.track(answer(2222)).state).toBe("invalid");
  expect(ct.track(answer(22)).state).toBe("established");
  const error: Packet = { family: 4, protocol: "icmp", saddr: B, daddr: A, icmpType: 3, state: "new", oif: "eth0" };
  expect(ct.track(error, { ...syn, dport: 22 }).state).toBe("related");
  expect(ct.track(error, syn).state).toBe("invalid");
});

test("a notrack rule: the simulator says the packet left connection tracking (fail2ban-like's raw table)", () => {
  const dir = join(ROOT, "test/fixtures/foreign/fail2ban-like");
  const sim = compileForSim(readForeignFiles(["ipset.txt", "iptables-save.txt"].map((f) => join(dir, f))).ruleset);
  const env = staticEnvironment({ local: [parseAddress("192.168.0.70")!], routes: [] });
  const to = (dport: number): Packet => ({ family: 4, protocol: "udp", saddr: A, daddr: parseAddress("192.168.0.70")!, sport: 40000, dport, state: "new", iif: "eth0" });
  expect(simulate(sim, to(6881), env, { assume: () => true }).untracked).toBe(true);
  expect(simulate(sim, to(6882), env, { assume: () => true }).untracked).toBeUndefined();
});
