// `swarmgate doctor`: the BitTorrent diagnosis of the firewall the machine
// has (--live) or that the files given hold (--from): which client ports to
// check, on which interface and addresses, then checks and findings (see
// analyze/doctor.ts), printed so that a person can act on them.
import { userError } from "../errors.js";
import type { Rule } from "../ir/ruleset.js";
import { formatAddress, parseAddress, type Address, type Family } from "../net/address.js";
import { parsePrefix, type Prefix } from "../net/prefix.js";
import { doctor, type Doctor } from "../analyze/doctor.js";
import { exposure } from "../analyze/exposure.js";
import { exposureLines } from "./audit.js";
import { readForeignFiles, type ForeignRuleset } from "../parse/index.js";
import { loadPolicy } from "../policy/load.js";
import type { Policy } from "../policy/types.js";
import { staticEnvironment } from "../sim/environment.js";
import { run } from "../system/run.js";
import { placeOf } from "./explain-from.js";
import { resolvePolicyPath } from "./policy-path.js";
import { printJson } from "./report.js";

export interface DoctorOptions {
  json?: boolean;
  /** Add the exact exposure report over every table (slower on big rulesets: see bench/foreign.mjs). */
  exposure?: boolean;
  live?: boolean;
  from: string[];
  port: number[];
  interface?: string;
  local: string[];
  route: string[];
}

const CLIENT_PROCESSES = /"(qbittorrent-nox|qbittorrent|transmission-da|transmission-daemon|deluged|rtorrent|aria2c)"/;

export async function runDoctor(file: string | undefined, o: DoctorOptions): Promise<number> {
  if (o.live && o.from.length) throw userError("CLI_USAGE", "--live and --from both say where the ruleset comes from; give one");
  const live = o.live || o.from.length === 0;
  const policy = file ? loadPolicy(resolvePolicyPath(file)) : undefined;
  const foreign: ForeignRuleset = live ? await (await import("../parse/live.js")).readLive() : readForeignFiles(o.from);
  const notes = [...foreign.notes];

  const ports = await portsToCheck(o, policy, live, notes);
  const iface = o.interface ?? policy?.host?.interface ?? policy?.gateway?.wan ?? (live ? await defaultRouteDevice() : undefined) ?? guessInterface(foreign, notes);
  const { local, addresses } = await localAddresses(o, iface, live, policy, notes);
  const routes = [...parseRoutes(o.route), ...(live ? await liveRoutes() : [])];
  if (!live && o.route.length === 0) notes.push("forwards are checked only where the route to their target is known: give --route PREFIX=IFACE (--live reads the routes)");
  const env = staticEnvironment({ local: [local[4], local[6], ...addresses.map((a) => a.address)], routes, addresses: [{ iface, address: local[4] }, { iface, address: local[6] }, ...addresses] });
  const resolver = policy && policy.outbound.dns !== "any" ? policy.outbound.dns[0] : undefined;
  const result = doctor({ ruleset: foreign.ruleset, ports, iface, local, env, place: (r: Rule) => placeOf(r), ...(resolver && { resolver }) });

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
    const r = await run("ss", ["-H", "-lntup"]).catch(() => undefined);
    const found = new Set<number>();
    for (const line of r?.stdout.split("\n") ?? []) {
      if (!CLIENT_PROCESSES.test(line)) continue;
      const port = /[\]:*](\d+)\s/.exec(line.split(/\s+/).slice(4, 5).join(" ") + " ")?.[1];
      if (port) found.add(Number(port));
    }
    if (found.size) { notes.push(`ports of the BitTorrent clients listening here: ${[...found].join(", ")}`); return [...found]; }
  }
  notes.push("no --port, no policy and no client found listening: checking 6881, the usual default");
  return [6881];
}

async function defaultRouteDevice(): Promise<string | undefined> {
  const r = await run("ip", ["-j", "route", "show", "default"]).catch(() => undefined);
  try { return (JSON.parse(r?.stdout ?? "[]") as { dev?: string }[])[0]?.dev; } catch { return undefined; }
}

/** Interfaces of containers, VMs and tunnels: not where peers arrive from the internet. */
const VIRTUAL = /^(lo|docker\d*|br-|virbr|veth|cni|flannel|tun|tap|wg|vnet|lxc)/;

/** The interface the rules name most (not loopback, a bridge for containers or a tunnel); eth0 when none. */
function guessInterface(foreign: ForeignRuleset, notes: string[]): string {
  const count = new Map<string, number>();
  for (const t of foreign.ruleset.tables) for (const c of t.chains) for (const r of c.rules) {
    for (const m of r.matches) if ((m.kind === "iifname" || m.kind === "oifname") && !m.wildcard && !VIRTUAL.test(m.name)) count.set(m.name, (count.get(m.name) ?? 0) + 1);
  }
  const best = [...count].sort((a, b) => b[1] - a[1])[0]?.[0] ?? "eth0";
  notes.push(`peers are taken to arrive on ${best} (the interface the rules name most); give --interface to choose`);
  return best;
}

async function localAddresses(o: DoctorOptions, iface: string, live: boolean, policy: Policy | undefined, notes: string[]) {
  const addresses: { iface: string; address: Address }[] = [];
  const local: Partial<Record<Family, Address>> = {};
  for (const spec of o.local) {
    const eq = spec.indexOf("=");
    const a = eq > 0 ? parseAddress(spec.slice(eq + 1)) : undefined;
    if (!a) throw userError("CLI_USAGE", `--local takes IFACE=ADDRESS, not "${spec}"`);
    addresses.push({ iface: spec.slice(0, eq), address: a });
    if (spec.slice(0, eq) === iface) local[a.family] ??= a;
  }
  for (const a of policy?.host?.addresses ?? []) local[a.address.family] ??= a.address;
  if (live && (!local[4] || !local[6])) {
    const r = await run("ip", ["-j", "addr", "show", "dev", iface]).catch(() => undefined);
    try {
      const info = JSON.parse(r?.stdout ?? "[]") as { addr_info?: { family: string; local: string; scope: string }[] }[];
      for (const x of info[0]?.addr_info ?? []) {
        const a = x.scope === "global" ? parseAddress(x.local) : undefined;
        if (a) local[a.family] ??= a;
      }
    } catch { /* no such interface: the guesses below */ }
  }
  const fallback: Record<Family, string> = { 4: "192.0.2.1", 6: "2001:db8::1" };
  for (const f of [4, 6] as Family[]) {
    if (!local[f]) { local[f] = parseAddress(fallback[f])!; notes.push(`no IPv${f} address of ${iface} known: ${fallback[f]} stands for it (give --local ${iface}=ADDRESS)`); }
  }
  return { local: local as Record<Family, Address>, addresses };
}

function parseRoutes(specs: string[]): { prefix: Prefix; iface: string }[] {
  return specs.map((spec) => {
    const eq = spec.indexOf("=");
    const p = eq > 0 ? parsePrefix(spec.slice(0, eq), "interface") : undefined;
    if (!p?.ok || eq === spec.length - 1) throw userError("CLI_USAGE", `--route takes PREFIX=IFACE, not "${spec}"`);
    return { prefix: p.prefix, iface: spec.slice(eq + 1) };
  });
}

async function liveRoutes(): Promise<{ prefix: Prefix; iface: string }[]> {
  const out: { prefix: Prefix; iface: string }[] = [];
  for (const family of ["-4", "-6"]) {
    const r = await run("ip", [family, "-j", "route", "show"]).catch(() => undefined);
    let list: { dst?: string; dev?: string }[] = [];
    try { list = JSON.parse(r?.stdout ?? "[]"); } catch { /* none */ }
    for (const x of list) {
      if (!x.dev || !x.dst) continue;
      const p = x.dst === "default" ? parsePrefix(family === "-4" ? "0.0.0.0/0" : "::/0") : parsePrefix(x.dst, "interface");
      if (p.ok) out.push({ prefix: p.prefix, iface: x.dev });
    }
  }
  return out;
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
