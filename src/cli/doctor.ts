// `swarmgate doctor`: the BitTorrent diagnosis of the firewall the machine
// has (--live) or that the files given hold (--from): which client ports to
// check, on which interface and addresses, then checks and findings (see
// analyze/doctor.ts), printed so that a person can act on them.
import { userError } from "../errors.js";
import type { Rule } from "../ir/ruleset.js";
import { formatAddress } from "../net/address.js";
import { doctor, type Doctor } from "../analyze/doctor.js";
import { exposure } from "../analyze/exposure.js";
import { exposureLines } from "./audit.js";
import { readForeign, type ForeignRuleset } from "../parse/index.js";
import type { Policy } from "../policy/types.js";
import { placeOf } from "./explain-from.js";
import { describeMachine, type MachineOptions } from "./machine.js";
import { clientPortWarnings, portInUse } from "../analyze/client-ports.js";
import { detectHere, loadDetection, resolvePolicyPath, loadPolicyHere } from "./policy-path.js";
import { printJson } from "./report.js";

export interface DoctorOptions extends MachineOptions {
  json?: boolean;
  /** Add the exact exposure report over every table (slower on big rulesets: see bench/foreign.mjs). */
  exposure?: boolean;
  live?: boolean;
  from: string[];
  port: number[];
}

export async function runDoctor(file: string | undefined, o: DoctorOptions): Promise<number> {
  if (o.live && o.from.length) throw userError("CLI_USAGE", "--live and --from both say where the ruleset comes from; give one");
  const live = o.live || o.from.length === 0;
  if (live) await loadDetection();
  const policy = file ? await loadPolicyHere(resolvePolicyPath(file)) : undefined;
  const foreign: ForeignRuleset = live ? await (await import("../parse/live.js")).readLive() : await readForeign(o.from);
  const notes = [...foreign.notes];

  const ports = await portsToCheck(o, policy, live, notes);
  const { iface, local, addresses, routes, env } = await describeMachine(o, policy, foreign, live, notes);
  const resolver = policy && policy.outbound.dns !== "any" ? policy.outbound.dns[0] : undefined;
  const result = doctor({ ruleset: foreign.ruleset, ports, iface, local, env, place: (r: Rule) => placeOf(r), ...(resolver && { resolver }) });
  // The machine's own clients beside the policy's ports (only where the ruleset is this machine's).
  if (live && policy?.role === "host" && policy.clients.length && !policy.clients.some((c) => c.auto)) {
    for (const message of clientPortWarnings(policy.clients, detectHere().clients)) {
      result.findings.push({ code: "CLIENT_PORT_MISMATCH", severity: "warning", message, fix: "make the policy's client port the one the client uses (or ports: auto), then apply it", rules: [] });
    }
  }

  const forwards = foreign.ruleset.tables.some((t) => t.chains.some((c) => c.base?.hook === "forward"));
  const exposed = o.exposure ? exposure(foreign.ruleset, env, { interfaces: [iface], local, forwards, routes: routes.map((r) => r.prefix), own: [local[4], local[6], ...addresses.map((a) => a.address)] }) : undefined;
  if (o.json) {
    printJson({ ok: result.ok, ports, interface: iface, local: { 4: formatAddress(local[4]), 6: formatAddress(local[6]) }, read: foreign.read, notes, checks: result.checks, findings: result.findings, ...(exposed && { exposure: exposed }) });
  } else {
    process.stdout.write(`${[...report(result, ports, iface, notes), ...(exposed ? exposureLines(exposed) : [])].join("\n")}\n`);
  }
  return result.ok ? 0 : 1;
}

/** --port, else the policy's clients, else the clients found listening (live), else 6881. */
async function portsToCheck(o: DoctorOptions, policy: Policy | undefined, live: boolean, notes: string[]): Promise<number[]> {
  if (o.port.length) return [...new Set(o.port)];
  if (policy?.clients.length) return [...new Set(policy.clients.map((c) => c.ports.first))];
  if (live) {
    // The clients running here, matched to their processes (swarmgate clients): their peer ports, not their Web UIs.
    const found = new Set(detectHere().clients.filter((c) => c.listening.length > 0).flatMap((c) => portInUse(c)?.port ?? []));
    if (found.size) { notes.push(`ports of the BitTorrent clients listening here: ${[...found].join(", ")}`); return [...found]; }
  }
  notes.push("no --port, no policy and no client found listening: checking 6881, the usual default");
  return [6881];
}

function report(r: Doctor, ports: number[], iface: string, notes: string[]): string[] {
  const pass = r.checks.filter((c) => c.status === "pass").length;
  const lines = [`doctor: ${pass} of ${r.checks.length} checks pass for port${ports.length > 1 ? "s" : ""} ${ports.join(", ")} on ${iface}; ${r.findings.length} finding(s)`];
  const bad = r.checks.filter((c) => c.status !== "pass");
  if (bad.length) {
    lines.push("", "What does not work:");
    for (const c of bad) lines.push(`  ${c.status.toUpperCase().padEnd(7)} ${c.id}: ${c.title} — ${c.detail}`);
  }
  if (r.findings.length) {
    lines.push("", "What is wrong besides:");
    for (const f of r.findings) {
      lines.push(`  ${f.severity.toUpperCase()} ${f.code}: ${f.message}`);
      for (const rule of f.rules) lines.push(`      ${rule.place}${rule.writer ? ` (${rule.writer})` : ""}: ${rule.text}`);
      lines.push(`      what to do: ${f.fix}`);
    }
  }
  lines.push("", "Checks that pass:", ...r.checks.filter((c) => c.status === "pass").map((c) => `  PASS    ${c.id}: ${c.title}`));
  if (notes.length) lines.push("", "Notes:", ...notes.map((n) => `  ${n}`));
  return lines;
}
