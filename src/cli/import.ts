// `swarmgate import`: a policy from the firewall the machine has (--live) or
// that files hold (--from), and the exact difference in exposure between the
// two — what the policy closes that was open, what it opens that was closed —
// computed by the exposure analysis on both. A ruleset that forwards (or
// --gateway) gives a gateway policy, judged on the WAN and the LAN, forwarded
// connections included. The policy is checked by the policy loader before it
// is written, and written whole or not at all.
import { exposure, type Exposure, type ExposureSpace } from "../analyze/exposure.js";
import { exposureDiff, type DiffLine } from "../analyze/exposure-diff.js";
import { isGateway, readGatewayNat, wanOf } from "../analyze/gateway-nat.js";
import { importPolicy, type Imported } from "../analyze/import.js";
import { importGatewayPolicy } from "../analyze/import-gateway.js";
import { compile } from "../compile/index.js";
import { anyPrefix, parsePrefix, prefixContains, type Prefix } from "../net/prefix.js";
import { readForeign, type ForeignRuleset } from "../parse/index.js";
import { parsePolicy } from "../policy/load.js";
import { staticEnvironment, type Environment } from "../sim/environment.js";
import { writeFilesAtomically } from "../system/files.js";
import { userError } from "../errors.js";
import { describeMachine, type Machine, type MachineOptions } from "./machine.js";
import { printJson } from "./report.js";

export interface ImportOptions extends MachineOptions {
  json?: boolean;
  live?: boolean;
  from: string[];
  output?: string;
  gateway?: boolean;
  lan?: string;
  lanNetwork?: string[];
}

interface Judged { imported: Imported; before: Exposure[]; env: Environment; space: ExposureSpace; interfaces: string[] }

export async function runImport(o: ImportOptions): Promise<number> {
  if (o.live && o.from.length) throw userError("CLI_USAGE", "--live and --from both say where the ruleset comes from; give one");
  const live = o.live || o.from.length === 0;
  const foreign: ForeignRuleset = live ? await (await import("../parse/live.js")).readLive() : await readForeign(o.from);
  const notes = [...foreign.notes];
  const source = live ? "this machine's ruleset" : o.from.join(", ");
  const nat = readGatewayNat(foreign.ruleset);
  const gateway = o.gateway || isGateway(nat);
  if (!gateway && (o.lan || o.lanNetwork?.length)) throw userError("CLI_USAGE", "--lan and --lan-network describe a gateway: this ruleset does not forward; add --gateway to import it as one");
  const wan = o.interface ?? (gateway ? wanOf(nat) : undefined);
  const machine = await describeMachine({ ...o, interface: wan }, undefined, foreign, live, notes);
  let judged: Judged;
  if (gateway) {
    const lan = lanOf(o, machine, nat.dnats.map((d) => d.to), nat.accepts.filter((a) => a.oif === machine.iface).flatMap((a) => a.saddr), nat.masquerades.flatMap((m) => m.saddr));
    const env = gatewayEnvironment(machine, lan.routes);
    const space: ExposureSpace = { interfaces: [machine.iface, lan.lan], local: machine.local, forwards: true, routes: lan.routes.map((r) => r.prefix), own: [machine.local[4], machine.local[6], ...machine.addresses.map((a) => a.address)] };
    const before = exposure(foreign.ruleset, env, space);
    const imported = importGatewayPolicy({ exposure: before, wan: machine.iface, lan: lan.lan, lanNetwork: lan.lanNetwork, ...(lan.lanNetwork6 && { lanNetwork6: lan.lanNetwork6 }), nat, lanRoutes: lan.routes.filter((r) => r.iface === lan.lan).map((r) => r.prefix), local: machine.local, source, learnt: { wan: o.interface ? "" : nat.dnats.length ? "the interface the DNAT rules take packets from" : "", lan: lan.learnt } });
    judged = { imported, before, env, space, interfaces: [machine.iface, lan.lan] };
  } else {
    const space = { interfaces: [machine.iface], local: machine.local, forwards: false, routes: [], own: [machine.local[4], machine.local[6]] };
    const before = exposure(foreign.ruleset, machine.env, space);
    judged = { imported: importPolicy({ exposure: before, iface: machine.iface, local: machine.local, source }), before, env: machine.env, space, interfaces: [machine.iface] };
  }
  const { imported, before, env, space, interfaces } = judged;
  // The loader is the judge of what was written: a policy it refuses is a bug here, never a file.
  const policy = parsePolicy(imported.yaml, o.output ?? "imported.yaml");
  const after = exposure(compile(policy), env, space);
  const diffs = interfaces.map((iface) => ({ iface, ...exposureDiff(before, after, iface) }));
  // A host's lines are as they were; a gateway's name their interface.
  const tag = (iface: string, d: DiffLine) => (gateway ? { interface: iface, ...d } : d);
  const closes = diffs.flatMap((d) => d.closes.map((l) => tag(d.iface, l)));
  const opens = diffs.flatMap((d) => d.opens.map((l) => tag(d.iface, l)));
  if (o.output) writeFilesAtomically([{ path: o.output, text: imported.yaml, mode: 0o644 }]);
  if (o.json) {
    printJson({ ok: true, role: gateway ? "gateway" : "host", policy: imported.yaml, ...(o.output && { written: o.output }), closes, opens, notExpressed: imported.notExpressed, notes });
    return 0;
  }
  const line = (d: DiffLine & { interface?: string }) => `${d.direction.padEnd(10)}${d.interface ? `${d.interface}: ` : ""}${d.protocol.toUpperCase()} ${d.ports} ${d.direction === "outbound" ? "to" : "from"} ${d.peers}${d.target ? ` → ${d.target}` : ""}, IPv${d.family}${d.was ? ` — was ${d.was}` : ""}`;
  const out = [
    ...(o.output ? [`wrote ${o.output}`] : ["The policy (write it with -o FILE):", "", imported.yaml]),
    "What the policy closes that was open:", ...(closes.length ? closes.map((d) => `  ${line(d)}`) : ["  nothing"]),
    "", "What the policy opens that was closed:", ...(opens.length ? opens.map((d) => `  ${line(d)}`) : ["  nothing"]),
    ...(imported.notExpressed.length ? ["", "What a policy cannot say (left closed):", ...imported.notExpressed.map((n) => `  ${n}`)] : []),
    ...(notes.length ? ["", "Notes:", ...notes.map((n) => `  ${n}`)] : []),
  ];
  process.stdout.write(`${out.join("\n")}\n`);
  return 0;
}

interface Lan { lan: string; lanNetwork: Prefix; lanNetwork6?: Prefix; routes: { prefix: Prefix; iface: string }[]; learnt: string }

/**
 * The LAN behind the gateway: --lan and --lan-network, else the route (--route, or the kernel's with --live)
 * that leads to the DNAT targets, or to the sources the WAN forwards and masquerades. Without one: a usage error.
 */
function lanOf(o: ImportOptions, machine: Machine, targets: { family: 4 | 6; value: bigint }[], ...sourceLists: Prefix[][]): Lan {
  const given = (o.lanNetwork ?? []).map((t) => {
    const p = parsePrefix(t, "interface");
    if (!p.ok) throw userError("CLI_USAGE", `--lan-network takes a network, e.g. 192.168.1.0/24, not "${t}": ${p.reason}`);
    return p.prefix;
  });
  const wan = machine.iface;
  const routes = machine.routes.filter((r) => r.prefix.length > 0 && r.iface !== wan);
  const leadsTo = (r: { prefix: Prefix }) => targets.some((t) => prefixContains(r.prefix, t)) || sourceLists.some((l) => l.some((s) => s.family === r.prefix.family && prefixContains(r.prefix, { family: s.family, value: s.network })));
  const lan = o.lan ?? routes.find((r) => r.prefix.family === 4 && leadsTo(r))?.iface;
  const net4 = given.find((p) => p.family === 4) ?? (lan === undefined ? undefined : routes.find((r) => r.iface === lan && r.prefix.family === 4 && (o.lan !== undefined || leadsTo(r)))?.prefix);
  if (lan === undefined || net4 === undefined) {
    throw userError("CLI_USAGE", `this ruleset forwards${o.gateway ? " (--gateway)" : ""}, and the LAN behind ${wan} is not known: give --lan IFACE --lan-network PREFIX (e.g. --lan br-lan --lan-network 192.168.1.0/24), or the route to it with --route PREFIX=IFACE (--live reads the routes)`);
  }
  if (lan === wan) throw userError("CLI_USAGE", `the LAN interface ${lan} is the WAN's too: give --lan, or --interface for the WAN`);
  const isLinkLocal = (p: Prefix) => p.family === 6 && p.length >= 10 && (p.network >> 118n) === 0x3fan;
  const net6 = given.find((p) => p.family === 6) ?? routes.find((r) => r.iface === lan && r.prefix.family === 6 && !isLinkLocal(r.prefix))?.prefix;
  const extra = [{ prefix: net4, iface: lan }, ...(net6 ? [{ prefix: net6, iface: lan }] : [])];
  const learnt = o.lan ? "" : "the route to the forwarded hosts";
  return { lan, lanNetwork: net4, ...(net6 && { lanNetwork6: net6 }), routes: [...extra, ...routes.filter((r) => !extra.some((x) => x.prefix.network === r.prefix.network && x.prefix.length === r.prefix.length && x.prefix.family === r.prefix.family))], learnt };
}

/** The machine's environment with the LAN's routes first, and the WAN as the default route where none is known. */
function gatewayEnvironment(machine: Machine, lanRoutes: { prefix: Prefix; iface: string }[]): Environment {
  const defaults = ([4, 6] as const).filter((f) => !machine.routes.some((r) => r.prefix.family === f && r.prefix.length === 0)).map((f) => ({ prefix: anyPrefix(f), iface: machine.iface }));
  return staticEnvironment({
    local: [machine.local[4], machine.local[6], ...machine.addresses.map((a) => a.address)],
    routes: [...lanRoutes, ...machine.routes, ...defaults],
    addresses: [{ iface: machine.iface, address: machine.local[4] }, { iface: machine.iface, address: machine.local[6] }, ...machine.addresses],
  });
}
