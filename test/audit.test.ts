// The audit: exact exposure, readiness checks and lint — on the examples, on
// rulesets with planted faults, and, as a property, against the policy's own
// meaning for generated policies.
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { audit } from "../src/analyze/audit.js";
import { OTHER_INTERFACE, type Exposure } from "../src/analyze/exposure.js";
import { exposureLines } from "../src/cli/audit.js";
import { compile } from "../src/compile/index.js";
import type { Rule, Ruleset } from "../src/ir/ruleset.js";
import { forwardFor, inbound, outbound, type Proto } from "../src/lab/oracle.js";
import { formatAddress, parseAddress, type Address, type Family } from "../src/net/address.js";
import { parsePrefix, prefixContains, prefixLast } from "../src/net/prefix.js";
import { loadPolicy, parsePolicy } from "../src/policy/load.js";
import type { Policy } from "../src/policy/types.js";
import { gatewayPolicy, hostPolicy } from "./helpers/policies.js";

const ROOT = join(import.meta.dirname, "..");
const load = (f: string) => loadPolicy(join(ROOT, f));

function withRules(r: Ruleset, chain: string, fn: (rules: Rule[]) => Rule[]): Ruleset {
  return { tables: r.tables.map((t) => ({ ...t, chains: t.chains.map((c) => (c.name === chain ? { ...c, rules: fn([...c.rules]) } : c)) })) };
}

describe("audit of the examples", () => {
  test("standalone: every check passes, nothing to lint, and the exposure is what the policy says", () => {
    const a = audit(load("examples/standalone.yaml"));
    expect(a.checks.filter((c) => c.status !== "pass")).toEqual([]);
    expect(a.findings).toEqual([]);
    expect(a.ok).toBe(true);
    expect(a.exposure).toContainEqual(expect.objectContaining({ direction: "inbound", protocol: "tcp", ports: "22", peers: ["192.168.153.21"], interface: "eth0", families: "IPv4" }));
    expect(a.exposure).toContainEqual(expect.objectContaining({ direction: "inbound", protocol: "udp", ports: "6881", peers: ["anywhere"], except: ["::1", "2001:db8::51"], families: "IPv6" }));
    expect(a.exposure.filter((e) => e.direction === "inbound" && e.protocol !== "icmp").map((e) => e.ports).sort()).toEqual(["22", "5900", "5901", "6881", "6881", "6881", "6881"]);
  });

  test("gateway: forwards reach their hosts, the LAN goes out, admin from the LAN only", () => {
    const a = audit(load("examples/gateway.yaml"));
    expect(a.ok).toBe(true);
    expect(a.exposure).toContainEqual(expect.objectContaining({ direction: "forwarded", protocol: "tcp", ports: "6900-6909", target: "192.168.1.4", interface: "ppp0" }));
    expect(a.exposure).toContainEqual(expect.objectContaining({ direction: "forwarded", protocol: "tcp", ports: "1-65535", peers: ["192.168.1.0/24"], interface: "lan0", target: "anywhere" }));
    expect(a.exposure.some((e) => e.direction === "forwarded" && e.protocol === "udp" && e.ports.includes("6900"))).toBe(false);
    expect(a.checks.find((c) => c.title.startsWith("admin ssh (TCP 22) is open to 192.168.1.0/24 over IPv4"))?.status).toBe("pass");
  });

  test("a policy without tracker ports below 1024 fails HTTP and HTTPS tracker readiness", () => {
    const a = audit(load("test/scenarios/tcp-only-client.yaml"));
    expect(a.ok).toBe(false);
    expect(a.checks.filter((c) => c.status === "fail").map((c) => c.title)).toEqual(expect.arrayContaining(["HTTP trackers answer (TCP 80, IPv4)", "HTTPS trackers answer (TCP 443, IPv6)"]));
    expect(a.checks.find((c) => c.title === "peers reach client rtorrent over UDP (IPv4)")?.status).toBe("skip");
  });
});

describe("lint and checks catch planted faults", () => {
  const policy = load("examples/standalone.yaml");
  const base = compile(policy);

  test("a rule shadowed by an earlier one", () => {
    const r = withRules(base, "input", (rules) => {
      const ssh = rules.find((x) => x.origin.path === "admin[0]")!;
      const wide = { ...ssh, matches: ssh.matches.filter((m) => m.kind !== "saddr"), origin: { path: "", intent: "planted: SSH from anywhere" } };
      return [...rules.slice(0, 3), wide, ...rules.slice(3)];
    });
    const a = audit(policy, r);
    expect(a.findings).toContainEqual(expect.objectContaining({ kind: "shadowed", message: expect.stringContaining("planted: SSH from anywhere") }));
    expect(a.checks.find((c) => c.title.startsWith("admin ssh (TCP 22) is open to 192.168.153.21 over IPv4"))).toMatchObject({ status: "fail", detail: expect.stringContaining("open to") });
  });

  test("a stateless accept by source port", () => {
    const r = withRules(base, "input", (rules) => [...rules.slice(0, 3),
      { matches: [{ kind: "sport", protocol: "udp", ranges: [{ first: 53, last: 53 }] }], verdict: { kind: "accept" }, origin: { path: "", intent: "planted" } }, ...rules.slice(3)]);
    const a = audit(policy, r);
    expect(a.ok).toBe(false);
    expect(a.findings).toContainEqual(expect.objectContaining({ kind: "stateless-accept" }));
    expect(a.exposure).toContainEqual(expect.objectContaining({ direction: "inbound", protocol: "udp", ports: "1-65535", sourcePorts: "53" }));
  });

  test("a client port open on IPv4 only", () => {
    const r = withRules(base, "input", (rules) => rules.map((x) => (x.origin.path === "clients[0]" ? { ...x, matches: [{ kind: "family", family: 4 }, ...x.matches] } : x)));
    const a = audit(policy, r);
    expect(a.findings).toContainEqual(expect.objectContaining({ kind: "family-asymmetry", message: "TCP 6881 on eth0 is open from anywhere over IPv4 but not over IPv6" }));
    expect(a.checks.find((c) => c.title === "peers reach client qbittorrent over TCP (IPv6)")?.status).toBe("fail");
  });
});

// ---- property: the exposure report equals the openings the policy names ----

function parsePorts(text: string): [number, number] {
  const [a, b] = text.split("-").map(Number);
  return [a!, b ?? a!];
}

function inSet(e: Exposure, addr: Address): boolean {
  const hit = (list: string[]) => list.some((t) => { const p = parsePrefix(t); return p.ok && prefixContains(p.prefix, addr); });
  return e.peers[0] === "anywhere" ? !(e.except && hit(e.except)) : hit(e.peers);
}

function exposed(list: Exposure[], q: { direction: Exposure["direction"]; family: Family; proto: Proto; iface: string; addr: Address; port?: number; target?: string }): boolean {
  return list.some((e) => e.direction === q.direction && (e.family === q.family || e.families === "IPv4+IPv6") && e.protocol === q.proto
    && e.interface === q.iface && (q.proto === "icmp" || (() => { const [a, b] = parsePorts(e.ports); return q.port! >= a && q.port! <= b; })())
    && (q.target === undefined || e.target === q.target) && inSet(e, q.addr));
}

/** Points where the policy's meaning can change: range edges and a few addresses of every prefix. */
function samplePoints(p: Policy) {
  const ports = new Set<number>([1, 1023, 1024, 53, 80, 443, 6969, 65535]);
  const addrs: Address[] = ["198.51.100.7", "2001:db8:100::7", "10.0.0.1", "2001:db8:ffff::9"].map((x) => parseAddress(x)!);
  const ranges = [...p.clients.map((c) => c.ports), ...p.admin.map((a) => a.ports), ...p.forward.map((f) => f.ports), ...p.outbound.trackers.flatMap((t) => t.ports)];
  for (const r of ranges) for (const x of [r.first - 1, r.first, r.last, r.last + 1]) if (x >= 1 && x <= 65535) ports.add(x);
  const prefixes = [...p.admin.flatMap((a) => a.from), ...p.outbound.trackers.flatMap((t) => t.to)];
  for (const pr of prefixes) for (const v of [pr.network, prefixLast(pr), pr.network - 1n, prefixLast(pr) + 1n]) {
    const max = pr.family === 4 ? (1n << 32n) - 1n : (1n << 128n) - 1n;
    if (v > 0n && v < max) addrs.push({ family: pr.family, value: v });
  }
  if (p.outbound.dns !== "any") addrs.push(...p.outbound.dns);
  const loopback = [parsePrefix("127.0.0.0/8"), parsePrefix("::1")].map((x) => (x.ok ? x.prefix : undefined)!);
  return { ports: [...ports], addrs: addrs.filter((a) => !loopback.some((l) => prefixContains(l, a))) };
}

function checkAgainstPolicy(p: Policy): void {
  const a = audit(p);
  const { ports, addrs } = samplePoints(p);
  const iface = p.gateway ? p.gateway.wan : p.host?.interface ?? OTHER_INTERFACE;
  for (const addr of addrs) {
    const f = addr.family;
    for (const proto of ["tcp", "udp", "icmp"] as Proto[]) {
      for (const port of proto === "icmp" ? [undefined] : ports) {
        const src = formatAddress(addr);
        const where = `${proto} ${port} ${src} (IPv${f})`;
        const fwd = p.gateway && f === 4 ? forwardFor(p, proto, port) : undefined;
        // On a gateway the WAN also drops LAN sources (anti-spoofing).
        const spoofed = p.gateway !== undefined && [p.gateway.lanNetwork, ...(p.gateway.lanNetwork6 ? [p.gateway.lanNetwork6] : [])].some((n) => prefixContains(n, addr));
        if (fwd) {
          expect(exposed(a.exposure, { direction: "forwarded", family: 4, proto, iface, addr, port, target: formatAddress(fwd.host) }), `forwarded ${where}`).toBe(!spoofed);
          continue;
        }
        const wantIn = inbound(p, proto, src, port).open && !spoofed;
        expect(exposed(a.exposure, { direction: "inbound", family: f, proto, iface, addr, port }), `inbound ${where}`).toBe(wantIn);
        const wantOut = outbound(p, proto, src, port).open;
        expect(exposed(a.exposure, { direction: "outbound", family: f, proto, iface, addr, port }), `outbound ${where}`).toBe(wantOut);
      }
    }
  }
}

test.each([["host", hostPolicy], ["gateway", gatewayPolicy]] as const)("exposure equals the openings of generated %s policies", (_role, arb) => {
  fc.assert(fc.property(arb, (generated) => checkAgainstPolicy(parsePolicy(JSON.stringify(generated), "generated.json"))), { numRuns: Number(process.env.PROPERTY_RUNS ?? 40) });
}, 120_000);

test("the exposure table: a long cell overflows its own line instead of padding every line, and 200,000 rows print (spread into Math.max, ~130,000 overflowed the stack)", () => {
  const row = (peers: string[], ports: string): Exposure => ({ direction: "inbound", family: 4, families: "IPv4", protocol: "tcp", ports, peers, interface: "eth0", paths: ["admin[0]"], intents: [] });
  const long = Array.from({ length: 40 }, (_, i) => `10.0.${i}.0/24`);
  const lines = exposureLines([row(["192.0.2.7"], "22"), row(long, "5900"), ...Array.from({ length: 200_000 }, (_, i) => row(["192.0.2.8"], `${10000 + (i % 50000)}`))]);
  const table = lines.filter((l) => l.startsWith("  tcp"));
  expect(table).toHaveLength(200_002);
  expect(table[0]).toBe("  tcp  22     from 192.0.2.7  via eth0  IPv4    admin[0]"); // the empty column is the target (forwards only)
  expect(table[1]).toContain(`from ${long.join(", ")}  via eth0`);
  expect(Math.max(...table.slice(2, 100).map((l) => l.length))).toBe(table[0]!.length);
});
