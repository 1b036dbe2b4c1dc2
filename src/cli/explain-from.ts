// `swarmgate explain --from FILE … PACKET`: the same question as explain, on a
// ruleset another tool wrote (iptables-save, ip6tables-save and ipset save
// output). Every table on each hook runs in priority order; the deciding rule
// is printed as its own tool wrote it, with its file, line, table, chain and
// number, and the program that wrote it where its names tell. A verdict that
// depends on a test no single packet decides says so, with each way it falls.
import { userError } from "../errors.js";
import type { Rule } from "../ir/ruleset.js";
import { formatAddress, parseAddress, type Address } from "../net/address.js";
import { parsePrefix, type Prefix } from "../net/prefix.js";
import { readForeign } from "../parse/index.js";
import { simulateAll, type BranchedResult } from "../sim/branches.js";
import { compileForSim } from "../sim/compiled.js";
import { staticEnvironment, type Environment } from "../sim/environment.js";
import { pathOf, type Packet } from "../sim/packet.js";
import type { SimResult, TraceStep } from "../sim/simulate.js";
import { formatPacket, parsePacket } from "../sim/spec.js";
import { printJson } from "./report.js";
import type { ExplainOptions } from "./explain.js";

export interface ExplainFromOptions extends ExplainOptions {
  from: string[];
  /** Read the machine's own ruleset instead of files (root). */
  live?: boolean;
  /** "PREFIX=IFACE": where routing sends a destination (a DNAT target's network). */
  route?: string[];
  /** "IFACE=ADDRESS": an address of this machine (masquerade, redirect, fib/addrtype LOCAL). */
  local?: string[];
}

/** The rule as its tool wrote it, and where. */
export function placeOf(rule: Rule): { text: string; place: string; writer?: string } {
  const s = rule.origin.source;
  if (!s) return { text: rule.origin.intent, place: rule.origin.path };
  const place = s.format === "nft-json"
    ? `${s.file}: table ${s.table} chain ${s.chain} rule ${s.number}${s.handle !== undefined ? ` (handle ${s.handle})` : ""}`
    : `${s.file}:${s.line} ${s.table}/${s.chain} rule ${s.number}`;
  return { text: s.text, place, ...(s.writer && { writer: s.writer }) };
}

/**
 * What the machine is, as far as one packet needs: its own addresses (the
 * packet's destination when it arrives for this machine, its source when it
 * sends it, and --local), and the routes given with --route.
 */
function environmentFor(packet: Packet, opts: ExplainFromOptions): Environment {
  const local: Address[] = [];
  const addresses: { iface: string; address: Address }[] = [];
  for (const spec of opts.local ?? []) {
    const [iface, text] = splitPair(spec, "--local", "IFACE=ADDRESS");
    const a = parseAddress(text);
    if (!a) throw userError("CLI_USAGE", `--local ${spec}: "${text}" is not an IPv4 or IPv6 address`);
    local.push(a);
    addresses.push({ iface, address: a });
  }
  const path = pathOf(packet);
  if (path === "input") { local.push(packet.daddr); if (packet.iif) addresses.push({ iface: packet.iif, address: packet.daddr }); }
  if (path === "output") { local.push(packet.saddr); if (packet.oif) addresses.push({ iface: packet.oif, address: packet.saddr }); }
  const routes: { prefix: Prefix; iface: string }[] = (opts.route ?? []).map((spec) => {
    const [text, iface] = splitPair(spec, "--route", "PREFIX=IFACE");
    const p = parsePrefix(text, "interface");
    if (!p.ok) throw userError("CLI_USAGE", `--route ${spec}: ${p.reason}`);
    return { prefix: p.prefix, iface };
  });
  if (path === "forward" && packet.oif) routes.push({ prefix: { family: packet.daddr.family, network: packet.daddr.value, length: packet.daddr.family === 4 ? 32 : 128 }, iface: packet.oif });
  return staticEnvironment({ local, routes, addresses });
}

function splitPair(spec: string, flag: string, shape: string): [string, string] {
  const eq = spec.indexOf("=");
  if (eq <= 0 || eq === spec.length - 1) throw userError("CLI_USAGE", `${flag} takes ${shape}, not "${spec}"`);
  return [spec.slice(0, eq), spec.slice(eq + 1)];
}

function describeStep(s: TraceStep) {
  return {
    hook: s.hook, chain: s.chain ? `${s.table}/${s.chain}` : "", kind: s.kind, action: s.action,
    // Its number in its own tool's chain: a rule read as several (a set of alternatives) is still one rule there.
    ...(s.ruleIndex !== undefined && { rule: s.rule?.origin.source?.number ?? s.ruleIndex + 1 }),
    ...(s.rule && placeOf(s.rule)),
  };
}

function translatedOf(r: SimResult) {
  return r.translated && {
    ...(r.translated.daddr && { daddr: formatAddress(r.translated.daddr) }),
    ...(r.translated.saddr && { saddr: formatAddress(r.translated.saddr) }),
    ...(r.translated.oif && { oif: r.translated.oif }),
    ...(r.translated.dport !== undefined && { dport: r.translated.dport }),
  };
}

export async function runExplainFrom(spec: string, opts: ExplainFromOptions): Promise<number> {
  const packet = parsePacket(spec, { ...(opts.state !== undefined && { state: opts.state }), ...(opts.flags !== undefined && { flags: opts.flags }), ...(opts.uid !== undefined && { uid: opts.uid }) });
  const env = environmentFor(packet, opts);
  const foreign = opts.live ? await (await import("../parse/live.js")).readLive() : await readForeign(opts.from);
  const all = simulateAll(compileForSim(foreign.ruleset), packet, env, { trace: true });
  const first = all.branches[0]!.result;
  const dependsOn = all.conditions.map((c) => ({ condition: c.condition.text, ...(c.rule && placeOf(c.rule)) }));
  if (opts.json) {
    printJson({
      verdict: all.verdict, packet: formatPacket(packet, formatAddress), path: first.path, read: foreign.read, ...(foreign.notes.length && { notes: foreign.notes }),
      ...(all.verdict === "depends" && { dependsOn, branches: all.branches.map((b) => ({ assumed: b.assumed.map((a) => ({ condition: a.condition.text, holds: a.holds })), verdict: b.result.verdict, decidedBy: b.result.deciding && describeStep(b.result.deciding) })) }),
      ...(all.truncated && { truncated: true }),
      translated: translatedOf(first), decidedBy: first.deciding && describeStep(first.deciding), trace: first.trace.map(describeStep),
    });
    return 0;
  }
  process.stdout.write(`${textReport(packet, all).join("\n")}\n`);
  return 0;
}

function textReport(packet: Packet, all: BranchedResult): string[] {
  const first = all.branches[0]!.result;
  const where = { input: "to this machine", forward: "forwarded", output: "sent by this machine" }[first.path];
  const lines = [`${all.verdict.toUpperCase()}: ${formatPacket(packet, formatAddress)} (${where})`];
  const t = translatedOf(first);
  if (t?.daddr) lines.push(`  translated: destination ${t.daddr}${t.dport !== undefined ? ` port ${t.dport}` : ""}${t.oif ? `, out ${t.oif}` : ""} (DNAT)`);
  if (all.verdict === "depends") {
    lines.push("", "The verdict depends on what no single packet decides:");
    for (const c of all.conditions) {
      const p = c.rule && placeOf(c.rule);
      lines.push(`  ${c.condition.text}${p ? ` at ${p.place}` : ""}`);
    }
    lines.push("", "Each way:");
    for (const b of all.branches) {
      const d = b.result.deciding && describeStep(b.result.deciding);
      const assumed = b.assumed.map((a) => `${a.holds ? "" : "not "}${a.condition.text}`).join("; ");
      lines.push(`  ${b.result.verdict.toUpperCase()} when ${assumed}${d ? ` (decided by ${"place" in d ? d.place : `the ${d.action} of ${d.chain}`})` : ""}`);
    }
    if (all.truncated) lines.push("  … and more ways not followed");
  }
  lines.push("", all.verdict === "depends" ? "Path through the chains (when every condition holds):" : "Path through the chains:");
  for (const s of first.trace.map(describeStep)) {
    if (s.kind === "route") { lines.push(`  ${s.hook.padEnd(11)} routing: ${s.action}`); continue; }
    const what = s.kind === "policy" ? `end of chain, ${s.action}` : `rule ${s.rule}: ${s.action}  ${"text" in s ? s.text : ""}`;
    lines.push(`  ${s.hook.padEnd(11)} ${s.chain.padEnd(22)} ${what}`);
  }
  if (first.trace.length === 0) lines.push(`  (none: no table in the files given holds IPv${packet.family} rules, so nothing filters this packet)`);
  const d = first.deciding && describeStep(first.deciding);
  if (d && all.verdict !== "depends") {
    lines.push("");
    if (d.kind === "rule" && "place" in d) {
      lines.push(`Decided by ${d.place}${d.writer ? ` (written by ${d.writer})` : ""}:`, `  ${d.text}`);
    } else {
      lines.push(`Decided by the ${d.action} of ${d.chain}: no rule ${first.verdict === "accept" ? "stops" : "allows"} this packet.`);
    }
  }
  return lines;
}
