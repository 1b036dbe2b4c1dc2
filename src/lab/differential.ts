// The simulator checked against the kernel: thousands of generated new
// connections (random sources, random and boundary ports, both families, TCP,
// UDP and ICMP; inbound, outbound and forwarded) are sent for real through
// the rehearsal sandbox, each is evaluated by the simulator, and the two
// verdicts must agree on every packet. Delivery is observed with a capture on
// the far side, so a dropped packet costs no timeout.
import { compile } from "../compile/index.js";
import { formatAddress, parseAddress, type Address, type Family } from "../net/address.js";
import { anyPrefix, builtinPrefix, prefixContains, prefixLast, parsePrefix, type Prefix } from "../net/prefix.js";
import type { Ruleset } from "../ir/ruleset.js";
import type { Policy } from "../policy/types.js";
import { compileForSim } from "../sim/compiled.js";
import { staticEnvironment, type Environment } from "../sim/environment.js";
import type { Packet } from "../sim/packet.js";
import { simulate, type SimResult } from "../sim/simulate.js";
import { kernelBackend, type KernelBackendName } from "../backend/registry.js";
import { Agent } from "./agents.js";
import { installCapture, readCapture } from "./capture.js";
import { Sandbox } from "./sandbox.js";
import { planTopology, type LabNode, type Topology } from "./topology.js";

export interface Probe {
  from: string;
  bind: string;
  proto: "tcp" | "udp" | "icmp";
  to: string;
  sport?: number;
  dport?: number;
  /** The packet as the firewall sees it arrive or leave. */
  packet: Packet;
}

export interface Disagreement { probe: Probe; simulated: SimResult; kernel: "delivered" | "not delivered"; where: string[] }
export interface DifferentialResult { sent: number; unsent: number; disagreements: Disagreement[]; milliseconds: number }

/** A small deterministic generator, so that a failing run can be repeated with its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const p = builtinPrefix;
const addrOf = (s: string): Address => parseAddress(s)!;
const fam = (s: string): Family => (s.includes(":") ? 6 : 4);
const nth = (net: Prefix, i: bigint): string => formatAddress({ family: net.family, value: net.network + i });

/** Every port a rule mentions, with its neighbours: where verdicts can change. */
export function boundaryPorts(ruleset: Ruleset): number[] {
  const out = new Set<number>();
  for (const rule of ruleset.tables.flatMap((t) => t.chains.flatMap((c) => c.rules))) {
    for (const m of rule.matches) {
      if (m.kind !== "dport" && m.kind !== "sport") continue;
      for (const r of m.ranges) for (const x of [r.first - 1, r.first, r.last, r.last + 1]) if (x >= 1 && x <= 65535) out.add(x);
    }
  }
  return [...out];
}

const LSD_GROUPS = ["239.192.152.143", "ff15::efc0:988f"];

// Not usable as a host's own unicast address: loopback, multicast, link-local.
const SPECIAL = ["127.0.0.0/8", "224.0.0.0/4", "0.0.0.0/8", "::1/128", "ff00::/8", "fe80::/10"].map((x) => p(x));

/** Addresses at the edges of every prefix the rules mention (second and second-to-last, and just outside). */
export function boundaryAddresses(ruleset: Ruleset, avoid: Set<string>): string[] {
  const out = new Set<string>();
  for (const rule of ruleset.tables.flatMap((t) => t.chains.flatMap((c) => c.rules))) {
    for (const m of rule.matches) {
      if (m.kind !== "saddr" && m.kind !== "daddr") continue;
      for (const pr of m.prefixes) {
        if (pr.length < (pr.family === 4 ? 8 : 16)) continue; // loopback-size blocks and wider: not a source anyone has
        const last = prefixLast(pr);
        const max = pr.family === 4 ? (1n << 32n) - 1n : (1n << 128n) - 1n;
        for (const v of [pr.network + 1n, last - 1n, pr.network - 1n, last + 1n]) {
          if (v <= 0n || v >= max) continue;
          const text = formatAddress({ family: pr.family, value: v });
          if (!avoid.has(text) && !SPECIAL.some((sp) => prefixContains(sp, addrOf(text)))) out.add(text);
        }
      }
    }
  }
  return [...out];
}

const ownAddresses = (n: LabNode): string[] => n.interfaces.flatMap((i) => i.addresses.map((a) => a.split("/")[0]!));

/** The sandbox plus source pools: random and boundary addresses on the "internet" (and LAN) nodes. */
export function differentialTopology(policy: Policy, ruleset: Ruleset, random: () => number): Topology {
  const t = planTopology(policy);
  const used = new Set(t.nodes.flatMap(ownAddresses));
  const firewall = t.nodes.find((n) => n.role === "firewall")!;
  const fwNets = firewall.interfaces.flatMap((i) => i.addresses.flatMap((a) => {
    const r = parsePrefix(a, "interface");
    return r.ok ? [r.prefix] : [];
  }));
  const pool: string[] = [];
  for (let i = 0; i < 12; i++) {
    pool.push(nth(p("198.51.100.0/24"), BigInt(100 + Math.floor(random() * 150))));
    pool.push(nth(p("2001:db8:100::/64"), BigInt(0x1000 + Math.floor(random() * 0xffff))));
  }
  pool.push(...boundaryAddresses(ruleset, used));
  // A host with Local Service Discovery joins its groups, so that LSD announcements can be tried too.
  if (policy.role === "host" && policy.clients.some((c) => c.lsd)) firewall.interfaces[0]!.groups = [...LSD_GROUPS];
  const lan = policy.gateway ? [policy.gateway.lanNetwork, ...(policy.gateway.lanNetwork6 ? [policy.gateway.lanNetwork6] : [p("2001:db8:1::/64")])] : [];
  const internet = t.nodes.find((n) => n.id === "internet")!;
  const lanClient = t.nodes.find((n) => n.id === "lanclient");
  for (const a of new Set(pool)) {
    if (used.has(a)) continue;
    // Not the firewall's own subnets' network or broadcast addresses, which the kernel treats specially.
    if (fwNets.some((n) => n.family === fam(a) && (addrOf(a).value === n.network || addrOf(a).value === prefixLast(n)))) continue;
    const inLan = lan.some((n) => prefixContains(n, addrOf(a)));
    const target = inLan ? lanClient : internet;
    if (!target) continue;
    target.interfaces[0]!.addresses.push(`${a}/${a.includes(":") ? 128 : 32}`);
    used.add(a);
  }
  return t;
}

function environmentOf(policy: Policy, t: Topology): Environment {
  const fw = t.nodes.find((n) => n.role === "firewall")!;
  const local = ownAddresses(fw).map(addrOf);
  const addresses = fw.interfaces.flatMap((i) => i.addresses.map((a) => ({ iface: i.name, address: addrOf(a.split("/")[0]!) })));
  if (policy.gateway) {
    const gw = policy.gateway;
    const lan6 = gw.lanNetwork6 ?? p("2001:db8:1::/64");
    return staticEnvironment({ local, addresses, routes: [
      { prefix: gw.lanNetwork, iface: gw.lan }, { prefix: lan6, iface: gw.lan },
      { prefix: anyPrefix(4), iface: gw.wan }, { prefix: anyPrefix(6), iface: gw.wan },
    ] });
  }
  const iface = fw.interfaces[0]!.name;
  return staticEnvironment({ local, addresses, routes: [{ prefix: anyPrefix(4), iface }, { prefix: anyPrefix(6), iface }] });
}

/** Generates `count` probes with distinct (source, protocol, source port). */
export function generateProbes(policy: Policy, ruleset: Ruleset, t: Topology, count: number, random: () => number): Probe[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const nodes = new Map(t.nodes.map((n) => [n.id, n]));
  const fw = t.nodes.find((n) => n.role === "firewall")!;
  const owned = (id: string, f: Family) => (nodes.get(id) ? ownAddresses(nodes.get(id)!).filter((a) => fam(a) === f) : []);
  const ports = boundaryPorts(ruleset);
  const SPECIAL = [53, 67, 68, 80, 123, 443, 546, 547, 6881];
  const taken = new Set<string>();
  const probes: Probe[] = [];
  let pings = 0;
  const sources = t.nodes.filter((n) => n.role !== "firewall" && n.id !== "scanner" && n.role !== "lan" || n.id === "lanclient").map((n) => n.id);
  const gw = policy.gateway;
  const wanIf = gw?.wan;
  const lanIf = gw?.lan;
  const hostIf = fw.interfaces[0]!.name;
  for (let guard = 0; probes.length < count && guard < count * 20; guard++) {
    const f: Family = random() < 0.5 ? 4 : 6;
    let proto: Probe["proto"] = random() < 0.5 ? "tcp" : "udp";
    if (random() < 0.01 && pings < 6) { proto = "icmp"; pings++; }
    const dport = proto === "icmp" ? undefined : random() < 0.5 && ports.length ? pick(ports) : 1 + Math.floor(random() * 65535);
    const sport = proto === "icmp" ? undefined : random() < 0.1 ? pick(SPECIAL) : 1024 + Math.floor(random() * 64000);
    const dir = random();
    let from: string; let bind: string; let to: string; let iif: string | undefined; let oif: string | undefined;
    if (!gw) {
      if (dir < 0.55) {
        from = pick(sources.filter((s) => owned(s, f).length > 0)); bind = pick(owned(from, f)); to = pick(owned("host", f)); iif = hostIf;
      } else {
        from = "host"; bind = pick(owned("host", f)); to = pick(owned("internet", f)); oif = hostIf;
      }
    } else {
      const internet = owned("internet", f);
      const lanSources = t.nodes.filter((n) => n.role === "lan" || n.role === "admin").map((n) => n.id).filter((id) => owned(id, f).length > 0);
      const lanTargets = t.nodes.filter((n) => n.role === "lan").flatMap((n) => owned(n.id, f));
      const wanAddr = fw.interfaces.find((i) => i.name === wanIf)!.addresses.map((a) => a.split("/")[0]!).filter((a) => fam(a) === f);
      const gwLan = fw.interfaces.find((i) => i.name === lanIf)!.addresses.map((a) => a.split("/")[0]!).filter((a) => fam(a) === f);
      if (dir < 0.35 || (dir < 0.5 && lanTargets.length === 0)) {
        from = "internet"; bind = pick(internet); to = pick(wanAddr); iif = wanIf;
      } else if (dir < 0.5) {
        from = "internet"; bind = pick(internet); to = pick(lanTargets); iif = wanIf; oif = lanIf;
      } else if (dir < 0.75 && lanSources.length) {
        from = pick(lanSources); bind = pick(owned(from, f)); to = pick(internet); iif = lanIf; oif = wanIf;
      } else if (dir < 0.85 && lanSources.length) {
        from = pick(lanSources); bind = pick(owned(from, f)); to = pick(gwLan); iif = lanIf;
      } else {
        from = "gateway"; bind = pick(wanAddr); to = pick(internet); oif = wanIf;
      }
    }
    const key = `${bind}|${proto}|${sport ?? ""}`;
    if (taken.has(key) || bind === to) continue;
    taken.add(key);
    const packet: Packet = {
      family: f, saddr: addrOf(bind), daddr: addrOf(to), state: "new",
      protocol: proto === "icmp" ? (f === 4 ? "icmp" : "icmpv6") : proto,
      ...(iif !== undefined && { iif }), ...(oif !== undefined && { oif }),
      ...(proto === "icmp" ? { icmpType: f === 4 ? 8 : 128 } : { sport, dport }),
    };
    probes.push({ from, bind, proto, to, ...(sport !== undefined && { sport }), ...(dport !== undefined && { dport }), packet });
  }
  if (fw.interfaces[0]!.groups) probes.push(...lsdProbes(t, fw.interfaces[0]!.name, owned, taken, random));
  return probes;
}

/** Local Service Discovery announcements to the groups, from sources inside and outside the LAN, at the port and beside it. */
function lsdProbes(t: Topology, hostIf: string, owned: (id: string, f: Family) => string[], taken: Set<string>, random: () => number): Probe[] {
  const out: Probe[] = [];
  const sources = t.nodes.filter((n) => n.role === "internet" || n.role === "admin").map((n) => n.id);
  LSD_GROUPS.forEach((group, gi) => {
    const f: Family = gi === 0 ? 4 : 6;
    for (const from of sources) {
      owned(from, f).forEach((bind, i) => {
        for (const dport of i < 4 ? [6770, 6771, 6772] : [6771]) {
          const sport = 20000 + Math.floor(random() * 40000);
          if (taken.has(`${bind}|udp|${sport}`)) continue;
          taken.add(`${bind}|udp|${sport}`);
          const packet: Packet = { family: f, iif: hostIf, saddr: addrOf(bind), daddr: addrOf(group), protocol: "udp", sport, dport, state: "new" };
          out.push({ from, bind, proto: "udp", to: group, sport, dport, packet });
        }
      });
    }
  });
  return out;
}

export interface DifferentialOptions {
  backend: KernelBackendName;
  count: number;
  seed: number;
  /** Simulate this ruleset instead of the loaded one: shows that a wrong simulator is caught. */
  simulateWith?: Ruleset;
}

export async function differential(policy: Policy, options: DifferentialOptions): Promise<DifferentialResult> {
  const started = Date.now();
  const random = prng(options.seed);
  const ruleset = compile(policy);
  const topology = differentialTopology(policy, ruleset, random);
  const probes = generateProbes(policy, ruleset, topology, options.count, random);
  const env = environmentOf(policy, topology);
  const sim = compileForSim(options.simulateWith ?? ruleset);
  const owner = new Map<string, string>();
  for (const n of topology.nodes) for (const a of ownAddresses(n)) owner.set(a, n.id);
  const sandbox = await Sandbox.build(topology);
  let fwId = "";
  const agents = new Map<string, Agent>();
  try {
    const fw = topology.nodes.find((n) => n.role === "firewall")!;
    fwId = fw.id;
    // The very plan apply uses, from an empty namespace.
    const backend = await kernelBackend(options.backend);
    for (const { step } of backend.plan(backend.ownedOf(ruleset), backend.empty())) await sandbox.ns(fw.id).execChecked(step.command, step.args, step.input === undefined ? {} : { input: step.input });
    await Promise.all(topology.nodes.map((n) => installCapture(sandbox.ns(n.id), n.role === "firewall" ? "firewall" : "far side")));
    for (const id of new Set(probes.map((x) => x.from))) agents.set(id, new Agent(sandbox.ns(id).name, id));
    await Promise.all([...agents.values()].map((a) => a.ready));
    const sent: boolean[] = [];
    for (let i = 0; i < probes.length; i += 400) {
      const batch = probes.slice(i, i + 400);
      sent.push(...await Promise.all(batch.map((x) => agents.get(x.from)!.fire(x.proto, x.to, x.dport, x.sport, x.bind))));
    }
    await new Promise((r) => setTimeout(r, 600));
    const seen = new Map<string, Set<string>>();
    await Promise.all(topology.nodes.map(async (n) => seen.set(n.id, await readCapture(sandbox.ns(n.id)))));
    const disagreements: Disagreement[] = [];
    probes.forEach((probe, i) => {
      if (!sent[i]) return;
      const simulated = simulate(sim, probe.packet, env, { trace: true });
      const saddr = formatAddress(simulated.translated?.saddr ?? probe.packet.saddr);
      const daddr = formatAddress(simulated.translated?.daddr ?? probe.packet.daddr);
      const key = probe.proto === "icmp" ? `${saddr}|icmp|${probe.to}` : `${saddr}|${probe.proto}|${probe.sport}|${probe.dport}`;
      // A multicast datagram reaches every node's prerouting on the bridge; only the firewall's capture counts.
      const multicast = LSD_GROUPS.includes(probe.to);
      const where = [...seen].filter(([id, keys]) => keys.has(key) && (!multicast || id === fwId)).map(([id]) => id);
      const expected = owner.get(daddr);
      const ok = simulated.verdict === "accept" ? where.length > 0 && (expected === undefined || where.includes(expected)) : where.length === 0;
      if (!ok) disagreements.push({ probe, simulated, kernel: where.length ? "delivered" : "not delivered", where });
    });
    return { sent: sent.filter(Boolean).length, unsent: sent.filter((x) => !x).length, disagreements, milliseconds: Date.now() - started };
  } finally {
    for (const a of agents.values()) a.stop();
    await sandbox.destroy();
  }
}
