// What the machine is, as far as a diagnosis of its ruleset needs: the
// interface peers arrive on, its own addresses, and where routing sends a
// destination — from the options, a policy, the kernel (--live, read only),
// or a guess that is said in the notes.
import { userError } from "../errors.js";
import { parseAddress, type Address, type Family } from "../net/address.js";
import { parsePrefix, type Prefix } from "../net/prefix.js";
import type { ForeignRuleset } from "../parse/index.js";
import type { Policy } from "../policy/types.js";
import { staticEnvironment, type Environment } from "../sim/environment.js";
import { run } from "../system/run.js";

export interface MachineOptions {
  interface?: string;
  local: string[];
  route: string[];
}

export interface Machine {
  iface: string;
  local: Record<Family, Address>;
  addresses: { iface: string; address: Address }[];
  routes: { prefix: Prefix; iface: string }[];
  env: Environment;
}

export async function describeMachine(o: MachineOptions, policy: Policy | undefined, foreign: ForeignRuleset, live: boolean, notes: string[]): Promise<Machine> {
  const iface = o.interface ?? policy?.host?.interface ?? policy?.gateway?.wan ?? (live ? await defaultRouteDevice() : undefined) ?? guessInterface(foreign, notes);
  const { local, addresses } = await localAddresses(o, iface, live, policy, notes);
  const routes = [...parseRoutes(o.route), ...(live ? await liveRoutes() : [])];
  if (!live && o.route.length === 0) notes.push("forwards are checked only where the route to their target is known: give --route PREFIX=IFACE (--live reads the routes)");
  const env = staticEnvironment({ local: [local[4], local[6], ...addresses.map((a) => a.address)], routes, addresses: [{ iface, address: local[4] }, { iface, address: local[6] }, ...addresses] });
  return { iface, local, addresses, routes, env };
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

async function localAddresses(o: MachineOptions, iface: string, live: boolean, policy: Policy | undefined, notes: string[]) {
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

