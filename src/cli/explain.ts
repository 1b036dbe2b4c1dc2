// `swarmgate explain`: why is this packet accepted or dropped?
import { compile } from "../compile/index.js";
import { emitNftRule } from "../backend/nft.js";
import { formatAddress } from "../net/address.js";
import type { Policy } from "../policy/types.js";
import { compileForSim } from "../sim/compiled.js";
import { policyEnvironment } from "../sim/policy-environment.js";
import { simulate, type TraceStep } from "../sim/simulate.js";
import { formatPacket, parsePacket } from "../sim/spec.js";
import type { Packet } from "../sim/packet.js";
import { resolvePolicyPath, loadPolicyHere } from "./policy-path.js";
import { printJson, type CommonOptions } from "./report.js";

export interface ExplainOptions extends CommonOptions {
  state?: string;
  flags?: string;
  /** Already checked by the option parser (main.ts); parsePacket checks again. */
  uid?: number;
}

/** "policy.yaml:12:5" for a policy path, walking up to the nearest located parent. */
export function locate(policy: Policy, path: string): string | undefined {
  for (let p = path; p !== ""; p = p.replace(/(\.[^.[\]]+|\[\d+\])$/, "")) {
    const pos = policy.source.positions.get(p);
    if (pos) return `${policy.source.file}:${pos.line}:${pos.column}`;
    if (!/(\.[^.[\]]+|\[\d+\])$/.test(p)) break;
  }
  return undefined;
}

function describeStep(s: TraceStep, policy: Policy) {
  return {
    hook: s.hook, chain: s.chain ? `${s.table}/${s.chain}` : "", kind: s.kind, action: s.action,
    ...(s.ruleIndex !== undefined && { rule: s.ruleIndex + 1 }),
    ...(s.rule && { text: emitNftRule(s.rule), intent: s.rule.origin.intent, path: s.rule.origin.path, location: locate(policy, s.rule.origin.path) }),
  };
}

export async function runExplain(file: string | undefined, spec: string, opts: ExplainOptions): Promise<number> {
  // An option and the same word in the packet is an error there (parsePacket), not an override.
  const packet = parsePacket(spec, { ...(opts.state !== undefined && { state: opts.state }), ...(opts.flags !== undefined && { flags: opts.flags }), ...(opts.uid !== undefined && { uid: opts.uid }) });
  const path = resolvePolicyPath(file);
  const policy = await loadPolicyHere(path);
  const result = simulate(compileForSim(compile(policy)), packet, policyEnvironment(policy, packet), { trace: true });
  const steps = result.trace.map((s) => describeStep(s, policy));
  const deciding = result.deciding && describeStep(result.deciding, policy);
  const translated = result.translated && {
    ...(result.translated.daddr && { daddr: formatAddress(result.translated.daddr) }),
    ...(result.translated.saddr && { saddr: formatAddress(result.translated.saddr) }),
    ...(result.translated.oif && { oif: result.translated.oif }),
  };
  const note = vpnNote(policy, packet, result.verdict);
  if (opts.json) {
    printJson({ verdict: result.verdict, packet: formatPacket(packet, formatAddress), path: result.path, translated, decidedBy: deciding, trace: steps, ...(note && { note }) });
    return 0;
  }
  const where = { input: "to this machine", forward: "forwarded", output: "sent by this machine" }[result.path];
  const lines = [`${result.verdict.toUpperCase()}: ${formatPacket(packet, formatAddress)} (${where})`];
  if (translated?.daddr) lines.push(`  translated: destination ${translated.daddr}${translated.oif ? `, out ${translated.oif}` : ""} (DNAT)`);
  lines.push("", "Path through the chains:");
  for (const s of steps) {
    if (s.kind === "route") { lines.push(`  ${s.hook.padEnd(11)} routing: ${s.action}`); continue; }
    const what = s.kind === "policy" ? `end of chain, ${s.action}` : `rule ${s.rule}: ${s.action}  (${s.intent})`;
    lines.push(`  ${s.hook.padEnd(11)} ${s.chain.padEnd(22)} ${what}`);
  }
  lines.push("");
  if (deciding?.kind === "rule") {
    lines.push(`Decided by rule ${deciding.rule} of ${deciding.chain}:`, `  ${deciding.text}`);
    if (deciding.path) lines.push(`  from the policy: ${deciding.path}${deciding.location ? ` at ${deciding.location}` : ""}`);
    else lines.push("  built in: every swarmgate policy has this rule");
  } else if (deciding) {
    lines.push(`Decided by the ${deciding.action} of ${deciding.chain}: no rule of the policy ${result.verdict === "drop" ? "allows" : "stops"} this packet.`);
  }
  if (note) lines.push("", note);
  process.stdout.write(`${lines.join("\n")}\n`);
  return 0;
}

/** Why a peer's packet to a client behind the VPN is dropped on the physical side: the answer people look for. */
function vpnNote(policy: Policy, packet: Packet, verdict: string): string | undefined {
  const vpn = policy.vpn;
  if (!vpn || verdict === "accept" || packet.iif === undefined || packet.oif !== undefined || packet.iif === vpn.interface || packet.dport === undefined) return undefined;
  const client = policy.clients.find((c) => packet.dport! >= c.ports.first && packet.dport! <= c.ports.last);
  return client && `client ${client.name} is confined to ${vpn.interface} (vpn): its port ${packet.dport} is open only through the tunnel, not via ${packet.iif}`;
}
