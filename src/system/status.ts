// status and diff: what swarmgate has loaded, whether it still equals what
// the policy compiles to, each rule's counters beside its origin, a pending
// confirmation, and what an apply would change.
import type { KernelBackend, Owned } from "../backend/kernel-types.js";
import type { KernelBackendName } from "../backend/registry.js";
import type { Ruleset } from "../ir/ruleset.js";
import { loadedIn, readOwned, readState } from "./kernel-state.js";
import { diffLines } from "./line-diff.js";
import { expectedOwned, listedAsRemembered, normalize, rememberSpelling } from "./readback.js";
import type { Pending, StateDir } from "./state.js";

export interface RuleCount { chain: string; rule: string; intent: string; packets: number; bytes: number }

export interface Status {
  loaded: boolean;
  backend?: KernelBackendName;
  /** undefined when there is no policy to compare with. */
  drift?: { inSync: boolean; missing: string[]; unexpected: string[] };
  rules: RuleCount[];
  /** An apply waiting for `swarmgate confirm`. */
  pending?: { policy: string; deadline: string; secondsLeft: number; confirmed: boolean };
  /** Kernel settings swarmgate manages, as they are now. */
  settings: Record<string, string>;
}

/** The drift of `live` from what `ruleset` compiles to: remembered, or by a round trip through a sandbox. */
async function drift(backend: KernelBackend, ruleset: Ruleset, live: Owned, state?: StateDir, remember = true) {
  const written = backend.ownedOf(ruleset);
  if (listedAsRemembered(state, backend, written, live)) return { added: [], removed: [], script: [] };
  const expected = await expectedOwned(backend, written);
  if (remember) rememberSpelling(state, backend, written, expected);
  return diffLines(normalize(expected), normalize(live));
}

export async function status(backends: readonly KernelBackend[], ruleset?: Ruleset, pending?: Pending, state?: StateDir): Promise<Status> {
  const kernel = await readState(backends);
  const name = loadedIn(kernel);
  const backend = backends.find((b) => b.name === name);
  const result: Status = { loaded: !!backend, rules: [], settings: kernel.sysctl };
  if (pending) result.pending = { policy: pending.policy, deadline: new Date(pending.deadline).toISOString(), secondsLeft: Math.max(0, Math.round((pending.deadline - Date.now()) / 1000)), confirmed: pending.confirmed };
  if (!backend) {
    if (ruleset) result.drift = { inSync: false, missing: ["(swarmgate is not loaded)"], unexpected: [] };
    return result;
  }
  const owned = kernel.owned[backend.name]!;
  result.backend = backend.name;
  result.rules = backend.counters(owned).map((c) => ({ chain: c.chain, rule: c.rule, intent: c.comment, packets: c.packets, bytes: c.bytes }));
  if (ruleset) {
    const d = await drift(backend, ruleset, owned, state);
    result.drift = { inSync: d.added.length === 0 && d.removed.length === 0, missing: d.added, unexpected: d.removed };
  }
  return result;
}

export interface PlannedChange { op: "+" | "-"; line: string; intent: string }

const intentOf = (line: string) => /comment "([^"]*)"/.exec(line)?.[1] ?? line.trim();

/** What apply would change, rule by rule, against what is loaded now (reading the state directory, never writing it). */
export async function planChanges(ruleset: Ruleset, backend: KernelBackend, state?: StateDir): Promise<PlannedChange[]> {
  const d = await drift(backend, ruleset, await readOwned(backend), state, false);
  // Rules only: the table and chain lines around them are the same for every policy.
  return d.script.filter((s) => s.op !== " " && /comment "|^-A /.test(s.line))
    .map((s) => ({ op: s.op as "+" | "-", line: s.line.trim(), intent: intentOf(s.line) }));
}
