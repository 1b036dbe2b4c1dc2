// One trial of the fault matrix: a fresh namespace and state directory
// restored from a template, the checks of the invariants against the
// references, and the report a failing check prints.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createNetns, deleteNetns, type Netns } from "../../src/system/netns.js";
import { run } from "../../src/system/run.js";
import { callLog } from "./faults-tools.js";
import { listing, observe, type Observed, type Units } from "./faults-kernel.js";
import { restoreTemplate, type Backend, type Label, type World } from "./faults-world.js";

export interface Trial {
  world: World;
  backend: Backend;
  ns: Netns;
  sd: string;
  countDir: string;
  /** The foreign rules as their tools last wrote them. */
  foreign: string;
  /** What happened, for the report. */
  notes: string[];
}

const LABELS: readonly Label[] = ["none", "gateway", "standalone"];

/** The label whose objects the kernel holds in every unit, if one does. */
export function labelOf(t: Trial, units: Units): Label | undefined {
  const refs = t.world.refs[t.backend];
  return LABELS.find((l) => (["nft", "v4", "v6"] as const).every((u) => refs[l].units[u] === units[u]));
}

/** Per unit, which label it equals ("?" for none): to describe a mix. */
export function unitLabels(t: Trial, units: Units): string {
  const refs = t.world.refs[t.backend];
  return (["nft", "v4", "v6"] as const).map((u) => `${u}=${LABELS.filter((l) => refs[l].units[u] === units[u]).join("|") || "?"}`).join(" ");
}

export function settingsDiff(t: Trial, label: Label, settings: Record<string, string>): string[] {
  const want = t.world.refs[t.backend][label].settings;
  return Object.keys(want).filter((k) => settings[k] !== want[k]).map((k) => `${k}=${settings[k]} (with ${label} in force: ${want[k]})`);
}

export interface Judged { label: Label | undefined; problems: string[]; observed: Observed }

/**
 * The kernel now: swarmgate's objects must be exactly one of `allowed` in
 * every unit, the settings those of that state, the foreign rules unchanged
 * and readable. With `midway`, a mix is allowed (a journal covers it).
 */
export async function judge(t: Trial, allowed: readonly Label[], midway = false): Promise<Judged> {
  const observed = await observe(t.ns);
  const problems = [...observed.problems];
  if (observed.foreign !== t.foreign) problems.push(`the foreign rules changed:\n${lineDiff(t.foreign, observed.foreign)}`);
  const label = labelOf(t, observed.units);
  if (label === undefined || !allowed.includes(label)) {
    if (!midway) problems.push(`swarmgate's objects are ${label ?? `a mix (${unitLabels(t, observed.units)})`}; expected ${allowed.join(" or ")}`);
    else if (/=\?/.test(unitLabels(t, observed.units))) problems.push(`a unit holds objects of no state: ${unitLabels(t, observed.units)}`);
  } else if (!midway) problems.push(...settingsDiff(t, label, observed.settings));
  return { label, problems, observed };
}

function lineDiff(a: string, b: string): string {
  const as = new Set(a.split("\n"));
  const bs = new Set(b.split("\n"));
  return [...a.split("\n").filter((l) => !bs.has(l)).map((l) => `  - ${l}`), ...b.split("\n").filter((l) => !as.has(l)).map((l) => `  + ${l}`)].join("\n");
}

/** The failure report: what was tried, what swarmgate printed, the calls it made, the kernel. */
export async function report(t: Trial, what: string, problems: string[], outputs: string[]): Promise<string> {
  const journal = existsSync(join(t.sd, "journal.json")) ? `journal.json present:\n${readFileSync(join(t.sd, "journal.json"), "utf8").slice(0, 400)}…` : "no journal.json";
  return [`FAIL ${what} [backend ${t.backend}]`, ...problems.map((p) => `  * ${p}`), ...t.notes, ...outputs, `--- tool calls\n${callLog(t.countDir)}`, journal, await listing(t.ns)].join("\n");
}

/** Kills whatever is still running in the namespace: only processes this trial started live there. */
export async function killAll(ns: Netns): Promise<void> {
  const r = await run("ip", ["netns", "pids", ns.name]);
  for (const pid of r.stdout.split("\n").map(Number).filter((p) => p > 1)) {
    try { process.kill(pid, "SIGKILL"); } catch { /* already gone */ }
  }
}

/** Waits until nothing runs in the namespace (tools orphaned by a kill finish); false when something stays. */
export async function settled(ns: Netns, ms: number): Promise<boolean> {
  for (const until = Date.now() + ms; Date.now() < until;) {
    if ((await run("ip", ["netns", "pids", ns.name])).stdout.trim() === "") return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/** Each template's foreign rules, read from the first trial restored from it (restoring is deterministic). */
const verified = new Map<string, string>();

/** Checks once per template that restoring it gives the state it was captured in. */
async function baseline(t: Trial, chain: readonly Label[]): Promise<string> {
  const key = `${t.backend}:${chain.join(",")}`;
  const known = verified.get(key);
  if (known !== undefined) return known;
  const start = await observe(t.ns);
  const want = chain.at(-1) ?? "none";
  const off = [...start.problems, ...(labelOf(t, start.units) === want ? [] : [`holds ${unitLabels(t, start.units)}`]), ...settingsDiff(t, want, start.settings)];
  if (off.length) throw new Error(`the template ${key} did not restore: ${off.join("; ")}`);
  verified.set(key, start.foreign);
  return start.foreign;
}

/** A fresh namespace and state directory holding the template after `chain`; always cleaned up. */
export async function withTrial<T>(world: World, backend: Backend, chain: readonly Label[], fn: (t: Trial) => Promise<T>): Promise<T> {
  const ns = await createNetns();
  const sd = mkdtempSync(join(tmpdir(), "sg-fault-state-"));
  const countDir = mkdtempSync(join(tmpdir(), "sg-fault-calls-"));
  try {
    await restoreTemplate(world, backend, chain, ns, sd);
    const t: Trial = { world, backend, ns, sd, countDir, foreign: "", notes: [] };
    t.foreign = await baseline(t, chain);
    return await fn(t);
  } finally {
    await killAll(ns);
    await deleteNetns(ns);
    rmSync(sd, { recursive: true, force: true });
    rmSync(countDir, { recursive: true, force: true });
  }
}
