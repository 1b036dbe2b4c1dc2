// The simulator against the kernel past the first packet: conversations
// (lab/conversations.ts) crafted with scapy (craft.py) go between a host
// namespace that holds the ruleset and peers on two of its interfaces, one
// step per round, IPv4 and IPv6. Each packet carries a tag (IPv4
// identification, IPv6 flow label); the receiving side records the tags that
// got through, and the host records the connection-tracking state the kernel
// gave each packet before any filter. The simulator predicts both, with no
// help from the kernel: the state from the connection-tracking model
// (sim/conntrack.ts) fed with its own earlier verdicts, the verdict from the
// ruleset. Every packet where either differs is a disagreement.
import { formatAddress, parseAddress, type Family } from "../net/address.js";
import { parsePrefix, prefixLast } from "../net/prefix.js";
import type { CtState, TcpFlag } from "../ir/match.js";
import type { Ruleset } from "../ir/ruleset.js";
import { kernelBackend, type KernelBackendName } from "../backend/registry.js";
import { readForeignFiles } from "../parse/index.js";
import { simulateAll, type BranchedResult } from "../sim/branches.js";
import { compileForSim, type CompiledRuleset } from "../sim/compiled.js";
import { Conntrack } from "../sim/conntrack.js";
import { staticEnvironment, type Environment } from "../sim/environment.js";
import type { Packet } from "../sim/packet.js";
import type { Netns } from "../system/netns.js";
import { answeredFrom, neighbourDiscovery, pingConversation, strayPacket, tcpConversation, udpConversation, type Choice, type Conversation, type Ends, type Sender } from "./conversations.js";
import { Crafter, type CraftSpec } from "./crafter.js";
import { boundaryAddresses, boundaryPorts, prng } from "./differential.js";
import { restore, staticNeighbours, type ForeignHost } from "./foreign-differential.js";
import { installObservers, MARK, readObserved, type Observed } from "./observe.js";
import { Sandbox } from "./sandbox.js";
import type { Topology } from "./topology.js";

export interface StatefulOptions {
  /** What the kernel gets: saved rulesets (restored with their own tools), or swarmgate's IR through a backend's plan. */
  load: { files: string[] } | { ruleset: Ruleset; backend: KernelBackendName };
  host: ForeignHost;
  conversations: number;
  seed: number;
  /** Rules with conditions no single packet decides are there on purpose: a "depends" verdict must then cover the kernel's. */
  dependsAllowed?: boolean;
  /** Simulate this ruleset instead of the loaded one: shows that a wrong simulator is caught. */
  simulateWith?: Ruleset;
}

export interface StatefulProbe { conversation: Conversation; step: number; packet: Packet }
export interface StatefulDisagreement { probe: StatefulProbe; about: "state" | "verdict"; simulator: string; kernel: string; simulated?: BranchedResult }
export interface StatefulResult {
  packets: number;
  unsent: number;
  /** How many packets the model gave each state: every state doctor reasons about should be there. */
  states: Record<CtState, number>;
  depends: number;
  disagreements: StatefulDisagreement[];
}

const SPECIAL_SPORTS = [53, 80, 123, 443, 1024, 6881, 65535];
const UNUSABLE = /^(0\.|127\.|22[4-9]\.|23\d\.|24\d\.|25[0-5]\.|::|ff|fe80:)/;
const PEERS2 = [...Array(4).keys()].flatMap((i) => [`10.250.0.${i + 2}`, `fd00:250::${i + 2}`]);

export async function statefulDifferential(o: StatefulOptions): Promise<StatefulResult> {
  const random = prng(o.seed);
  const loaded = "files" in o.load ? readForeignFiles(o.load.files).ruleset : o.load.ruleset;
  const hostAddr = { 4: o.host.v4.split("/")[0]!, 6: o.host.v6.split("/")[0]! };
  const peers = peerPool(loaded, o.host);
  const second = o.host.iface === "eth1" ? "eth9" : "eth1";
  const conversations = makeConversations(o, peers, second, hostAddr, boundaryPorts(loaded), random);
  // The second interface's addresses too: a REDIRECT of a packet arriving there goes to them.
  const own = [[o.host.iface, hostAddr[4]], [o.host.iface, hostAddr[6]], [second, "10.250.0.1"], [second, "fd00:250::1"]].map(([iface, a]) => ({ iface: iface!, address: parseAddress(a!)! }));
  const env = staticEnvironment({ local: own.map((x) => x.address), routes: [], addresses: own });
  const sim = compileForSim(o.simulateWith ?? loaded);
  answerFromNat(conversations, sim, env);
  const sandbox = await Sandbox.build(topologyOf(o.host, second, peers));
  const crafters: Crafter[] = [];
  try {
    const host = sandbox.ns("host");
    const mac = async (ns: Netns, dev: string) => (JSON.parse((await ns.execChecked("ip", ["-j", "link", "show", dev])).stdout) as { address: string }[])[0]!.address;
    // Started first: python and scapy take a while to load, meanwhile the namespaces are set up.
    const by = {
      peer: new Crafter(sandbox.ns("peer").name, ["link", "eth0", await mac(host, o.host.iface)]),
      peer2: new Crafter(sandbox.ns("peer2").name, ["link", "eth0", await mac(host, second)]),
      host: new Crafter(host.name, ["raw", MARK]),
    };
    crafters.push(by.peer, by.peer2, by.host);
    const rounds = plan(conversations);
    await Promise.all([
      ...(["peer", "peer2", "host"] as const).map((node) => by[node].prepare(rounds[node].map((batch) => batch.map(([, spec]) => spec)))),
      staticNeighbours(host, o.host.iface, [hostAddr[4], hostAddr[6]], sandbox.ns("peer"), "eth0", peers),
      staticNeighbours(host, second, ["10.250.0.1", "fd00:250::1", hostAddr[4], hostAddr[6]], sandbox.ns("peer2"), "eth0", PEERS2),
      load(host, o.load).then(() => installObservers(host, sandbox.ns("peer"), sandbox.ns("peer2"))),
    ]);
    await Promise.all(crafters.map((c) => c.ready));
    const sent = await converse(conversations, rounds, by);
    await new Promise((r) => setTimeout(r, 150));
    const seen = await readObserved(host, sandbox.ns("peer"), sandbox.ns("peer2"));
    return judge(conversations, sent, seen, sim, env, o.dependsAllowed === true);
  } finally {
    for (const c of crafters) c.stop();
    await sandbox.destroy();
  }
}

/** Sources at the edges of every prefix the rules name, and a few they do not. */
function peerPool(ruleset: Ruleset, host: ForeignHost): string[] {
  const avoid = new Set([host.v4.split("/")[0]!, host.v6.split("/")[0]!]);
  for (const spec of [host.v4, host.v6]) {
    const net = parsePrefix(spec, "interface");
    if (net.ok) for (const v of [net.prefix.network, prefixLast(net.prefix)]) avoid.add(formatAddress({ family: net.prefix.family, value: v }));
  }
  const anycast = (a: string) => a.includes(":") && (parseAddress(a)!.value & 0xffffffffffffffffn) === 0n;
  const pool = boundaryAddresses(ruleset, avoid).filter((a) => !UNUSABLE.test(a) && !anycast(a));
  for (const extra of ["198.51.100.7", "203.0.113.9", "2001:db8:ffff::7", "2001:db8:ffff::9"]) if (!avoid.has(extra)) pool.push(extra);
  return [...new Set(pool)].slice(0, 40);
}

function topologyOf(host: ForeignHost, second: string, peers: string[]): Topology {
  const addr = { 4: host.v4.split("/")[0]!, 6: host.v6.split("/")[0]! };
  const defaults = (dev: string) => [{ family: 4 as const, to: "default", dev }, { family: 6 as const, to: "default", dev }];
  return {
    nodes: [
      { id: "host", role: "firewall", forwarding: false,
        interfaces: [{ name: host.iface, segment: "wire", addresses: [host.v4, host.v6] }, { name: second, segment: "wire2", addresses: ["10.250.0.1/24", "fd00:250::1/64"] }],
        routes: defaults(host.iface) },
      { id: "peer", role: "internet", forwarding: false, interfaces: [{ name: "eth0", segment: "wire", addresses: peers.map((a) => `${a}/${a.includes(":") ? 128 : 32}`) }], routes: defaults("eth0") },
      { id: "peer2", role: "internet", forwarding: false, interfaces: [{ name: "eth0", segment: "wire2", addresses: PEERS2.map((a) => `${a}/${a.includes(":") ? 64 : 24}`) }], routes: defaults("eth0") },
    ],
    book: { firewall: addr, peer: addr, stranger: addr, scanner: addr, owner: new Map(), lanHosts: [] },
  };
}

async function load(host: Netns, what: StatefulOptions["load"]): Promise<void> {
  if ("files" in what) { await restore(host, what.files); return; }
  // The very plan apply uses, from an empty namespace.
  const backend = await kernelBackend(what.backend);
  for (const { step } of backend.plan(backend.ownedOf(what.ruleset), backend.empty())) {
    await host.execChecked(step.command, step.args, step.input === undefined ? {} : { input: step.input });
  }
}

function makeConversations(o: StatefulOptions, peers: string[], second: string, hostAddr: Record<Family, string>, ports: number[], random: () => number): Conversation[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const next = { 4: 1, 6: 1 };
  const c: Choice = { pick, random, tag: (f) => next[f]++ };
  const out: Conversation[] = [];
  const taken = new Set<string>();
  let icmpId = 1;
  for (let guard = 0; out.length < o.conversations && guard < o.conversations * 20; guard++) {
    const family: Family = random() < 0.55 ? 4 : 6;
    const onSecond = random() < 0.2;
    const far = onSecond ? pick(PEERS2.filter((a) => a.includes(":") === (family === 6))) : pick(peers.filter((a) => a.includes(":") === (family === 6)) as string[]);
    if (far === undefined) continue;
    const e: Ends = { family, far, host: hostAddr[family], farNode: onSecond ? "peer2" : "peer", iface: onSecond ? second : o.host.iface };
    const initiator: Sender = random() < 0.55 ? "far" : "host";
    const port = () => (random() < 0.5 && ports.length ? pick(ports) : 1 + Math.floor(random() * 65535));
    const [initPort, respPort] = [random() < 0.2 ? pick(SPECIAL_SPORTS) : random() < 0.3 && ports.length ? pick(ports) : 1024 + Math.floor(random() * 64000), port()];
    // One conversation per pair of ports between two addresses, whichever way: conntrack would join them.
    const [farPort, hostPort] = initiator === "far" ? [initPort, respPort] : [respPort, initPort];
    const key = `${far}|${farPort}|${hostPort}`;
    if (taken.has(key)) continue;
    taken.add(key);
    const roll = random();
    const [kind, steps] = roll < 0.35 ? ["tcp", tcpConversation(e, c, initiator, initPort, respPort)]
      : roll < 0.65 ? ["udp", udpConversation(e, c, initiator, initPort, respPort)]
      : roll < 0.75 ? ["ping", pingConversation(e, c, initiator, icmpId++)]
      : ["stray", strayPacket(e, c, initiator, initPort, respPort, icmpId++)];
    out.push({ kind, far: e.farNode, iface: e.iface, steps });
  }
  // Neighbour discovery both ways on both interfaces, however the dice fell: the untracked state is asked too.
  for (const [farNode, iface] of [["peer", o.host.iface], ["peer2", second]] as const) {
    const far = farNode === "peer" ? peers.find((a) => a.includes(":")) : PEERS2.find((a) => a.includes(":"));
    if (!far) continue;
    const e: Ends = { family: 6, far, host: hostAddr[6], farNode, iface };
    out.push({ kind: "nd", far: farNode, iface, steps: neighbourDiscovery(e, c, "far", 135) }, { kind: "nd", far: farNode, iface, steps: neighbourDiscovery(e, c, "host", 136) });
  }
  return out;
}

type Node = "peer" | "peer2" | "host";
/**
 * Conversations the far side opens towards a port NAT moves elsewhere on the
 * host (REDIRECT 2222 → 22) are answered from there, as the simulator says
 * the first packet is translated: the test predicts it, it does not ask the kernel.
 */
function answerFromNat(conversations: Conversation[], sim: CompiledRuleset, env: Environment): void {
  for (const c of conversations) {
    const first = c.steps[0]!;
    if (first.by !== "far" || (first.spec.proto !== "tcp" && first.spec.proto !== "udp") || !c.steps.some((s) => s.by === "host")) continue;
    const r = simulateAll(sim, { ...packetOf(first.spec, "far", c.iface), state: "new" }, env, { limits: "branch" }).branches[0]!.result;
    if (r.path !== "input" || !r.translated || (r.translated.daddr === undefined && r.translated.dport === undefined)) continue;
    c.steps = answeredFrom(c.steps, { addr: r.translated.daddr ? formatAddress(r.translated.daddr) : first.spec.dst, ...(r.translated.dport !== undefined && { port: r.translated.dport }) });
  }
}

/** Every conversation's step n in round n: per round and sending node, the packets, each with its conversation. */
function plan(conversations: Conversation[]): Record<Node, [number, CraftSpec][][]> {
  const rounds = Math.max(...conversations.map((c) => c.steps.length));
  const out: Record<Node, [number, CraftSpec][][]> = { peer: [], peer2: [], host: [] };
  for (let round = 0; round < rounds; round++) {
    for (const node of Object.values(out)) node.push([]);
    conversations.forEach((c, i) => {
      const step = c.steps[round];
      if (step) out[step.by === "host" ? "host" : c.far][round]!.push([i, step.spec]);
    });
  }
  return out;
}

/** The prepared rounds, each sender's batch at once, one round after another; what was sent, by conversation and step. */
async function converse(conversations: Conversation[], rounds: Record<Node, [number, CraftSpec][][]>, by: Record<Node, Crafter>): Promise<boolean[][]> {
  const sent = conversations.map(() => [] as boolean[]);
  for (let round = 0; round < rounds.host.length; round++) {
    await Promise.all((["peer", "peer2", "host"] as const).map(async (node) => {
      const ok = await by[node].round(round);
      rounds[node][round]!.forEach(([i], k) => { sent[i]![round] = ok[k] === true; });
    }));
    // Let every namespace finish with this round before the next one answers it.
    await new Promise((r) => setTimeout(r, 25));
  }
  return sent;
}

const FLAG_LETTERS: Record<string, TcpFlag> = { F: "fin", S: "syn", R: "rst", P: "psh", A: "ack", U: "urg" };

/** The packet as the host's firewall sees it: arriving on the conversation's interface, or leaving by it. */
export function packetOf(spec: CraftSpec, by: Sender, iface: string): Packet {
  const base = { family: spec.family, saddr: parseAddress(spec.src)!, daddr: parseAddress(spec.dst)!, state: "new" as CtState, ...(by === "far" ? { iif: iface } : { oif: iface }) };
  if (spec.proto === "tcp") return { ...base, protocol: "tcp", sport: spec.sport!, dport: spec.dport!, flags: [...spec.flags ?? ""].map((l) => FLAG_LETTERS[l]!) };
  if (spec.proto === "udp") return { ...base, protocol: "udp", sport: spec.sport!, dport: spec.dport! };
  // An ICMP query's identifier, in both port fields, is what the connection-tracking model keys it by.
  const id = spec.echo?.id;
  return { ...base, protocol: spec.proto, icmpType: spec.echo?.type ?? spec.nd?.type ?? spec.icmp!.type, ...(id !== undefined && { sport: id, dport: id }) };
}

function judge(conversations: Conversation[], sent: boolean[][], seen: Observed, sim: ReturnType<typeof compileForSim>, env: ReturnType<typeof staticEnvironment>, dependsAllowed: boolean): StatefulResult {
  const ct = new Conntrack();
  const states: Record<CtState, number> = { new: 0, established: 0, related: 0, invalid: 0, untracked: 0 };
  const disagreements: StatefulDisagreement[] = [];
  let packets = 0;
  let unsent = 0;
  let depends = 0;
  conversations.forEach((conv, i) => conv.steps.forEach((step, n) => {
    if (!sent[i]![n]) { unsent++; return; }
    packets++;
    const packet = packetOf(step.spec, step.by, conv.iface);
    // The packet an ICMP error quotes went the other way.
    const quote = step.spec.icmp && packetOf(step.spec.icmp.quote, step.by === "far" ? "host" : "far", conv.iface);
    const tracked = ct.track(packet, quote);
    packet.state = tracked.state;
    const probe = { conversation: conv, step: n, packet };
    const simulated = simulateAll(sim, packet, env, { limits: "branch" });
    const first = simulated.branches[0]!.result;
    // What conntrack made of it: nothing if a notrack rule or a drop before it (priority below -200) came first.
    const state = first.untracked ? "untracked" : tracked.state;
    const beforeConntrack = first.untracked || (first.verdict !== "accept" && first.deciding !== undefined && (sim.chains.get(`${first.deciding.table}/${first.deciding.chain}`)?.base?.priority ?? 0) < -200);
    states[state]++;
    const key = `${step.spec.src}|${step.spec.tag}`;
    const observed = seen.state.get(key);
    if (observed !== undefined && observed !== state) disagreements.push({ probe, about: "state", simulator: state, kernel: observed });
    // Tags are unique per family: the packet arrived under its own source or the one NAT gave it back.
    const at = seen.delivered[step.by === "far" ? "host" : conv.far];
    const delivered = at.has(key) || (step.seenFrom !== undefined && at.has(`${step.seenFrom}|${step.spec.tag}`));
    const verdicts = new Set(simulated.branches.map((b) => b.result.verdict === "accept"));
    const onlyLimits = simulated.conditions.every((x) => x.rule === undefined);
    if (simulated.verdict === "depends" && !onlyLimits) depends++;
    const ok = simulated.verdict === "depends" ? (dependsAllowed || onlyLimits) && verdicts.has(delivered) : (simulated.verdict === "accept") === delivered;
    if (!ok) disagreements.push({ probe, about: "verdict", simulator: simulated.verdict, kernel: delivered ? "delivered" : "not delivered", simulated });
    if (!beforeConntrack) tracked.seen();
    // The connection is kept if the packet got through; where the simulator cannot say, the kernel's way is taken.
    if (!beforeConntrack && (simulated.verdict === "depends" ? delivered : simulated.verdict === "accept")) tracked.confirm(first.translated);
  }));
  return { packets, unsent, states, depends, disagreements };
}

const endpoint = (a: string, port: number | undefined) => (port === undefined ? a : a.includes(":") ? `[${a}]:${port}` : `${a}:${port}`);
export function describeStateful(d: StatefulDisagreement): string {
  const s = d.probe.conversation.steps[d.probe.step]!;
  const p = d.probe.packet;
  const where = p.iif ? `in ${p.iif}` : `out ${p.oif}`;
  const head = `${d.probe.conversation.kind} conversation, step ${d.probe.step + 1} (${s.what}): ${s.spec.proto} ${endpoint(s.spec.src, s.spec.sport)} -> ${endpoint(s.spec.dst, s.spec.dport)} ${where} ${p.state}`;
  return `${head}: ${d.about} — simulator ${d.simulator}, kernel ${d.kernel}`;
}
