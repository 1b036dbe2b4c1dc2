// Rehearsal: build the policy's sandbox, load the compiled ruleset into the
// host or gateway namespace with the chosen backend, try every flow with real
// sockets, and compare what happened with what the policy says.
import { compile } from "../compile/index.js";
import { emitNftRule } from "../backend/nft.js";
import { userError } from "../errors.js";
import type { Rule, Ruleset } from "../ir/ruleset.js";
import { readFileSync } from "node:fs";
import type { Policy } from "../policy/types.js";
import { kernelBackend, type KernelBackendName } from "../backend/registry.js";
import { onPath } from "../system/run.js";
import { Agent, type ProbeAnswer } from "./agents.js";
import { onInterrupt } from "./cleanup.js";
import { deriveFlows, type Flow } from "./flows.js";
import { Sandbox } from "./sandbox.js";
import { planTopology, type Topology } from "./topology.js";

export interface RehearseOptions {
  backend: KernelBackendName;
  /** Rehearse this ruleset instead of the policy's compiled one (to show that a wrong ruleset is caught). */
  ruleset?: Ruleset;
  /** How long a probe waits for an answer before calling the flow blocked. */
  timeoutMs?: number;
  progress?: (message: string) => void;
}

export interface FlowResult extends Flow {
  observed: "open" | "closed";
  ok: boolean;
  detail: string;
  answeredBy?: string;
  seenFromObserved?: string;
  /** On failure: the rule the flow was expected to hit. */
  expectedRule?: string;
}

export interface Rehearsal {
  ok: boolean;
  backend: KernelBackendName;
  flows: FlowResult[];
  milliseconds: number;
}

export async function rehearse(policy: Policy, options: RehearseOptions): Promise<Rehearsal> {
  const started = Date.now();
  preflight(options.backend, policy);
  const progress = options.progress ?? (() => {});
  const ruleset = options.ruleset ?? compile(policy);
  const topology = planTopology(policy);
  const flows = deriveFlows(policy, topology.book);
  progress(`building a sandbox of ${topology.nodes.length} namespaces`);
  const sandbox = await Sandbox.build(topology);
  const agents: Agent[] = [];
  const teardown = async () => { for (const a of agents) a.stop(); await sandbox.destroy(); };
  const forget = onInterrupt(teardown);
  try {
    const firewall = topology.nodes.find((n) => n.role === "firewall")!;
    progress(`loading the ruleset into ${firewall.id} with ${options.backend}`);
    // The very plan apply uses, from an empty namespace.
    const backend = await kernelBackend(options.backend);
    for (const { step } of backend.plan(backend.ownedOf(ruleset), backend.empty())) {
      const r = await sandbox.ns(firewall.id).exec(step.command, step.args, { input: step.input });
      if (r.code !== 0) throw userError("LAB_LOAD_FAILED", `${step.command} rejected the ruleset: ${r.stderr.trim()}`);
    }
    // One agent per node, and on the host one more per user a flow runs as (vpn policies): a socket is its process's user's.
    const byNode = new Map<string, Agent>();
    for (const node of topology.nodes) {
      const agent = new Agent(sandbox.ns(node.id).name, node.id);
      agents.push(agent);
      byNode.set(node.id, agent);
    }
    for (const uid of new Set(flows.flatMap((f) => (f.uid === undefined ? [] : [f.uid])))) {
      const agent = new Agent(sandbox.ns(firewall.id).name, firewall.id, { uid, gid: groupOf(uid) });
      agents.push(agent);
      byNode.set(agentKey(firewall.id, uid), agent);
    }
    await Promise.all(agents.map((a) => a.ready));
    progress(`listening on ${countPorts(flows)} ports`);
    await listenEverywhere(flows, byNode, topology, clientListener(policy, firewall.id));
    progress(`trying ${flows.length} flows`);
    const timeout = options.timeoutMs ?? 1500;
    const answers = await Promise.all(flows.map((f) =>
      byNode.get(agentKey(f.from, f.uid))!.probe(f.proto === "icmp" ? "ping" : f.proto, f.to, f.port, timeout, f.sport, f.bind)));
    const results = flows.map((f, i) => judge(f, answers[i]!, ruleset));
    return { ok: results.every((r) => r.ok), backend: options.backend, flows: results, milliseconds: Date.now() - started };
  } finally {
    forget();
    await teardown();
  }
}

function preflight(backend: KernelBackendName, policy: Policy): void {
  if (process.getuid?.() !== 0) throw userError("LAB_NEEDS_ROOT", "rehearse creates network namespaces and needs root (try: sudo swarmgate rehearse)");
  const asUser = policy.vpn?.scope === "users" && policy.vpn.users.some((u) => u.uid !== 0);
  const tools = ["ip", "ping", ...(backend === "nft" ? ["nft"] : ["iptables-restore", "ip6tables-restore"]), ...(asUser ? ["setpriv"] : [])];
  const missing = tools.filter((t) => !onPath(t));
  if (missing.length > 0) {
    const packages = [...new Set(missing.map((t) => PACKAGES[t] ?? t))].join(" ");
    throw userError("TOOL_MISSING", `rehearse needs ${missing.join(", ")}, not installed here (on Debian: apt-get install ${packages})`);
  }
}

const PACKAGES: Record<string, string> = { ip: "iproute2", ping: "iputils-ping", nft: "nftables", "iptables-restore": "iptables", "ip6tables-restore": "iptables", setpriv: "util-linux" };

const agentKey = (node: string, uid?: number) => (uid === undefined ? node : `${node}#${uid}`);

/** A user's primary group, from /etc/passwd; nogroup (65534) for a uid without an entry. */
function groupOf(uid: number): number {
  let text = "";
  try { text = readFileSync("/etc/passwd", "utf8"); } catch { /* no passwd: nogroup */ }
  const entry = text.split("\n").map((l) => l.split(":")).find((f) => f.length >= 4 && f[2] === String(uid));
  return entry && /^\d+$/.test(entry[3]!) ? Number(entry[3]) : 65534;
}

/**
 * Behind a VPN with scope users, the client runs as a confined user: its ports
 * on the host are listened on by that user's agent, so that its answers meet
 * the kill switch as the real client's do. Everything else is root's.
 */
function clientListener(policy: Policy, host: string): (node: string, proto: "tcp" | "udp", port: number) => string {
  const vpn = policy.vpn;
  const user = vpn?.scope === "users" ? vpn.users.find((u) => u.uid !== 0) : undefined;
  return (node, proto, port) => {
    const client = policy.clients.some((c) => c.protocols.includes(proto) && port >= c.ports.first && port <= c.ports.last);
    return user && node === host && client ? agentKey(node, user.uid) : node;
  };
}

function countPorts(flows: Flow[]): number {
  return new Set(flows.filter((f) => f.port !== undefined).map((f) => `${f.proto}/${f.port}`)).size;
}

/** Every node but the scanner listens on every port a flow uses, so a leak anywhere shows. */
async function listenEverywhere(flows: Flow[], agents: Map<string, Agent>, topology: Topology,
  listener: (node: string, proto: "tcp" | "udp", port: number) => string): Promise<void> {
  const ports = [...new Set(flows.filter((f) => f.port !== undefined && f.proto !== "icmp").map((f) => `${f.proto}/${f.port}`))];
  const jobs: Promise<void>[] = [];
  for (const node of topology.nodes) {
    if (node.id === "scanner") continue;
    const addresses = node.interfaces.flatMap((i) => i.addresses.map((a) => a.split("/")[0]!));
    for (const p of ports) {
      const [proto, port] = p.split("/") as ["tcp" | "udp", string];
      jobs.push(agents.get(listener(node.id, proto, Number(port)))!.listen(proto, Number(port), addresses));
    }
  }
  await Promise.all(jobs);
}

function judge(flow: Flow, answer: ProbeAnswer, ruleset: Ruleset): FlowResult {
  const observed = answer.result === "open" ? "open" : "closed";
  let ok = observed === flow.expect;
  let detail = answer.result === "open" ? `answered by ${answer.by}` : answer.detail ?? answer.result;
  if (ok && observed === "open" && flow.proto !== "icmp") {
    if (flow.arriveAt && answer.by !== flow.arriveAt) { ok = false; detail = `arrived at ${answer.by}, expected ${flow.arriveAt}`; }
    else if (flow.seenFrom && answer.seenFrom !== flow.seenFrom) { ok = false; detail = `seen from ${answer.seenFrom}, expected ${flow.seenFrom}`; }
  }
  return {
    ...flow, observed, ok, detail,
    ...(answer.by && { answeredBy: answer.by }),
    ...(answer.seenFrom && { seenFromObserved: answer.seenFrom }),
    ...(!ok && { expectedRule: expectedRule(flow, ruleset) }),
  };
}

/** The rule a failed flow should have hit, as nft text with its origin. */
function expectedRule(flow: Flow, ruleset: Ruleset): string {
  if (flow.leak) return "the kill switch: the jump into vpn_confined at the head of the output chain, and its drop outside the tunnel";
  if (flow.expect === "closed") return "the default drop at the end of the chain (no rule should accept it)";
  const rules: Rule[] = ruleset.tables.flatMap((t) => t.chains.flatMap((c) => c.rules));
  const proto = flow.proto === "icmp" ? (flow.family === 4 ? "icmp" : "icmpv6") : flow.proto;
  const candidates = rules.filter((r) => r.origin.path === flow.path || r.origin.path.startsWith(`${flow.path}.`) || (flow.path === "outbound" && r.origin.path.startsWith("outbound")));
  const best = candidates.find((r) => r.matches.some((m) => (m.kind === "dport" && m.protocol === proto) || (m.kind === "icmptype" && (m.family === 4 ? "icmp" : "icmpv6") === proto)))
    ?? candidates[0];
  return best ? emitNftRule(best) : `a rule from ${flow.path || "the policy"} (none was compiled)`;
}
