// The BitTorrent diagnosis of a ruleset swarmgate did not write: can peers
// reach the client's ports (TCP and UDP, IPv4 and IPv6), can it reach peers,
// trackers (HTTP, HTTPS, UDP) and DNS, do the port forwards work — each a
// check with a stable id, answered by the simulator over every table, with
// the deciding rule and its place — and what is wrong besides, as findings
// with stable codes and the rules behind them. A check whose answer turns on
// a condition no packet decides (a rate per source, a mark) says "depends".
import type { Hook, Rule, Ruleset } from "../ir/ruleset.js";
import { formatAddress, parseAddress, type Address, type Family } from "../net/address.js";
import { prefixContains } from "../net/prefix.js";
import { simulateAll, type BranchedResult } from "../sim/branches.js";
import { compileForSim } from "../sim/compiled.js";
import type { Environment } from "../sim/environment.js";
import type { Packet } from "../sim/packet.js";
import { shadowIndex } from "./lint.js";

export type CheckStatus = "pass" | "fail" | "depends";

export interface RulePlace { text: string; place: string; writer?: string }

export interface DoctorCheck {
  id: string;
  title: string;
  status: CheckStatus;
  detail: string;
  /** The rule (or chain policy) that decided the failing or deciding step. */
  decidedBy?: RulePlace | { policy: string };
  /** For "depends": the conditions and where they are. */
  dependsOn?: { condition: string; place?: string }[];
}

export type FindingCode =
  | "STATELESS_ACCEPT" | "IPV6_WIDE_OPEN" | "FAMILY_ASYMMETRY" | "DNAT_NOT_FORWARDED" | "FORWARD_WRONG_DIRECTION"
  | "SHADOWED_RULE" | "DOCKER_BYPASS" | "POLICY_ACCEPT_NO_RULES" | "ADMIN_OPEN_TO_ALL" | "CLIENT_PORT_MISMATCH";

export interface DoctorFinding { code: FindingCode; severity: "error" | "warning"; message: string; fix: string; rules: RulePlace[] }

export interface DoctorInput {
  ruleset: Ruleset;
  /** The client's peer ports (TCP and UDP). */
  ports: number[];
  /** The interface peers arrive on. */
  iface: string;
  /** This machine's address per family on that interface. */
  local: Record<Family, Address>;
  env: Environment;
  place: (rule: Rule) => RulePlace;
  /** The DNS server the machine asks (a policy names it); else one on the internet. */
  resolver?: Address;
}

export interface Doctor { checks: DoctorCheck[]; findings: DoctorFinding[]; ok: boolean }

// Addresses that stand for "somewhere on the internet" (documentation ranges, RFC 5737 and RFC 3849).
const PEER: Record<Family, Address> = { 4: parseAddress("203.0.113.7")!, 6: parseAddress("2001:db8:ffff::7")! };
const TRACKER: Record<Family, Address> = { 4: parseAddress("198.51.100.80")!, 6: parseAddress("2001:db8:ffff::80")! };
const RESOLVER: Record<Family, Address> = { 4: parseAddress("198.51.100.53")!, 6: parseAddress("2001:db8:ffff::53")! };
const REMOTE_PEER_PORT = 51413;
const EPHEMERAL = 41234;
/** Ports a person reaches a machine's admin services on: SSH, VNC, and the clients' Web UIs. */
export const ADMIN_PORTS: { port: number; what: string }[] = [
  { port: 22, what: "SSH" }, { port: 5900, what: "VNC" }, { port: 8080, what: "the qBittorrent Web UI" },
  { port: 9091, what: "the Transmission Web UI" }, { port: 8112, what: "the Deluge Web UI" }, { port: 6800, what: "aria2's RPC" },
];

export function doctor(input: DoctorInput): Doctor {
  const sim = compileForSim(input.ruleset);
  const ask = (p: Packet): BranchedResult => simulateAll(sim, p, input.env);
  const checks: DoctorCheck[] = [];
  const findings: DoctorFinding[] = [];
  const peerIn = new Map<string, CheckStatus>();

  for (const [n, port] of input.ports.entries()) {
    const suffix = n === 0 ? "" : `-${port}`;
    for (const family of [4, 6] as Family[]) {
      for (const proto of ["tcp", "udp"] as const) {
        const v = `v${family}`;
        const inbound = roundTrip(ask, { family, protocol: proto, state: "new", iif: input.iface, saddr: PEER[family], daddr: input.local[family], sport: REMOTE_PEER_PORT, dport: port });
        checks.push(check(`peer-in-${proto}-${v}${suffix}`, `peers reach ${proto.toUpperCase()} ${port} over IPv${family}`, inbound, input.place));
        peerIn.set(`${proto}|${port}|${family}`, inbound.status);
        const outbound = roundTrip(ask, { family, protocol: proto, state: "new", oif: input.iface, saddr: input.local[family], daddr: PEER[family], sport: port, dport: REMOTE_PEER_PORT });
        checks.push(check(`peer-out-${proto}-${v}${suffix}`, `the client reaches peers over ${proto.toUpperCase()} from ${port}, IPv${family}`, outbound, input.place));
      }
    }
  }
  for (const family of [4, 6] as Family[]) {
    for (const [name, proto, port] of [["http", "tcp", 80], ["https", "tcp", 443], ["udp", "udp", 6969]] as const) {
      const r = roundTrip(ask, { family, protocol: proto, state: "new", oif: input.iface, saddr: input.local[family], daddr: TRACKER[family], sport: EPHEMERAL, dport: port });
      checks.push(check(`tracker-${name}-v${family}`, `${name.toUpperCase()} trackers (${proto.toUpperCase()} ${port}) over IPv${family}`, r, input.place));
    }
  }
  const resolver = input.resolver ?? RESOLVER[4];
  for (const proto of ["udp", "tcp"] as const) {
    const r = roundTrip(ask, { family: resolver.family, protocol: proto, state: "new", oif: input.iface, saddr: input.local[resolver.family], daddr: resolver, sport: EPHEMERAL, dport: 53 });
    checks.push(check(`dns-${proto}`, `DNS over ${proto.toUpperCase()}`, r, input.place));
  }
  for (const f of forwards(input.ruleset)) {
    if (input.env.route(f.to) === undefined) continue; // the caller notes that forwards need routes
    const r = roundTrip(ask, { family: 4, protocol: f.proto, state: "new", iif: f.iif ?? input.iface, saddr: PEER[4], daddr: input.local[4], sport: REMOTE_PEER_PORT, dport: f.port });
    const c = check(`forward-${formatAddress(f.to)}-${f.proto}`, `${f.proto.toUpperCase()} ${f.port} forwarded to ${formatAddress(f.to)}`, r, input.place);
    const forwarded = r.first?.result.path === "forward";
    if (c.status === "pass" && !forwarded) { c.status = "fail"; c.detail = "the packet is not forwarded: it stays on this machine"; }
    checks.push(c);
    if (c.status === "fail" && forwarded) {
      findings.push({ code: "DNAT_NOT_FORWARDED", severity: "error", message: `${f.proto.toUpperCase()} ${f.port} is rewritten to ${formatAddress(f.to)}${f.toPort !== undefined ? ` port ${f.toPort}` : ""}, but the forward hook drops it (from a peer on the internet)`, fix: `accept ${f.proto} to ${formatAddress(f.to)} port ${f.toPort ?? f.port} in the forward chain (the port after the DNAT), from every source, matching the destination (or ct status dnat)`, rules: [input.place(f.rule), ...("place" in (c.decidedBy ?? {}) ? [c.decidedBy as RulePlace] : [])] });
    }
    dockerBypass(f, r, input, findings);
  }

  statelessAccepts(input, findings);
  wrongDirection(input, findings);
  const wide = ipv6WideOpen(ask, input, findings);
  familyAsymmetry(input.ports, peerIn, findings, wide);
  const allOpen = acceptByPolicy(input, findings);
  adminOpen(ask, input, findings, wide, allOpen);
  shadowed(input, findings);

  const ok = checks.every((c) => c.status === "pass") && !findings.some((f) => f.severity === "error");
  return { checks, findings, ok };
}

// ---- checks ---------------------------------------------------------------

interface Trip { status: CheckStatus; failed?: BranchedResult; first?: BranchedResult["branches"][number]; depends?: BranchedResult }

/** A new connection and its answer: the packet must pass, and so must the reply (established, the other way). */
function roundTrip(ask: (p: Packet) => BranchedResult, p: Packet): Trip {
  const there = ask(p);
  const res = there.branches[0]!.result;
  const t = res.translated;
  // The answer comes back the way the packet went: from where it was delivered, to where it came from.
  const ifaces = res.path === "input" ? { oif: p.iif } : res.path === "output" ? { iif: p.oif } : { iif: t?.oif ?? p.oif, oif: p.iif };
  const back: Packet = {
    family: p.family, protocol: p.protocol, state: "established",
    saddr: t?.daddr ?? p.daddr, daddr: p.saddr, sport: t?.dport ?? p.dport!, dport: p.sport!,
    ...(ifaces.iif !== undefined && { iif: ifaces.iif }), ...(ifaces.oif !== undefined && { oif: ifaces.oif }),
  };
  const reply = ask(back);
  const first = there.branches[0];
  for (const r of [there, reply]) if (r.verdict !== "accept" && r.verdict !== "depends") return { status: "fail", failed: r, first: first! };
  for (const r of [there, reply]) if (r.verdict === "depends") return { status: "depends", depends: r, first: first! };
  return { status: "pass", first: first! };
}

function check(id: string, title: string, t: Trip, place: (r: Rule) => RulePlace): DoctorCheck {
  const decided = (r: BranchedResult) => {
    const d = r.branches[0]!.result.deciding;
    if (!d) return undefined;
    return d.rule ? place(d.rule) : { policy: `${d.action} of ${d.table}/${d.chain}` };
  };
  if (t.status === "fail") {
    const r = t.failed!;
    const res = r.branches[0]!.result;
    const by = decided(r);
    const what = res.verdict === "reject" ? "rejected" : res.verdict === "unknown" ? "handed to a target swarmgate does not model" : "dropped";
    return { id, title, status: "fail", detail: `${what}${by ? ` by ${"place" in by ? `${by.place}: ${by.text}` : `the ${by.policy}`}` : ""}`, ...(by && { decidedBy: by }) };
  }
  if (t.status === "depends") {
    const dependsOn = t.depends!.conditions.map((c) => ({ condition: c.condition.text, ...(c.rule && { place: place(c.rule).place }) }));
    return { id, title, status: "depends", detail: `accepted or not, depending on ${dependsOn.map((d) => `${d.condition}${d.place ? ` at ${d.place}` : ""}`).join("; ")}`, dependsOn };
  }
  const by = t.first && t.first.result.deciding && (t.first.result.deciding.rule ? place(t.first.result.deciding.rule) : { policy: `${t.first.result.deciding.action} of ${t.first.result.deciding.table}/${t.first.result.deciding.chain}` });
  return { id, title, status: "pass", detail: by ? `accepted by ${"place" in by ? by.place : `the ${by.policy}`}` : "nothing filters it", ...(by && { decidedBy: by }) };
}

// ---- forwards -------------------------------------------------------------

/** `toPort`: the port the DNAT rewrites to, when it rewrites one (Docker's `-p 8080:80`). */
interface Forward { to: Address; port: number; toPort?: number; proto: "tcp" | "udp"; iif?: string; rule: Rule }

/** Every DNAT to another machine in a prerouting chain, with the first port and protocol it takes. */
function forwards(ruleset: Ruleset): Forward[] {
  const out: Forward[] = [];
  for (const t of ruleset.tables) for (const c of t.chains) {
    // DNAT of arriving packets: the prerouting NAT chains and the chains they jump to (DOCKER …).
    if (c.base && !(c.base.hook === "prerouting" && c.base.type === "nat")) continue;
    for (const r of c.rules) {
      if (r.verdict.kind !== "dnat" || r.verdict.to.family !== 4) continue;
      const d = r.matches.find((m) => m.kind === "dport");
      if (!d || d.kind !== "dport") continue;
      const iif = r.matches.find((m) => m.kind === "iifname" && !m.negate && !m.wildcard);
      const port = d.ranges[0]!.first;
      // The port a peer uses is the rule's, not the one it is translated to.
      const toPort = r.verdict.port !== undefined && r.verdict.port !== port ? r.verdict.port : undefined;
      out.push({ to: r.verdict.to, port, ...(toPort !== undefined && { toPort }), proto: d.protocol, ...(iif && iif.kind === "iifname" && { iif: iif.name }), rule: r });
    }
  }
  const seen = new Set<string>();
  return out.filter((f) => { const k = `${formatAddress(f.to)}|${f.proto}`; if (seen.has(k)) return false; seen.add(k); return true; });
}

/** A published port reached through DNAT while the host's own filter would drop the same port: the filter is bypassed. */
function dockerBypass(f: Forward, r: Trip, input: DoctorInput, findings: DoctorFinding[]): void {
  if (r.status !== "pass" || input.place(f.rule).writer !== "Docker") return;
  const withoutNat: Ruleset = { tables: input.ruleset.tables.map((t) => ({ ...t, chains: t.chains.filter((c) => c.base?.type !== "nat" && !(c.name.startsWith("DOCKER") && t.name.startsWith("nat"))) })) };
  const host = simulateAll(compileForSim(withoutNat), { family: 4, protocol: f.proto, state: "new", iif: f.iif ?? input.iface, saddr: PEER[4], daddr: input.local[4], sport: REMOTE_PEER_PORT, dport: f.port }, input.env);
  if (host.verdict === "accept" || host.verdict === "depends") return;
  const by = host.branches[0]!.result.deciding;
  findings.push({
    code: "DOCKER_BYPASS", severity: "warning",
    message: `${f.proto.toUpperCase()} ${f.port} is published by Docker to ${formatAddress(f.to)} and reachable from anywhere, although this machine's own input filter drops that port (${by?.rule ? input.place(by.rule).place : by ? `${by.action} of ${by.table}/${by.chain}` : "its policy"}): Docker's DNAT sends it through the forward hook instead`,
    fix: "publish the port on 127.0.0.1 only (-p 127.0.0.1:PORT:PORT), or filter it in the DOCKER-USER chain",
    rules: [input.place(f.rule)],
  });
}

// ---- static findings --------------------------------------------------------

function chainsOnHooks(ruleset: Ruleset, hooks: readonly Hook[]): { rule: Rule; hook: Hook }[] {
  const out: { rule: Rule; hook: Hook }[] = [];
  for (const t of ruleset.tables) {
    const byName = new Map(t.chains.map((c) => [c.name, c]));
    for (const base of t.chains.filter((c) => c.base && hooks.includes(c.base.hook) && c.base.type !== "nat")) {
      const seen = new Set<string>();
      const visit = (name: string) => {
        if (seen.has(name)) return;
        seen.add(name);
        for (const rule of byName.get(name)?.rules ?? []) {
          out.push({ rule, hook: base.base!.hook });
          if (rule.verdict.kind === "jump" || rule.verdict.kind === "goto") visit(rule.verdict.chain);
        }
      };
      visit(base.name);
    }
  }
  return out;
}

/** An accept by source port alone, with no state and no narrow destination port: it opens high ports to anyone sending from that port. */
function statelessAccepts(input: DoctorInput, findings: DoctorFinding[]): void {
  const said = new Set<Rule>();
  for (const { rule, hook } of chainsOnHooks(input.ruleset, ["input", "forward"])) {
    if (rule.verdict.kind !== "accept" || said.has(rule)) continue;
    const sport = rule.matches.find((m) => m.kind === "sport");
    if (!sport || rule.matches.some((m) => m.kind === "ctstate" || m.kind === "ctdnat")) continue;
    const dport = rule.matches.find((m) => m.kind === "dport");
    const width = dport && dport.kind === "dport" ? dport.ranges.reduce((n, r) => n + r.last - r.first + 1, 0) : 65536;
    if (width < 1000) continue;
    said.add(rule);
    const sp = sport.kind === "sport" ? sport.ranges.map((r) => (r.first === r.last ? `${r.first}` : `${r.first}-${r.last}`)).join(",") : "";
    findings.push({
      code: "STATELESS_ACCEPT", severity: "error",
      message: `${sport.kind === "sport" ? sport.protocol.toUpperCase() : ""} from source port ${sp} is accepted to ${width === 65536 ? "every port" : `${width} ports`} ${hook === "input" ? "of this machine" : "of what it routes to"}, connection or not: anyone who sends from that port gets in`,
      fix: "delete it: replies are accepted by a connection-tracking rule (ct state established,related / -m conntrack --ctstate ESTABLISHED,RELATED)",
      rules: [input.place(rule)],
    });
  }
}

/** A forward accept that names a DNAT target as the source (and its port as the source port): it matches only the replies' direction. */
function wrongDirection(input: DoctorInput, findings: DoctorFinding[]): void {
  const targets = forwards(input.ruleset);
  for (const { rule, hook } of chainsOnHooks(input.ruleset, ["forward"])) {
    if (hook !== "forward" || rule.verdict.kind !== "accept") continue;
    const saddr = rule.matches.find((m) => m.kind === "saddr");
    if (!saddr || saddr.kind !== "saddr" || rule.matches.some((m) => m.kind === "daddr")) continue;
    const proto = rule.matches.find((m) => m.kind === "sport" || m.kind === "dport" || m.kind === "protocol");
    const protocol = proto && (proto.kind === "sport" || proto.kind === "dport" || proto.kind === "protocol") ? proto.protocol : undefined;
    const f = targets.find((t) => (protocol === undefined || protocol === t.proto) && saddr.prefixes.some((p) => prefixContains(p, t.to) && p.length === 32));
    if (!f) continue;
    findings.push({
      code: "FORWARD_WRONG_DIRECTION", severity: "error",
      message: `this forward rule matches ${formatAddress(f.to)} as the source, so it accepts that host's answers and not the connections DNAT sends to it`,
      fix: `match the destination: -d ${formatAddress(f.to)} --dport ${f.port} -m conntrack --ctstate DNAT (nft: ip daddr ${formatAddress(f.to)} ${f.proto} dport ${f.port} ct status dnat accept)`,
      rules: [input.place(rule), input.place(f.rule)],
    });
  }
}

function familyAsymmetry(ports: number[], peerIn: Map<string, CheckStatus>, findings: DoctorFinding[], v6WideOpen: boolean): void {
  for (const port of ports) for (const proto of ["tcp", "udp"]) {
    const v4 = peerIn.get(`${proto}|${port}|4`);
    const v6 = peerIn.get(`${proto}|${port}|6`);
    if ((v4 === "pass") === (v6 === "pass") || v4 === "depends" || v6 === "depends") continue;
    if (v6WideOpen && v6 === "pass") continue; // said by IPV6_WIDE_OPEN
    findings.push({
      code: "FAMILY_ASYMMETRY", severity: "warning",
      message: `${proto.toUpperCase()} ${port} is open to peers over IPv${v4 === "pass" ? 4 : 6} but not over IPv${v4 === "pass" ? 6 : 4}`,
      fix: `open it on both families (an inet table, or the same rule in ${v4 === "pass" ? "ip6tables" : "iptables"})`, rules: [],
    });
  }
}

/** IPv4 keeps strangers out of ports nothing opens; IPv6 lets the same strangers in everywhere. */
function ipv6WideOpen(ask: (p: Packet) => BranchedResult, input: DoctorInput, findings: DoctorFinding[]): boolean {
  const probes = (["tcp", "udp"] as const).flatMap((protocol) => [1, 3306, 47321].flatMap((dport) => [999, 40123].map((sport) => ({ protocol, dport, sport }))));
  const verdict = (family: Family, p: (typeof probes)[number]) =>
    ask({ family, protocol: p.protocol, state: "new", iif: input.iface, saddr: PEER[family], daddr: input.local[family], sport: p.sport, dport: p.dport }).verdict;
  const v4Filtered = probes.some((p) => verdict(4, p) !== "accept");
  const v6Open = probes.every((p) => verdict(6, p) === "accept");
  if (v4Filtered && v6Open) {
    findings.push({
      code: "IPV6_WIDE_OPEN", severity: "error",
      message: "IPv4 is filtered, but over IPv6 anyone reaches every port of this machine (no IPv6 rule drops new connections)",
      fix: "filter IPv6 too: ip6tables rules beside the iptables ones, or one nft table of family inet for both", rules: [],
    });
    return true;
  }
  return false;
}

function adminOpen(ask: (p: Packet) => BranchedResult, input: DoctorInput, findings: DoctorFinding[], v6WideOpen: boolean, inputAllOpen: boolean): void {
  for (const { port, what } of ADMIN_PORTS) {
    if (input.ports.includes(port)) continue;
    // With IPv6 wide open, that finding already says every port is.
    for (const family of (v6WideOpen ? [4] : [4, 6]) as Family[]) {
      const r = ask({ family, protocol: "tcp", state: "new", iif: input.iface, saddr: PEER[family], daddr: input.local[family], sport: 40123, dport: port });
      if (r.verdict !== "accept") continue;
      const d = r.branches[0]!.result.deciding;
      // Open because the input hook accepts everything: POLICY_ACCEPT_NO_RULES says it, for every port.
      if (inputAllOpen && !d?.rule && r.branches[0]!.result.path === "input") continue;
      findings.push({
        code: "ADMIN_OPEN_TO_ALL", severity: "error",
        message: `${what} (TCP ${port}) is open to anyone over IPv${family}`,
        fix: `allow TCP ${port} from your own hosts only (-s ADDRESS / ip saddr { … })`, rules: d?.rule ? [input.place(d.rule)] : [],
      });
      break;
    }
  }
}

/** A filtering hook whose chains all accept by policy and hold nothing that drops or rejects; true when the input hook is one. */
function acceptByPolicy(input: DoctorInput, findings: DoctorFinding[]): boolean {
  let inputOpen = false;
  for (const hook of ["input", "forward"] as const) {
    const bases = input.ruleset.tables.flatMap((t) => t.chains.filter((c) => c.base?.hook === hook && c.base.type !== "nat"));
    if (bases.length === 0 || bases.some((c) => c.base!.policy === "drop")) continue;
    const reached = chainsOnHooks(input.ruleset, [hook]).map((x) => x.rule);
    if (reached.some((r) => r.verdict.kind === "drop" || r.verdict.kind === "reject")) continue;
    if (hook === "forward" && !reached.length && !forwards(input.ruleset).length) continue; // a host that does not route
    if (hook === "input") inputOpen = true;
    findings.push({
      code: "POLICY_ACCEPT_NO_RULES", severity: hook === "input" ? "error" : "warning",
      message: `the ${hook} hook accepts by policy and nothing in it drops: ${hook === "input" ? "every port of this machine is open" : "everything this machine routes is forwarded"}`,
      fix: `set the ${hook} policy to drop and accept what you need (established connections first)`, rules: [],
    });
  }
  return inputOpen;
}

function shadowed(input: DoctorInput, findings: DoctorFinding[]): void {
  for (const t of input.ruleset.tables) for (const c of t.chains) {
    const by = shadowIndex(c.rules);
    c.rules.forEach((rule, i) => {
      const j = by(rule, i);
      if (j < 0 || rule.origin.source?.number === c.rules[j]!.origin.source?.number) return; // one rule read as several
      findings.push({
        code: "SHADOWED_RULE", severity: "warning",
        message: "this rule can never match: an earlier rule takes every packet it would", fix: "remove it, or move it above the rule that takes its packets",
        rules: [input.place(rule), input.place(c.rules[j]!)],
      });
    });
  }
}

