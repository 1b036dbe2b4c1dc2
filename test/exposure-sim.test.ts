// The exposure report equals the simulator (what `explain` says) on every
// packet: for generated host and gateway policies, random packets and the
// packets at every edge (each prefix's and port range's bounds, the host's
// own addresses, 0.0.0.0, loopback, multicast) are inside an exposure entry
// exactly when the simulator accepts them (issue 8, defect 26).
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { exposure, OTHER_INTERFACE, type Exposure } from "../src/analyze/exposure.js";
import { policySpace } from "../src/analyze/policy-space.js";
import { compile } from "../src/compile/index.js";
import type { Ruleset } from "../src/ir/ruleset.js";
import { formatAddress, parseAddress, type Address, type Family } from "../src/net/address.js";
import { builtinPrefix, parsePrefix, prefixContains, prefixLast } from "../src/net/prefix.js";
import { parsePolicy } from "../src/policy/load.js";
import type { Policy } from "../src/policy/types.js";
import { compileForSim, type CompiledRuleset } from "../src/sim/compiled.js";
import type { Packet } from "../src/sim/packet.js";
import { policyEnvironment } from "../src/sim/policy-environment.js";
import { simulate } from "../src/sim/simulate.js";
import { gatewayPolicy, hostPolicyEdges } from "./helpers/policies.js";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { readForeignFiles, readForeignTexts } from "../src/parse/index.js";
import { simulateAll } from "../src/sim/branches.js";
import { staticEnvironment } from "../src/sim/environment.js";

const A = (s: string): Address => parseAddress(s)!;
const MAX: Record<Family, bigint> = { 4: (1n << 32n) - 1n, 6: (1n << 128n) - 1n };
const FIXED = ["0.0.0.0", "255.255.255.255", "127.0.0.1", "224.0.0.1", "239.192.152.143", "10.0.0.1", "198.51.100.7",
  "::", "::1", "ff02::1", "ff15::efc0:988f", "fe80::1", "2001:db8::5"].map(A);
const OTHER_NAME = "zz9"; // an interface no policy names: the report's "(other)"

/** Addresses where a verdict can change: every prefix's edges and their neighbours, own addresses, special addresses. */
function edgeAddresses(ruleset: Ruleset, own: Address[], rnd: () => number): Address[] {
  const out = [...FIXED, ...own];
  for (const t of ruleset.tables) for (const c of t.chains) for (const r of c.rules) for (const m of r.matches) {
    if (m.kind !== "saddr" && m.kind !== "daddr") continue;
    for (const p of m.prefixes) for (const v of [p.network - 1n, p.network, prefixLast(p), prefixLast(p) + 1n]) {
      if (v >= 0n && v <= MAX[p.family]) out.push({ family: p.family, value: v });
    }
  }
  for (let i = 0; i < 6; i++) out.push({ family: 4, value: BigInt(Math.floor(rnd() * 2 ** 32)) }, { family: 6, value: BigInt(Math.floor(rnd() * 2 ** 53)) << 75n });
  return out;
}

function edgePorts(ruleset: Ruleset): number[] {
  const out = new Set([1, 22, 53, 80, 1023, 1024, 6771, 6881, 40000, 65535]);
  for (const t of ruleset.tables) for (const c of t.chains) for (const r of c.rules) for (const m of r.matches) {
    if (m.kind === "dport" || m.kind === "sport") for (const x of m.ranges) for (const v of [x.first - 1, x.first, x.last, x.last + 1]) if (v >= 1 && v <= 65535) out.add(v);
  }
  return [...out];
}

const inRanges = (text: string, n: number) => text.split(",").some((r) => { const [a, b] = r.split("-").map(Number); return n >= a! && n <= (b ?? a!); });
const inPrefixes = (list: string[], a: Address) => list.some((t) => { const p = parsePrefix(t); return p.ok && prefixContains(p.prefix, a); });
const inSet = (peers: string[], except: string[] | undefined, a: Address) => (peers[0] === "anywhere" ? !(except && inPrefixes(except, a)) : inPrefixes(peers, a));
function inTarget(target: string, a: Address): boolean {
  if (target === "anywhere") return true;
  if (target.startsWith("anywhere except ")) return !inPrefixes(target.slice(16).split(", "), a);
  return inPrefixes(target.split(", "), a);
}

/** The entries a packet falls in, for a direction; `peer` is the far side (source in, destination out). */
function covering(list: Exposure[], p: Packet, direction: Exposure["direction"], iface: string, peer: Address): Exposure[] {
  const proto = p.protocol === "icmpv6" ? "icmp" : p.protocol;
  return list.filter((e) => e.direction === direction && (e.family === p.family || e.families === "IPv4+IPv6") && e.protocol === proto
    && e.interface === iface && (proto === "icmp" || inRanges(e.ports, p.dport!)) && (!e.sourcePorts || inRanges(e.sourcePorts, p.sport!))
    && inSet(e.peers, e.except, peer));
}

interface World { policy: Policy; report: Exposure[]; sim: CompiledRuleset; local: Record<Family, Address>; ifaces: string[] }

function judge(w: World, p: Packet) {
  return simulate(w.sim, p, policyEnvironment(w.policy, p));
}

function checkInbound(w: World, p: Packet, name: string): void {
  const iface = w.ifaces.includes(name) ? name : OTHER_INTERFACE;
  const r = judge(w, p);
  const what = `${p.protocol} ${formatAddress(p.saddr)}:${p.sport} -> ${formatAddress(p.daddr)}:${p.dport} in ${name}`;
  const direct = covering(w.report, p, "inbound", iface, p.saddr);
  const dnat = covering(w.report, p, "forwarded", iface, p.saddr).filter((e) => w.policy.forward.some((f) => formatAddress(f.host) === e.target));
  const to = r.translated?.daddr;
  if (r.verdict === "accept" && to && r.path === "forward") expect(dnat.map((e) => e.target), what).toContain(formatAddress(to));
  else expect(direct.length > 0, `${what}: simulator ${r.verdict}`).toBe(r.verdict === "accept");
  if (r.verdict !== "accept") expect(dnat, what).toEqual([]);
}

function checkOutbound(w: World, p: Packet, name: string): void {
  const iface = w.ifaces.includes(name) ? name : OTHER_INTERFACE;
  const r = judge(w, p);
  const hit = covering(w.report, p, "outbound", iface, p.daddr);
  expect(hit.length > 0, `${p.protocol} -> ${formatAddress(p.daddr)}:${p.dport} out ${name}: simulator ${r.verdict}`).toBe(r.verdict === "accept");
}

function checkForwarded(w: World, p: Packet, name: string): void {
  const env = policyEnvironment(w.policy, p);
  const oif = env.route(p.daddr);
  if (oif === undefined || oif === name || env.isLocal(p.daddr)) return;
  const q = { ...p, oif };
  const r = judge(w, q);
  const iface = w.ifaces.includes(name) ? name : OTHER_INTERFACE;
  const hit = covering(w.report, q, "forwarded", iface, p.saddr).filter((e) => e.target && inTarget(e.target, p.daddr));
  expect(hit.length > 0, `${p.protocol} ${formatAddress(p.saddr)} -> ${formatAddress(p.daddr)}:${p.dport} in ${name} out ${oif}: simulator ${r.verdict}`).toBe(r.verdict === "accept");
}

function checkPolicy(policy: Policy, seed: number): void {
  const ruleset = compile(policy);
  const { space, env } = policySpace(policy);
  const w: World = { policy, report: exposure(ruleset, env, space), sim: compileForSim(ruleset), local: space.local, ifaces: space.interfaces };
  let s = seed >>> 0;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 4294967296);
  const addrs = edgeAddresses(ruleset, space.own ?? [], rnd);
  const ports = edgePorts(ruleset);
  const names = [...space.interfaces, OTHER_NAME];
  for (let i = 0; i < 400; i++) {
    const peer = addrs[Math.floor(rnd() * addrs.length)]!;
    const protocol = (["tcp", "udp", "icmp"] as const)[Math.floor(rnd() * 3)]!;
    const name = names[Math.floor(rnd() * names.length)]!;
    const ported = protocol !== "icmp";
    const base = {
      family: peer.family, state: "new" as const, protocol: ported ? protocol : peer.family === 4 ? "icmp" as const : "icmpv6" as const,
      ...(ported ? { dport: ports[Math.floor(rnd() * ports.length)]!, sport: rnd() < 0.5 ? 40000 : ports[Math.floor(rnd() * ports.length)]! } : { icmpType: peer.family === 4 ? 8 : 128 }),
    };
    const local = w.local[peer.family];
    checkInbound(w, { ...base, iif: name, saddr: peer, daddr: local }, name);
    checkOutbound(w, { ...base, oif: name, saddr: local, daddr: peer }, name);
    if (space.forwards) {
      const src = addrs[Math.floor(rnd() * addrs.length)]!;
      if (src.family === peer.family) checkForwarded(w, { ...base, iif: name, saddr: src, daddr: peer }, name);
    }
  }
}

const RUNS = Number(process.env.PROPERTY_RUNS ?? 40);

describe("exposure equals the simulator", () => {
  test.each([["host", hostPolicyEdges], ["gateway", gatewayPolicy]] as const)("generated %s policies, random and edge packets", (_role, arb) => {
    fc.assert(fc.property(arb, fc.integer(), (generated, seed) => checkPolicy(parsePolicy(JSON.stringify(generated), "generated.json"), seed)), { numRuns: RUNS });
  }, 180_000);

  test.each([["0.0.0.0", "10.0.0.1"], ["192.168.1.5", "192.168.1.5"], ["192.168.1.5/24", "192.168.1.9"]])("issue 26: host address %s, ping and a client port from %s", (address, from) => {
    const policy = parsePolicy(JSON.stringify({ version: 1, host: { interface: "eth0", addresses: [address] }, clients: [{ name: "qb", ports: 6881 }], icmp: "allow" }), "issue-26.json");
    checkPolicy(policy, 1);
    const { space, env } = policySpace(policy);
    const report = exposure(compile(policy), env, space);
    const sim = compileForSim(compile(policy));
    const w: World = { policy, report, sim, local: space.local, ifaces: space.interfaces };
    for (const p of [
      { family: 4 as const, iif: "eth0", saddr: A(from), daddr: space.local[4], protocol: "icmp" as const, icmpType: 8, state: "new" as const },
      { family: 4 as const, iif: "eth0", saddr: A(from), daddr: space.local[4], protocol: "tcp" as const, sport: 40000, dport: 6881, state: "new" as const },
    ]) checkInbound(w, p, "eth0");
  });
});

// Rulesets other tools wrote (test/fixtures/foreign): the same equality over every table they
// hold, with conditions no packet decides: a packet the simulator accepts only some ways is inside
// an entry marked "depends", one it accepts every way inside an unmarked one.
describe("exposure equals the simulator on rulesets other tools wrote", () => {
  const FOREIGN = join(import.meta.dirname, "fixtures/foreign");
  test.each([
    ["classic-qbittorrent", "192.168.0.50"], ["fail2ban-like", "192.168.0.70"], ["ufw", "192.168.1.80"],
    ["nft-handwritten", "198.51.100.3"], ["swarmgate-standalone-nft", "192.168.153.51"],
  ])("%s", (name, v4) => {
    const files = ["ipset.txt", "nft.json", "iptables-save.txt", "ip6tables-save.txt"].map((f) => join(FOREIGN, name, f)).filter(existsSync);
    const ruleset = readForeignFiles(files).ruleset;
    const local: Record<Family, Address> = { 4: A(v4), 6: A("2001:db8::99") };
    const env = staticEnvironment({ local: [local[4], local[6]], routes: [], addresses: [{ iface: "eth0", address: local[4] }, { iface: "eth0", address: local[6] }] });
    const report = exposure(ruleset, env, { interfaces: ["eth0"], local, forwards: false, routes: [] });
    const sim = compileForSim(ruleset);
    let s = 20261202;
    const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 4294967296);
    const addrs = edgeAddresses(ruleset, [local[4], local[6]], rnd).filter((a) => a.value !== local[a.family].value);
    const ports = edgePorts(ruleset);
    for (let i = 0; i < 600; i++) {
      const peer = addrs[Math.floor(rnd() * addrs.length)]!;
      const protocol = (["tcp", "udp"] as const)[Math.floor(rnd() * 2)]!;
      const name = rnd() < 0.8 ? "eth0" : OTHER_NAME;
      const iface = name === "eth0" ? "eth0" : OTHER_INTERFACE;
      const base = { family: peer.family, state: "new" as const, protocol, dport: ports[Math.floor(rnd() * ports.length)]!, sport: rnd() < 0.5 ? 40000 : ports[Math.floor(rnd() * ports.length)]! };
      for (const [direction, p, far] of [
        ["inbound", { ...base, iif: name, saddr: peer, daddr: local[peer.family] }, peer],
        ["outbound", { ...base, oif: name, saddr: local[peer.family], daddr: peer }, peer],
      ] as const) {
        const r = simulateAll(sim, p, env);
        const hit = covering(report, p, direction, iface, far);
        const what = `${direction} ${protocol} ${formatAddress(p.saddr)}:${p.sport} -> ${formatAddress(p.daddr)}:${p.dport} via ${name}: simulator ${r.verdict}`;
        expect(hit.length > 0, what).toBe(r.verdict === "accept" || r.verdict === "depends");
        if (hit.length) expect(hit.some((e) => e.depends !== undefined), what).toBe(r.verdict === "depends");
      }
    }
  });
});

// The exposure judges each destination-port cell over the rules its packets can reach, and a DNAT to
// another port sends them on to the rules of that port: a chain behind a jump on another port must
// not cut this one's space (at 5,000 rules that made doctor --exposure take 15 s), and the rules after
// the DNAT must (else a forward accept from some sources to the new port is judged at one address).
describe("exposure equals the simulator: chains behind jumps on other ports, and a DNAT to another port", () => {
  const v4 = `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i eth0 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.5:8080
-A PREROUTING -i eth0 -p udp -m udp --dport 5000:5010 -j DNAT --to-destination 10.0.0.6
-A POSTROUTING -o eth0 -j MASQUERADE
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:svcA - [0:0]
:svcB - [0:0]
:shared - [0:0]
:shared2 - [0:0]
:fwd - [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p tcp -m tcp --dport 10000 -j svcA
-A INPUT -p tcp -m tcp --dport 10001 -j svcB
-A INPUT -p udp -j shared
-A INPUT -s 192.0.2.200/32 -p tcp -j ACCEPT
-A svcA -s 198.51.100.0/24 -j ACCEPT
-A svcA -s 203.0.113.7/32 -j shared2
-A svcB -s 192.0.2.0/25 -g svcA
-A svcB -s 192.0.2.128/25 -j RETURN
-A svcB -j DROP
-A shared -s 8.8.8.8/32 -p udp -m udp --sport 53 -j ACCEPT
-A shared2 -p tcp -m tcp --sport 1024:65535 -j ACCEPT
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -s 1.2.3.0/24 -d 10.0.0.5/32 -i eth0 -o eth1 -p tcp -m tcp --dport 8080 -j ACCEPT
-A FORWARD -d 10.0.0.6/32 -i eth0 -o eth1 -p udp -j fwd
-A fwd -s 5.6.7.0/24 -j ACCEPT
COMMIT
`;
  const v6 = `*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:svc6 - [0:0]
-A INPUT -p tcp -m tcp --dport 10000 -j svc6
-A INPUT -p udp -m udp --dport 10000:10001 -j svc6
-A svc6 -s 2001:db8:1::/48 -j ACCEPT
-A svc6 -s 2001:db8:2::/64 -p udp -j ACCEPT
COMMIT
`;
  test("inbound and forwarded, random and edge packets, both families", () => {
    const ruleset = readForeignTexts([{ file: "v4.txt", text: v4 }, { file: "v6.txt", text: v6 }]).ruleset;
    const local: Record<Family, Address> = { 4: A("192.0.2.1"), 6: A("2001:db8::1") };
    const env = staticEnvironment({
      local: [local[4], local[6], A("10.0.0.1")],
      routes: [{ prefix: builtinPrefix("10.0.0.0/24"), iface: "eth1" }],
      addresses: [{ iface: "eth0", address: local[4] }, { iface: "eth0", address: local[6] }, { iface: "eth1", address: A("10.0.0.1") }],
    });
    const report = exposure(ruleset, env, { interfaces: ["eth0", "eth1"], local, forwards: true, routes: [builtinPrefix("10.0.0.0/24")], own: [local[4], local[6], A("10.0.0.1")] });
    const sim = compileForSim(ruleset);
    let s = 20261203;
    const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 4294967296);
    const addrs = [...edgeAddresses(ruleset, [local[4], local[6]], rnd), A("10.0.0.5"), A("10.0.0.6"), A("10.0.0.9")];
    const ports = [...edgePorts(ruleset), 8080, 5005];
    // Chosen packets first (each opening, from inside and just outside its sources), then random ones.
    const chosen: [string, "tcp" | "udp", number, number, string][] = [
      ["1.2.3.4", "tcp", 40000, 80, "10.0.0.9"], ["1.2.4.4", "tcp", 40000, 80, "10.0.0.9"], ["1.2.3.4", "tcp", 40000, 8080, "10.0.0.5"],
      ["5.6.7.8", "udp", 40000, 5005, "10.0.0.6"], ["5.6.8.8", "udp", 40000, 5005, "10.0.0.6"], ["198.51.100.9", "tcp", 40000, 10000, "10.0.0.9"],
      ["203.0.113.7", "tcp", 2000, 10000, "10.0.0.9"], ["203.0.113.7", "tcp", 1000, 10000, "10.0.0.9"], ["192.0.2.5", "tcp", 40000, 10001, "10.0.0.9"],
      ["192.0.2.200", "tcp", 40000, 10001, "10.0.0.9"], ["192.0.2.201", "tcp", 40000, 10001, "10.0.0.9"], ["8.8.8.8", "udp", 53, 7000, "10.0.0.9"],
      ["2001:db8:1::5", "tcp", 40000, 10000, "2001:db8::9"], ["2001:db8:2::5", "udp", 40000, 10001, "2001:db8::9"], ["2001:db8:2::5", "tcp", 40000, 10000, "2001:db8::9"],
    ];
    let accepted = 0;
    for (let i = 0; i < 3000 + chosen.length; i++) {
      const c = chosen[i];
      const peer = c ? A(c[0]) : addrs[Math.floor(rnd() * addrs.length)]!;
      const protocol = c ? c[1] : (["tcp", "udp"] as const)[Math.floor(rnd() * 2)]!;
      const base = c ? { family: peer.family, state: "new" as const, protocol, sport: c[2], dport: c[3] }
        : { family: peer.family, state: "new" as const, protocol, dport: ports[Math.floor(rnd() * ports.length)]!, sport: rnd() < 0.5 ? 40000 : ports[Math.floor(rnd() * ports.length)]! };
      // Inbound: to this machine's address (a DNAT sends it on, reported as forwarded to the new address).
      const inbound = { ...base, iif: "eth0", saddr: peer, daddr: local[peer.family] };
      const r = simulate(sim, inbound, env);
      const what = `${protocol} ${formatAddress(peer)}:${base.sport} -> ${formatAddress(inbound.daddr)}:${base.dport}: simulator ${r.verdict}`;
      const to = r.translated?.daddr;
      if (r.verdict === "accept") accepted++;
      if (r.verdict === "accept" && to && r.path === "forward") {
        expect(covering(report, inbound, "forwarded", "eth0", peer).map((e) => e.target), what).toContain(formatAddress(to));
      } else {
        expect(covering(report, inbound, "inbound", "eth0", peer).length > 0, what).toBe(r.verdict === "accept");
      }
      // Forwarded: to an address routed out of eth1.
      const dest = c ? A(c[4]) : addrs[Math.floor(rnd() * addrs.length)]!;
      if (dest.family !== peer.family || env.route(dest) !== "eth1" || env.isLocal(dest)) continue;
      const through = { ...base, iif: "eth0", oif: "eth1", saddr: peer, daddr: dest };
      const f = simulate(sim, through, env);
      const hit = covering(report, through, "forwarded", "eth0", peer).filter((e) => e.target && inTarget(e.target, dest));
      expect(hit.length > 0, `forwarded ${what.replace(formatAddress(inbound.daddr), formatAddress(dest))} (${f.verdict})`).toBe(f.verdict === "accept");
    }
    expect(accepted).toBeGreaterThan(20); // the packets reach the openings, not only the default drop
  });
});
