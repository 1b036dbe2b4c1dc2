// apply, confirm, stop, status, diff, rollback, install, uninstall.
// Each command imports what it needs when it runs: apply should not pay for
// loading status, install or the confirm machinery.
import { compile } from "../compile/index.js";
import type { KernelBackendName } from "../backend/registry.js";
import { DEFAULT_STATE_DIR, StateDir, type Pending } from "../system/state.js";
import { resolvePolicyPath, loadPolicyHere } from "./policy-path.js";
import { printJson, type CommonOptions } from "./report.js";
import type { PortmapRecord } from "./portmap.js";

const system = {
  apply: () => import("../system/apply.js"),
  confirm: () => import("../system/confirm.js"),
  install: () => import("../system/install.js"),
  kernel: () => import("../system/kernel-state.js"),
  registry: () => import("../backend/registry.js"),
  status: () => import("../system/status.js"),
};

export interface SystemOptions extends CommonOptions { stateDir?: string; wait?: number | string }

const stateDirOf = (o: SystemOptions) => o.stateDir ?? process.env.SWARMGATE_STATE_DIR ?? DEFAULT_STATE_DIR;
const waitMs = (o: SystemOptions) => (o.wait !== undefined ? Number(o.wait) * 1000 : 60_000);
const say = (line: string) => process.stderr.write(`swarmgate: ${line}\n`);
const EXIT = { confirmed: 0, "rolled back": 3, cancelled: 3, "rollback failed": 4 } as const;

export async function runApply(file: string | undefined, o: SystemOptions & { backend?: KernelBackendName; dryRun?: boolean; force?: boolean; confirm?: number | string }): Promise<number> {
  const path = resolvePolicyPath(file);
  const policy = await loadPolicyHere(path);
  const ruleset = compile(policy);
  const { applyPolicy, requireRoot } = await system.apply();
  if (o.dryRun) {
    requireRoot("apply --dry-run", "reads the firewall");
    const name = o.backend ?? await (await system.kernel()).detectBackend();
    const changes = await (await system.status()).planChanges(ruleset, await (await system.registry()).kernelBackend(name), new StateDir(stateDirOf(o)));
    if (o.json) printJson({ ok: true, dryRun: true, backend: name, changes });
    else process.stdout.write(changes.length ? formatChanges(changes) : "no changes\n");
    return 0;
  }
  const seconds = o.confirm === undefined ? undefined : Number(o.confirm);
  const result = await applyPolicy(policy, { ...(o.backend && { backend: o.backend }), stateDir: stateDirOf(o), force: !!o.force, waitMs: waitMs(o), log: say, ...(seconds !== undefined && { confirmSeconds: seconds }) });
  const settings = Object.entries(result.changedSysctls).map(([k, v]) => `${k}=${v}`).join(", ");
  const { pending, ...applied } = result;
  if (!pending) {
    if (o.json) printJson({ ok: true, applied: path, ...applied });
    else process.stdout.write(`applied ${path} with ${result.backend} (the state before is backup ${result.backup})${settings ? `; set ${settings}` : ""}\n`);
    return 0;
  }
  say(`applied ${path} with ${result.backend}; run "swarmgate confirm" within ${seconds} s to keep it, or the previous ruleset comes back`);
  const { awaitOutcome, describeResult } = await system.confirm();
  const outcome = await awaitOutcome(new StateDir(stateDirOf(o)), pending);
  if (o.json) printJson({ ok: outcome.outcome === "confirmed", applied: path, outcome: outcome.outcome, ...(outcome.message && { message: outcome.message }), ...applied });
  else if (outcome.outcome === "confirmed") process.stdout.write(`confirmed: ${path} stays applied\n`);
  else (outcome.outcome === "rollback failed" ? process.stderr : process.stdout).write(`not kept: ${describeResult(outcome)}\n`);
  return EXIT[outcome.outcome];
}

export async function runConfirm(o: SystemOptions): Promise<number> {
  const p: Pending = await (await system.confirm()).confirm(stateDirOf(o), { waitMs: waitMs(o), log: say });
  if (o.json) printJson({ ok: true, confirmed: p.policy });
  else process.stdout.write(`confirmed: ${p.policy} stays applied\n`);
  return 0;
}

export async function runConfirmTimer(o: SystemOptions & { token: string }): Promise<number> {
  await (await system.confirm()).runTimer(new StateDir(stateDirOf(o)), o.token);
  return 0;
}

export async function runStop(o: SystemOptions): Promise<number> {
  const r = await (await system.apply()).stopFirewall({ stateDir: stateDirOf(o), waitMs: waitMs(o), log: say });
  const restored = Object.entries(r.restoredSysctls).map(([k, v]) => `${k}=${v}`).join(", ");
  if (o.json) { printJson({ ok: true, ...r }); return 0; }
  if (r.cancelledConfirmation) say("the pending confirmation is ended: nothing comes back at its deadline");
  process.stdout.write(`${r.removed ? "removed swarmgate's rules" : "swarmgate was not loaded"}${restored ? `; restored ${restored}` : ""}\n`);
  (r.fallback.startsWith("WARNING") ? process.stderr : process.stdout).write(`${r.fallback}\n`);
  return 0;
}

export async function runStatus(file: string | undefined, o: SystemOptions): Promise<number> {
  const { requireRoot, withState } = await system.apply();
  requireRoot("status", "reads the firewall");
  const { status } = await system.status();
  const { s, path, portmap } = await withState(stateDirOf(o), { waitMs: waitMs(o), log: say }, async (state, backends) => {
    const policyPath = file ?? state.record()?.policy;
    const ruleset = policyPath ? compile(await loadPolicyHere(resolvePolicyPath(policyPath))) : undefined;
    return { s: await status(backends, ruleset, state.read<Pending>("pending.json"), state), path: policyPath, portmap: state.read<PortmapRecord>("portmap.json") };
  });
  const ok = s.loaded && (s.drift?.inSync ?? true);
  const mapping = portmap && { ...portmap, ageSeconds: Math.round((Date.now() - Date.parse(portmap.obtainedAt)) / 1000), renewsInSeconds: Math.round((Date.parse(portmap.renewAt) - Date.now()) / 1000) };
  if (o.json) { printJson({ ok, policy: path, ...s, ...(mapping && { portmap: mapping }) }); return ok ? 0 : 1; }
  const lines: string[] = [];
  if (mapping) lines.push(`port mapping: ${mapping.protocol === "pcp" ? "PCP" : "NAT-PMP"} at ${mapping.gateway}: ${mapping.externalAddress}:${mapping.externalPort} → client ${mapping.client}, obtained ${mapping.ageSeconds} s ago, ${mapping.failures ? `NOT ANSWERED for ${mapping.failures} round(s) (${mapping.lastError}), next try` : "renews"} in ${Math.max(0, mapping.renewsInSeconds)} s (swarmgate portmap, pid ${mapping.pid})`);
  if (s.pending) lines.push(s.pending.confirmed ? `confirmed: ${s.pending.policy}` : `waiting for "swarmgate confirm" of ${s.pending.policy}: ${s.pending.secondsLeft} s left (until ${s.pending.deadline})`);
  if (!s.loaded) { process.stdout.write([...lines, "swarmgate is not loaded"].join("\n") + "\n"); return 1; }
  lines.push(`swarmgate is loaded (${s.backend})${s.drift ? (s.drift.inSync ? `, in sync with ${path}` : `, but it DRIFTED from what ${path} compiles to`) : ""}`);
  if (s.drift && !s.drift.inSync) {
    for (const m of s.drift.missing) lines.push(`  missing:    ${m.trim()}`);
    for (const u of s.drift.unexpected) lines.push(`  unexpected: ${u.trim()}`);
  }
  lines.push(`kernel settings: ${Object.entries(s.settings).map(([k, v]) => `${k}=${v}`).join(", ")}`, "", "Packets per rule:");
  const count = (n: number) => n.toLocaleString("en-US");
  const width = Math.max(...s.rules.map((r) => count(r.packets).length), 1);
  const bwidth = Math.max(...s.rules.map((r) => count(r.bytes).length), 1);
  for (const r of s.rules) lines.push(`  ${count(r.packets).padStart(width)} packets ${count(r.bytes).padStart(bwidth)} bytes  ${r.chain.padEnd(18)} ${r.intent}`);
  process.stdout.write(`${lines.join("\n")}\n`);
  return ok ? 0 : 1;
}

export async function runDiff(file: string | undefined, o: SystemOptions & { backend?: KernelBackendName }): Promise<number> {
  (await system.apply()).requireRoot("diff", "reads the firewall");
  const path = resolvePolicyPath(file);
  const ruleset = compile(await loadPolicyHere(path));
  const kernel = await system.kernel();
  const backends = await kernel.installedBackends();
  const loaded = kernel.loadedIn(await kernel.readState(backends));
  const name = o.backend ?? loaded ?? await kernel.detectBackend();
  const changes = await (await system.status()).planChanges(ruleset, await (await system.registry()).kernelBackend(name), new StateDir(stateDirOf(o)));
  if (o.json) { printJson({ ok: true, policy: path, backend: name, changes }); return 0; }
  if (changes.length === 0) { process.stdout.write(`no changes: what is loaded equals ${path}\n`); return 0; }
  process.stdout.write(formatChanges(changes));
  return 0;
}

/** Each change in the policy's words, with the rule itself beneath. */
function formatChanges(changes: { op: string; intent: string; line: string }[]): string {
  return changes.map((c) => (c.intent === c.line ? `${c.op} ${c.line}` : `${c.op} ${c.intent}\n    ${c.line}`)).join("\n") + "\n";
}

export async function runRollback(o: SystemOptions & { to?: string; list?: boolean }): Promise<number> {
  const state = new StateDir(stateDirOf(o));
  if (o.list) {
    const ids = state.listBackups();
    const record = state.record();
    if (o.json) printJson({ ok: true, backups: ids, current: record?.backup ?? null, origin: record?.origin ?? null });
    else process.stdout.write(ids.length ? `${ids.map((id) => `${id}${id === record?.backup ? "  (before the policy in force: the default for rollback)" : ""}${id === record?.origin ? "  (before swarmgate's first apply)" : ""}`).join("\n")}\n` : `no backups in ${state.backups}\n`);
    return 0;
  }
  const id = await (await system.apply()).rollbackTo({ stateDir: state.dir, ...(o.to && { to: o.to }), waitMs: waitMs(o), log: say });
  if (o.json) printJson({ ok: true, restored: id });
  else process.stdout.write(`restored backup ${id} (read back from the kernel)\n`);
  return 0;
}

export async function runInstall(file: string | undefined, o: SystemOptions & { root?: string; backend?: KernelBackendName; follow?: boolean; portmap?: boolean }): Promise<number> {
  const { install, installPaths, UNIT_NAME, FOLLOW_UNIT_NAME, PORTMAP_UNIT_NAME } = await system.install();
  const paths = installPaths(o.root ?? "/", stateDirOf(o));
  const r = install(paths, file, o.backend, { follow: !!o.follow, portmap: !!o.portmap });
  if (o.json) { printJson({ ok: true, ...r, policy: paths.policy }); return 0; }
  process.stdout.write(`wrote ${[r.unit, r.followUnit, r.portmapUnit, r.policyWritten ? paths.policy : undefined].filter(Boolean).join(" and ")}\n`);
  if ((o.root ?? "/") === "/") {
    const { run } = await import("../system/run.js");
    await run("systemctl", ["daemon-reload"]).catch(() => undefined); // no systemd running: the unit is there for the next boot
    process.stdout.write(`enable it with: systemctl enable --now ${[UNIT_NAME, r.followUnit && FOLLOW_UNIT_NAME, r.portmapUnit && PORTMAP_UNIT_NAME].filter(Boolean).join(" ")}\n`);
  }
  return 0;
}

export async function runUninstall(o: SystemOptions & { root?: string }): Promise<number> {
  const { uninstall, installPaths } = await system.install();
  const removed = uninstall(installPaths(o.root ?? "/", stateDirOf(o)));
  if (o.json) printJson({ ok: true, removed: removed ?? null });
  else process.stdout.write(removed ? `removed ${removed} (the policy in /etc/swarmgate stays)\n` : "nothing to remove\n");
  return 0;
}
