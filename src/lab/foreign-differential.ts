// The simulator against the kernel on a ruleset another tool wrote: the saved
// output (iptables-save, ip6tables-save, ipset save) is restored with the
// real tools into a throwaway "host" namespace, a "peer" namespace holds
// every source address that matters (the edges of each prefix the rules name,
// and a few others), and new connections go both ways: peer → host (input)
// and host → peer (output). What the kernel delivered is read from capture
// sets behind every filter; the simulator reads the same files through the
// parsers and must agree on every packet. A verdict that depends on a
// condition no single packet decides is a disagreement unless the caller says
// such rules are there on purpose, and then the kernel's must be one of the
// two.
import { readFileSync } from "node:fs";
import { formatAddress, parseAddress, type Family } from "../net/address.js";
import { parsePrefix, prefixLast } from "../net/prefix.js";
import { readForeignFiles, formatOf } from "../parse/index.js";
import { simulateAll, type BranchedResult } from "../sim/branches.js";
import { compileForSim } from "../sim/compiled.js";
import { staticEnvironment } from "../sim/environment.js";
import type { Packet } from "../sim/packet.js";
import { Agent } from "./agents.js";
import { installCapture, readCapture } from "./capture.js";
import { boundaryAddresses, boundaryPorts, prng } from "./differential.js";
import { Sandbox } from "./sandbox.js";
import type { Topology } from "./topology.js";

export interface ForeignHost {
  iface: string;
  /** The host's addresses with their prefix length: "192.168.0.50/24". */
  v4: string;
  v6: string;
}

export interface ForeignOptions {
  files: string[];
  host: ForeignHost;
  count: number;
  seed: number;
  /** Rules with conditions no single packet decides are there on purpose: a "depends" verdict must then cover the kernel's. */
  dependsAllowed?: boolean;
  /** Simulate these files instead of the loaded ones: shows that a misread rule is caught. */
  simulateWith?: string[];
}

export interface ForeignProbe { from: "peer" | "host"; bind: string; to: string; proto: "tcp" | "udp"; sport: number; dport: number; packet: Packet }
export interface ForeignDisagreement { probe: ForeignProbe; simulated: BranchedResult; kernel: "delivered" | "not delivered" }
export interface ForeignResult { sent: number; unsent: number; depends: number; disagreements: ForeignDisagreement[] }

const SPECIAL_SPORTS = [53, 80, 123, 443, 1023, 1024, 6881, 65535];
// Sources no host can have (loopback, multicast, unspecified, link-local, broadcast).
const UNUSABLE = /^(0\.|127\.|22[4-9]\.|23\d\.|24\d\.|25[0-5]\.|::1$|::$|ff|fe80:)/;

export async function foreignDifferential(options: ForeignOptions): Promise<ForeignResult> {
  const random = prng(options.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const foreign = readForeignFiles(options.files);
  const hostAddr = { 4: options.host.v4.split("/")[0]!, 6: options.host.v6.split("/")[0]! };
  const avoid = new Set(Object.values(hostAddr));
  // The host's network and broadcast addresses are no peer's.
  for (const spec of [options.host.v4, options.host.v6]) {
    const net = parsePrefix(spec, "interface");
    if (net.ok) for (const v of [net.prefix.network, prefixLast(net.prefix)]) avoid.add(formatAddress({ family: net.prefix.family, value: v }));
  }
  const pool = boundaryAddresses(foreign.ruleset, avoid).filter((a) => !UNUSABLE.test(a));
  // A few sources the rules do not name, so that "anyone else" is asked too.
  for (const extra of ["198.51.100.7", "203.0.113.9", "2001:db8:ffff::7", "2001:db8:ffff::9"]) if (!avoid.has(extra)) pool.push(extra);
  const peers = [...new Set(pool)].slice(0, 60);
  const topology: Topology = {
    nodes: [
      { id: "host", role: "firewall", forwarding: false, interfaces: [{ name: options.host.iface, segment: "wire", addresses: [options.host.v4, options.host.v6] }],
        routes: [{ family: 4, to: "default", dev: options.host.iface }, { family: 6, to: "default", dev: options.host.iface }] },
      { id: "peer", role: "internet", forwarding: false, interfaces: [{ name: "eth0", segment: "wire", addresses: peers.map((a) => `${a}/${a.includes(":") ? 128 : 32}`) }],
        routes: [{ family: 4, to: "default", dev: "eth0" }, { family: 6, to: "default", dev: "eth0" }] },
    ],
    book: { firewall: hostAddr, peer: hostAddr, stranger: hostAddr, scanner: hostAddr, owner: new Map(), lanHosts: [] },
  };
  const probes = makeProbes(options, peers, hostAddr, boundaryPorts(foreign.ruleset), pick, random);
  const env = staticEnvironment({ local: [parseAddress(hostAddr[4])!, parseAddress(hostAddr[6])!], routes: [], addresses: [4, 6].map((f) => ({ iface: options.host.iface, address: parseAddress(hostAddr[f as Family])! })) });
  const sim = compileForSim(options.simulateWith ? readForeignFiles(options.simulateWith).ruleset : foreign.ruleset);
  const sandbox = await Sandbox.build(topology);
  const agents: Agent[] = [];
  try {
    const host = sandbox.ns("host");
    await restore(host, options.files);
    await installCapture(host, "firewall");
    await installCapture(sandbox.ns("peer"), "far side");
    const byNode = { peer: new Agent(sandbox.ns("peer").name, "peer"), host: new Agent(host.name, "host") };
    agents.push(byNode.peer, byNode.host);
    await Promise.all(agents.map((a) => a.ready));
    const sent: boolean[] = [];
    for (let i = 0; i < probes.length; i += 400) {
      sent.push(...await Promise.all(probes.slice(i, i + 400).map((x) => byNode[x.from].fire(x.proto, x.to, x.dport, x.sport, x.bind))));
    }
    await new Promise((r) => setTimeout(r, 600));
    const seen = { host: await readCapture(host), peer: await readCapture(sandbox.ns("peer")) };
    const disagreements: ForeignDisagreement[] = [];
    let depends = 0;
    probes.forEach((probe, i) => {
      if (!sent[i]) return;
      const simulated = simulateAll(sim, probe.packet, env, { trace: true });
      const at = probe.from === "peer" ? seen.host : seen.peer;
      const delivered = at.has(`${probe.bind}|${probe.proto}|${probe.sport}|${probe.dport}`);
      const verdicts = new Set(simulated.branches.map((b) => b.result.verdict === "accept"));
      if (simulated.verdict === "depends") depends++;
      const ok = simulated.verdict === "depends" ? options.dependsAllowed === true && verdicts.has(delivered) : (simulated.verdict === "accept") === delivered;
      if (!ok) disagreements.push({ probe, simulated, kernel: delivered ? "delivered" : "not delivered" });
    });
    return { sent: sent.filter(Boolean).length, unsent: sent.filter((x) => !x).length, depends, disagreements };
  } finally {
    for (const a of agents) a.stop();
    await sandbox.destroy();
  }
}

/** The saved rulesets back into the kernel with the tools that saved them; sets first, which rules refer to. */
async function restore(ns: ReturnType<Sandbox["ns"]>, files: string[]): Promise<void> {
  const texts = files.map((f) => ({ f, text: readFileSync(f, "utf8") }));
  for (const t of texts) if (formatOf(t.text) === "ipset") await ns.execChecked("ipset", ["restore"], { input: t.text });
  for (const t of texts) {
    if (formatOf(t.text) !== "iptables-save") continue;
    const six = /^# Generated by ip6tables-save/m.test(t.text);
    await ns.execChecked(six ? "ip6tables-restore" : "iptables-restore", ["-c"], { input: t.text });
  }
}

function makeProbes(o: ForeignOptions, peers: string[], hostAddr: Record<Family, string>, ports: number[], pick: <T>(xs: readonly T[]) => T, random: () => number): ForeignProbe[] {
  const probes: ForeignProbe[] = [];
  const taken = new Set<string>();
  for (let guard = 0; probes.length < o.count && guard < o.count * 20; guard++) {
    const f: Family = random() < 0.6 ? 4 : 6;
    const mine = peers.filter((a) => a.includes(":") === (f === 6));
    if (mine.length === 0) continue;
    const proto = random() < 0.5 ? "tcp" : "udp";
    const dport = random() < 0.5 && ports.length ? pick(ports) : 1 + Math.floor(random() * 65535);
    const sport = random() < 0.2 ? pick(SPECIAL_SPORTS) : random() < 0.5 && ports.length ? pick(ports) : 1024 + Math.floor(random() * 64000);
    const inbound = random() < 0.6;
    const peer = pick(mine);
    const [bind, to] = inbound ? [peer, hostAddr[f]] : [hostAddr[f], peer];
    const key = `${bind}|${proto}|${sport}`;
    if (taken.has(key)) continue;
    taken.add(key);
    const packet: Packet = {
      family: f, saddr: parseAddress(bind)!, daddr: parseAddress(to)!, state: "new", protocol: proto, sport, dport,
      ...(inbound ? { iif: o.host.iface } : { oif: o.host.iface }),
    };
    probes.push({ from: inbound ? "peer" : "host", bind, to, proto, sport, dport, packet });
  }
  return probes;
}

export const describeProbe = (p: ForeignProbe): string => `${p.proto} ${p.bind}:${p.sport} -> ${p.to}:${p.dport} ${p.from === "peer" ? `in ${p.packet.iif}` : `out ${p.packet.oif}`}`;
