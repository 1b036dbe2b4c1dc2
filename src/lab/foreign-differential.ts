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
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseNftJson } from "../parse/nft-json.js";
import { parseIptablesSave } from "../parse/iptables-save.js";
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

/** "peer2": on the host's second interface, so that rules naming an interface are asked both ways. */
export interface ForeignProbe { from: "peer" | "peer2" | "host"; bind: string; to: string; proto: "tcp" | "udp"; sport: number; dport: number; packet: Packet }
export interface ForeignDisagreement { probe: ForeignProbe; simulated: BranchedResult; kernel: "delivered" | "not delivered" }
/** `established`: answers sent to the UDP probes that got through, each compared too. */
export interface ForeignResult { sent: number; unsent: number; depends: number; established: number; disagreements: ForeignDisagreement[] }

const SPECIAL_SPORTS = [53, 80, 123, 443, 1023, 1024, 6881, 65535];
// Sources no host can have (loopback, multicast, unspecified, link-local, broadcast).
const UNUSABLE = /^(0\.|127\.|22[4-9]\.|23\d\.|24\d\.|25[0-5]\.|::|ff|fe80:)/;

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
  // An IPv6 address with an all-zero interface identifier is its /64's subnet-router anycast address (RFC 4291, 2.6.1).
  const anycast = (a: string) => a.includes(":") && (parseAddress(a)!.value & 0xffffffffffffffffn) === 0n;
  const pool = boundaryAddresses(foreign.ruleset, avoid).filter((a) => !UNUSABLE.test(a) && !anycast(a));
  // A few sources the rules do not name, so that "anyone else" is asked too.
  for (const extra of ["198.51.100.7", "203.0.113.9", "2001:db8:ffff::7", "2001:db8:ffff::9"]) if (!avoid.has(extra)) pool.push(extra);
  const peers = [...new Set(pool)].slice(0, 60);
  // A second interface with its own small network: another name for rules to match or not.
  const second = options.host.iface === "eth1" ? "eth9" : "eth1";
  const peers2 = [...Array(6).keys()].flatMap((i) => [`10.250.0.${i + 2}`, `fd00:250::${i + 2}`]);
  const topology: Topology = {
    nodes: [
      { id: "host", role: "firewall", forwarding: false,
        interfaces: [{ name: options.host.iface, segment: "wire", addresses: [options.host.v4, options.host.v6] }, { name: second, segment: "wire2", addresses: ["10.250.0.1/24", "fd00:250::1/64"] }],
        routes: [{ family: 4, to: "default", dev: options.host.iface }, { family: 6, to: "default", dev: options.host.iface }] },
      { id: "peer", role: "internet", forwarding: false, interfaces: [{ name: "eth0", segment: "wire", addresses: peers.map((a) => `${a}/${a.includes(":") ? 128 : 32}`) }],
        routes: [{ family: 4, to: "default", dev: "eth0" }, { family: 6, to: "default", dev: "eth0" }] },
      { id: "peer2", role: "internet", forwarding: false, interfaces: [{ name: "eth0", segment: "wire2", addresses: peers2.map((a) => `${a}/${a.includes(":") ? 64 : 24}`) }],
        routes: [{ family: 4, to: "default", dev: "eth0" }, { family: 6, to: "default", dev: "eth0" }] },
    ],
    book: { firewall: hostAddr, peer: hostAddr, stranger: hostAddr, scanner: hostAddr, owner: new Map(), lanHosts: [] },
  };
  const probes = makeProbes(options, peers, { iface: second, peers: peers2 }, hostAddr, boundaryPorts(foreign.ruleset), pick, random);
  const env = staticEnvironment({ local: [parseAddress(hostAddr[4])!, parseAddress(hostAddr[6])!], routes: [], addresses: [4, 6].map((f) => ({ iface: options.host.iface, address: parseAddress(hostAddr[f as Family])! })) });
  const sim = compileForSim(options.simulateWith ? readForeignFiles(options.simulateWith).ruleset : foreign.ruleset);
  const sandbox = await Sandbox.build(topology);
  const agents: Agent[] = [];
  try {
    const host = sandbox.ns("host");
    await staticNeighbours(host, options.host.iface, [hostAddr[4], hostAddr[6]], sandbox.ns("peer"), "eth0", peers);
    await staticNeighbours(host, second, ["10.250.0.1", "fd00:250::1", hostAddr[4], hostAddr[6]], sandbox.ns("peer2"), "eth0", peers2);
    await restore(host, options.files);
    await installCapture(host, "firewall");
    await installCapture(sandbox.ns("peer"), "far side");
    await installCapture(sandbox.ns("peer2"), "far side");
    const byNode = { peer: new Agent(sandbox.ns("peer").name, "peer"), peer2: new Agent(sandbox.ns("peer2").name, "peer2"), host: new Agent(host.name, "host") };
    agents.push(byNode.peer, byNode.peer2, byNode.host);
    await Promise.all(agents.map((a) => a.ready));
    const sent: boolean[] = [];
    for (let i = 0; i < probes.length; i += 400) {
      sent.push(...await Promise.all(probes.slice(i, i + 400).map((x) => byNode[x.from].fire(x.proto, x.to, x.dport, x.sport, x.bind))));
    }
    await new Promise((r) => setTimeout(r, 600));
    const seen = { host: await readCapture(host), peer: await readCapture(sandbox.ns("peer")), peer2: await readCapture(sandbox.ns("peer2")) };
    /** Where a probe's packet is captured if it gets through: the receiving side. */
    const receiver = (p: ForeignProbe): "host" | "peer" | "peer2" => (p.from !== "host" ? "host" : peers2.includes(p.to) ? "peer2" : "peer");
    const disagreements: ForeignDisagreement[] = [];
    let depends = 0;
    let established = 0;
    probes.forEach((probe, i) => {
      if (!sent[i]) return;
      // The probes come in bursts that exceed some rate limits: there either verdict is the kernel's to give.
      const simulated = simulateAll(sim, probe.packet, env, { trace: true, limits: "branch" });
      const at = seen[receiver(probe)];
      const delivered = at.has(`${probe.bind}|${probe.proto}|${probe.sport}|${probe.dport}`);
      const verdicts = new Set(simulated.branches.map((b) => b.result.verdict === "accept"));
      const onlyLimits = simulated.conditions.every((x) => x.rule === undefined);
      if (simulated.verdict === "depends" && !onlyLimits) depends++;
      const ok = simulated.verdict === "depends" ? (options.dependsAllowed === true || onlyLimits) && verdicts.has(delivered) : (simulated.verdict === "accept") === delivered;
      if (!ok) disagreements.push({ probe, simulated, kernel: delivered ? "delivered" : "not delivered" });
    });
    // The answers to the UDP datagrams that got through: the same flow the other way, which connection
    // tracking now knows (established), sent by the side that received them.
    const answered = probes.filter((p, i) => sent[i] && p.proto === "udp" && seen[receiver(p)].has(`${p.bind}|udp|${p.sport}|${p.dport}`));
    const replies: ForeignProbe[] = answered.map((p) => ({
      from: receiver(p), bind: p.to, to: p.bind, proto: "udp", sport: p.dport, dport: p.sport,
      packet: {
        family: p.packet.family, protocol: "udp", state: "established", saddr: p.packet.daddr, daddr: p.packet.saddr, sport: p.dport, dport: p.sport,
        ...(p.from !== "host" ? { oif: p.packet.iif! } : { iif: p.packet.oif! }),
      },
    }));
    await Promise.all([installReplyCapture(host, "firewall"), installReplyCapture(sandbox.ns("peer"), "far side"), installReplyCapture(sandbox.ns("peer2"), "far side")]);
    const replySent = await Promise.all(replies.map((x) => byNode[x.from].fire("udp", x.to, x.dport, x.sport, x.bind)));
    await new Promise((r) => setTimeout(r, 400));
    const got = { host: await readReplies(host), peer: await readReplies(sandbox.ns("peer")), peer2: await readReplies(sandbox.ns("peer2")) };
    replies.forEach((reply, i) => {
      if (!replySent[i]) return;
      const simulated = simulateAll(sim, reply.packet, env, { trace: true, limits: "branch" });
      const delivered = got[receiver(reply)].has(`${reply.bind}|${reply.sport}|${reply.dport}`);
      const verdicts = new Set(simulated.branches.map((b) => b.result.verdict === "accept"));
      const ok = simulated.verdict === "depends" ? verdicts.has(delivered) : (simulated.verdict === "accept") === delivered;
      if (!ok) disagreements.push({ probe: reply, simulated, kernel: delivered ? "delivered" : "not delivered" });
    });
    established = replySent.filter(Boolean).length;
    return { sent: sent.filter(Boolean).length, unsent: sent.filter((x) => !x).length, depends, established, disagreements };
  } finally {
    for (const a of agents) a.stop();
    await sandbox.destroy();
  }
}

/**
 * Link-layer addresses written down both ways, so that a ruleset that drops
 * neighbour discovery (a defect some have) still lets the verdicts be seen:
 * the comparison is of filtering, not of whether IPv6 works at all.
 */
export async function staticNeighbours(a: ReturnType<Sandbox["ns"]>, aIf: string, aAddrs: string[], b: ReturnType<Sandbox["ns"]>, bIf: string, bAddrs: string[]): Promise<void> {
  const mac = async (ns: ReturnType<Sandbox["ns"]>, dev: string) => (JSON.parse((await ns.execChecked("ip", ["-j", "link", "show", dev])).stdout) as { address: string }[])[0]!.address;
  const [aMac, bMac] = [await mac(a, aIf), await mac(b, bIf)];
  const lines = (addrs: string[], lladdr: string, dev: string) => addrs.map((x) => `neigh replace ${x} lladdr ${lladdr} dev ${dev} nud permanent`).join("\n") + "\n";
  await a.execChecked("ip", ["-batch", "-"], { input: lines(bAddrs, bMac, aIf) });
  await b.execChecked("ip", ["-batch", "-"], { input: lines(aAddrs, aMac, bIf) });
}


/** Every UDP packet that gets through, whatever its connection's state (the first capture counts new ones only). */
async function installReplyCapture(ns: ReturnType<Sandbox["ns"]>, where: "firewall" | "far side"): Promise<void> {
  const hook = where === "firewall" ? "type filter hook input priority 500" : "type filter hook prerouting priority -150";
  await ns.execChecked("nft", ["-f", "-"], { input: `table inet sgreply {
	set r4 { type ipv4_addr . inet_service . inet_service; size 65535; flags dynamic; }
	set r6 { type ipv6_addr . inet_service . inet_service; size 65535; flags dynamic; }
	chain seen {
		${hook}; policy accept;
		meta nfproto ipv4 meta l4proto udp update @r4 { ip saddr . udp sport . udp dport }
		meta nfproto ipv6 meta l4proto udp update @r6 { ip6 saddr . udp sport . udp dport }
	}
}
` });
}

/** Keys "saddr|sport|dport" of the UDP packets the reply capture saw. */
async function readReplies(ns: ReturnType<Sandbox["ns"]>): Promise<Set<string>> {
  const doc = JSON.parse((await ns.execChecked("nft", ["-j", "list", "table", "inet", "sgreply"])).stdout) as { nftables: { set?: { elem?: unknown[] } }[] };
  const keys = new Set<string>();
  for (const item of doc.nftables) for (const e of item.set?.elem ?? []) {
    const value = (e as { elem?: { val: unknown } }).elem?.val ?? e;
    const parts = ((value as { concat?: unknown[] }).concat ?? []).map(String);
    keys.add(parts.join("|"));
  }
  return keys;
}

/** The saved rulesets back into the kernel with the tools that saved them; sets first, which rules refer to. */
export async function restore(ns: ReturnType<Sandbox["ns"]>, files: string[]): Promise<void> {
  const texts = files.map((f) => ({ f, text: readFileSync(f, "utf8") }));
  for (const t of texts) if (formatOf(t.text) === "ipset") await ns.execChecked("ipset", ["restore"], { input: t.text });
  // nft -j output loads back with nft -j -f (libnftables-json(5): objects without a command are added), from a
  // file: nft opens /dev/stdin for JSON, which a socket (node's stdio) cannot be. Tables iptables-nft wrote come
  // from iptables-restore below instead (their xt stubs have no arguments to load).
  for (const t of texts) {
    if (formatOf(t.text) !== "nft-json") continue;
    const { iptablesNft } = parseNftJson(t.text, t.f);
    const doc = JSON.parse(t.text) as { nftables: Record<string, { family?: string; table?: string; name?: string }>[] };
    const native = doc.nftables.filter((item) => {
      const [kind, body] = Object.entries(item)[0] ?? [];
      if (!body || kind === "metainfo") return true;
      return !iptablesNft.includes(`${body.family} ${kind === "table" ? body.name : body.table}`);
    });
    const dir = mkdtempSync(join(tmpdir(), "sg-nftjson-"));
    try {
      writeFileSync(join(dir, "ruleset.json"), JSON.stringify({ nftables: native }));
      await ns.execChecked("nft", ["-j", "-f", join(dir, "ruleset.json")]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  for (const t of texts) {
    if (formatOf(t.text) !== "iptables-save") continue;
    const six = /^# Generated by ip6tables-save/m.test(t.text);
    // A table iptables-save could not show (nft made it) is printed as an empty stand-in: restoring that would replace the real one.
    const { incompatible } = parseIptablesSave(t.text, t.f);
    const names = incompatible.map((k) => k.split(" ")[1]!);
    const kept = t.text.replace(/^\*([a-z]+)\n[\s\S]*?^COMMIT\n/gm, (block, name: string) => (names.includes(name) ? "" : block));
    if (/^\*/m.test(kept)) await ns.execChecked(six ? "ip6tables-restore" : "iptables-restore", ["-c"], { input: kept });
  }
}

function makeProbes(o: ForeignOptions, peers: string[], second: { iface: string; peers: string[] }, hostAddr: Record<Family, string>, ports: number[], pick: <T>(xs: readonly T[]) => T, random: () => number): ForeignProbe[] {
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
    // One in five on the second interface, from (or to) its own network.
    const onSecond = random() < 0.2;
    const peer = onSecond ? pick(second.peers.filter((a) => a.includes(":") === (f === 6))) : pick(mine);
    const iface = onSecond ? second.iface : o.host.iface;
    const [bind, to] = inbound ? [peer, hostAddr[f]] : [hostAddr[f], peer];
    // One source port per address, and never the reverse of an earlier probe: conntrack would take it for a reply.
    const key = `${bind}|${proto}|${sport}`;
    if (taken.has(key) || taken.has(`${proto}|${to}|${dport}|${bind}|${sport}`)) continue;
    taken.add(key);
    taken.add(`${proto}|${bind}|${sport}|${to}|${dport}`);
    const packet: Packet = {
      family: f, saddr: parseAddress(bind)!, daddr: parseAddress(to)!, state: "new", protocol: proto, sport, dport,
      ...(inbound ? { iif: iface } : { oif: iface }),
    };
    probes.push({ from: inbound ? (onSecond ? "peer2" : "peer") : "host", bind, to, proto, sport, dport, packet });
  }
  return probes;
}

const endpoint = (a: string, port: number) => (a.includes(":") ? `[${a}]:${port}` : `${a}:${port}`);
export const describeProbe = (p: ForeignProbe): string => `${p.proto} ${endpoint(p.bind, p.sport)} -> ${endpoint(p.to, p.dport)} ${p.from === "peer" ? `in ${p.packet.iif}` : `out ${p.packet.oif}`}`;
