// apply, confirm, stop, status, diff, rollback, install, uninstall.
// Each command imports what it needs when it runs: apply should not pay for
// loading status, install or the confirm machinery.
import { compile } from "../compile/index.js";
import { loadPolicy } from "../policy/load.js";
import type { Backend } from "../system/kernel.js";
import { DEFAULT_STATE_DIR, StateDir, type Applied } from "../system/state.js";
import { resolvePolicyPath } from "./policy-path.js";
import { printJson, type CommonOptions } from "./report.js";

const system = {
  apply: () => import("../system/apply.js"),
  confirm: () => import("../system/confirm.js"),
  install: () => import("../system/install.js"),
  kernel: () => import("../system/kernel.js"),
  status: () => import("../system/status.js"),
};

export interface SystemOptions extends CommonOptions { stateDir?: string; wait?: string }

const stateDirOf = (o: SystemOptions) => o.stateDir ?? process.env.SWARMGATE_STATE_DIR ?? DEFAULT_STATE_DIR;
const waitMs = (o: SystemOptions) => (o.wait !== undefined ? Number(o.wait) * 1000 : 60_000);
const say = (line: string) => process.stderr.write(`swarmgate: ${line}\n`);

export async function runApply(file: string | undefined, o: SystemOptions & { backend?: Backend; dryRun?: boolean; force?: boolean; confirm?: string }): Promise<number> {
  const path = resolvePolicyPath(file);
  const policy = loadPolicy(path);
  const ruleset = compile(policy);
  const { applyPolicy, requireRoot } = await system.apply();
  if (o.dryRun) {
    requireRoot("apply --dry-run");
    const backend = o.backend ?? await (await system.kernel()).detectBackend();
    const changes = await (await system.status()).planChanges(ruleset, backend);
    if (o.json) printJson({ ok: true, dryRun: true, backend, changes });
    else process.stdout.write(changes.length ? formatChanges(changes) : "no changes\n");
    return 0;
  }
  const result = await applyPolicy(policy, { ...(o.backend && { backend: o.backend }), stateDir: stateDirOf(o), force: !!o.force, waitMs: waitMs(o), log: say });
  const settings = Object.entries(result.changedSysctls).map(([k, v]) => `${k}=${v}`).join(", ");
  if (!o.confirm) {
    if (o.json) printJson({ ok: true, applied: path, ...result });
    else process.stdout.write(`applied ${path} with ${result.backend} (previous ruleset saved as ${result.backup})${settings ? `; set ${settings}` : ""}\n`);
    return 0;
  }
  const seconds = Number(o.confirm);
  const state = new StateDir(stateDirOf(o));
  const { startConfirmation, awaitOutcome } = await system.confirm();
  const pending = startConfirmation(state, result.backup, seconds);
  say(`applied ${path} with ${result.backend}; run "swarmgate confirm" within ${seconds} s to keep it, or the previous ruleset comes back`);
  const outcome = await awaitOutcome(state, pending);
  if (o.json) printJson({ ok: outcome === "confirmed", applied: path, outcome, ...result });
  else process.stdout.write(outcome === "confirmed" ? `confirmed: ${path} stays applied\n` : `not confirmed in time: the previous ruleset (${result.backup}) is back\n`);
  return outcome === "confirmed" ? 0 : 3;
}

export async function runConfirm(o: SystemOptions): Promise<number> {
  (await system.confirm()).confirm(new StateDir(stateDirOf(o)));
  process.stdout.write("confirmed\n");
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
  process.stdout.write(`${r.removed ? "removed swarmgate's rules" : "swarmgate was not loaded"}${restored ? `; restored ${restored}` : ""}\n`);
  (r.fallback.startsWith("WARNING") ? process.stderr : process.stdout).write(`${r.fallback}\n`);
  return 0;
}

export async function runStatus(file: string | undefined, o: SystemOptions): Promise<number> {
  (await system.apply()).requireRoot("status");
  const applied = new StateDir(stateDirOf(o)).read<Applied>("applied.json");
  const path = file ?? applied?.policy;
  const ruleset = path ? compile(loadPolicy(resolvePolicyPath(path))) : undefined;
  const s = await (await system.status()).status(ruleset);
  const ok = s.loaded && (s.drift?.inSync ?? true);
  if (o.json) { printJson({ ok, policy: path, ...s }); return ok ? 0 : 1; }
  if (!s.loaded) { process.stdout.write("swarmgate is not loaded\n"); return 1; }
  const lines = [`swarmgate is loaded (${s.backend})${s.drift ? (s.drift.inSync ? `, in sync with ${path}` : `, but it DRIFTED from what ${path} compiles to`) : ""}`];
  if (s.drift && !s.drift.inSync) {
    for (const m of s.drift.missing) lines.push(`  missing:    ${m.trim()}`);
    for (const u of s.drift.unexpected) lines.push(`  unexpected: ${u.trim()}`);
  }
  lines.push("", "Packets per rule:");
  const count = (n: number) => n.toLocaleString("en-US");
  const width = Math.max(...s.rules.map((r) => count(r.packets).length), 1);
  const bwidth = Math.max(...s.rules.map((r) => count(r.bytes).length), 1);
  for (const r of s.rules) lines.push(`  ${count(r.packets).padStart(width)} packets ${count(r.bytes).padStart(bwidth)} bytes  ${r.chain.padEnd(18)} ${r.intent}`);
  process.stdout.write(`${lines.join("\n")}\n`);
  return ok ? 0 : 1;
}

export async function runDiff(file: string | undefined, o: SystemOptions & { backend?: Backend }): Promise<number> {
  (await system.apply()).requireRoot("diff");
  const path = resolvePolicyPath(file);
  const ruleset = compile(loadPolicy(path));
  const kernel = await system.kernel();
  const backend = o.backend ?? (await kernel.loadedBackend()) ?? await kernel.detectBackend();
  const changes = await (await system.status()).planChanges(ruleset, backend);
  if (o.json) { printJson({ ok: true, policy: path, backend, changes }); return 0; }
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
    if (o.json) printJson({ ok: true, backups: ids });
    else process.stdout.write(ids.length ? `${ids.join("\n")}\n` : "no backups\n");
    return 0;
  }
  const id = await (await system.apply()).rollbackTo({ stateDir: state.dir, ...(o.to && { to: o.to }), waitMs: waitMs(o), log: say });
  if (o.json) printJson({ ok: true, restored: id });
  else process.stdout.write(`restored backup ${id}\n`);
  return 0;
}

export async function runInstall(file: string | undefined, o: SystemOptions & { root?: string; backend?: Backend }): Promise<number> {
  const { install, installPaths, UNIT_NAME } = await system.install();
  const paths = installPaths(o.root ?? "/", stateDirOf(o));
  const r = install(paths, file, o.backend);
  if (o.json) { printJson({ ok: true, ...r, policy: paths.policy }); return 0; }
  process.stdout.write(`wrote ${r.unit}${r.policyWritten ? ` and ${paths.policy}` : ""}\n`);
  if ((o.root ?? "/") === "/") {
    const { run } = await import("../system/run.js");
    await run("systemctl", ["daemon-reload"]).catch(() => undefined); // no systemd running: the unit is there for the next boot
    process.stdout.write(`enable it with: systemctl enable --now ${UNIT_NAME}\n`);
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
