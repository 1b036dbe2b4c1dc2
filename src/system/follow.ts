// One step of `swarmgate follow`: the applied policy compiled again with the
// ports its `ports: auto` clients use now, and the firewall moved to it in
// place — an element swap in nft's port sets, the client rules replaced where
// they stand with iptables — so that no other rule is reloaded, no counter is
// reset and no connection is dropped. Journaled like apply (undone when it
// fails, finished by the next command when the process dies midway).
//
// With nft, a move starts from what swarmgate last wrote (readback.json) and
// the kernel is checked after it rather than before, so the new port is in
// force one tool run after the step starts: the transaction deletes the old
// elements by value, so it fails whole, changing nothing, when they are not
// there; the listing read back must then be the one remembered, ports aside.
// When something else changed swarmgate's table, the move is undone the same
// guarded way — never by reloading, which would overwrite that change — and
// refused. iptables has no such guard for a rule's place, so there the kernel
// is read first; that read is begun before the policy is loaded again
// (readAhead) and used under the lock only if it is still what swarmgate left.
//
// It moves ports and nothing else. A firewall that is not the one swarmgate
// left (changed by hand or by another program), another policy, or a policy
// edited beyond its ports is refused with what to run instead: following must
// never apply a change the user has not applied.
import { resolve } from "node:path";
import { compile } from "../compile/index.js";
import { userError } from "../errors.js";
import type { KernelBackend, Owned } from "../backend/kernel-types.js";
import type { Policy } from "../policy/types.js";
import { withState } from "./apply.js";
import { kernelBackend } from "../backend/registry.js";
import { readState, type KernelState } from "./kernel-state.js";
import { expectedOwned, lastWritten, normalize, rememberSpelling, shapeDigest, writtenFor } from "./readback.js";
import { runStep } from "./run.js";
import { StateDir, type Applied, type Journal, type Pending } from "./state.js";
import { readSettings } from "./sysctl.js";
import { transact, type Log } from "./transaction.js";

export interface FollowStep {
  /** unchanged: the firewall already holds these ports; moved: it does now. */
  outcome: "unchanged" | "moved";
  /** The ports in force afterwards, per client entry ("clients[0]": "51413"). */
  ports: Record<string, string>;
  ms: number;
}

/**
 * What the backend in force holds now, read before the step takes the lock
 * (undefined when nothing is applied or the read failed): pass it to
 * followStep, which trusts it only if it is still what swarmgate left.
 */
export function readAhead(stateDir: string): Promise<KernelState | undefined> {
  let backend: string | undefined;
  try { backend = new StateDir(stateDir).record()?.backend; } catch { return Promise.resolve(undefined); }
  if (!backend) return Promise.resolve(undefined);
  // A backend with a guarded move reads the kernel after it, not before: a read now would only compete with the move.
  return kernelBackend(backend).then((b) => (b.portMover ? undefined : readState([b]))).catch(() => undefined);
}

export async function followStep(policy: Policy, options: { stateDir: string; waitMs?: number; log?: Log; ahead?: Promise<KernelState | undefined> }): Promise<FollowStep> {
  const started = performance.now();
  const ruleset = compile(policy);
  return withState(options.stateDir, options, async (state, backends) => {
    const record = state.record();
    if (!record) throw userError("FOLLOW_REFUSED", "nothing is applied: apply the policy first (swarmgate apply), then follow it");
    const pending = state.read<Pending>("pending.json");
    if (pending && !pending.confirmed) throw userError("CONFIRM_PENDING", "an apply is waiting for swarmgate confirm; ports are followed once it is confirmed or rolled back");
    if (record.policy !== resolve(policy.source.file)) {
      throw userError("FOLLOW_REFUSED", `the policy applied is ${record.policy}, not ${resolve(policy.source.file)}: follow the one applied, or apply this one first`);
    }
    const chosen = backends.find((b) => b.name === record.backend);
    if (!chosen) throw userError("TOOL_MISSING", `the ${record.backend} backend that applied the policy is no longer installed`);
    // Only the backend in force is read, changed and read back: a port moves within it, and the other holds nothing of swarmgate's.
    const target = chosen.ownedOf(ruleset);
    const ports = Object.fromEntries(policy.clients.filter((c) => c.auto).map((c) => [c.path, `${c.ports.first}${c.ports.last !== c.ports.first ? `-${c.ports.last}` : ""}`]));
    const last = chosen.portMover && lastWritten(state, chosen);
    if (last && JSON.stringify(target) !== JSON.stringify(last.text) && chosen.onlyPortSetsDiffer(target, last.text)) {
      if (await moveThenCheck(state, chosen, record, last, target)) return { outcome: "moved", ports, ms: performance.now() - started };
      // A guard held: the kernel does not hold what swarmgate last wrote. What follows reads it and says why.
    }
    const ahead = await options.ahead;
    const early = ahead?.owned[chosen.name] && writtenFor(state, chosen, ahead.owned[chosen.name]!);
    // Settings are read now, under the lock: the step writes back the ones it read.
    const before = early ? { owned: ahead!.owned, sysctl: readSettings() } : await readState([chosen]);
    const written = early || writtenFor(state, chosen, before.owned[chosen.name]!);
    if (!written) {
      throw userError("FOLLOW_REFUSED", `swarmgate's ${chosen.name === "nft" ? "table" : "chains"} in the kernel are not as swarmgate left them (changed by hand or by another program?); follow changes nothing. See swarmgate status, then apply the policy again`);
    }
    if (JSON.stringify(target) === JSON.stringify(written)) return { outcome: "unchanged", ports, ms: performance.now() - started };
    if (!chosen.onlyPortSetsDiffer(target, written)) {
      throw userError("FOLLOW_REFUSED", `${record.policy} now says more than new client ports (it was edited since it was applied); follow changes only ports: apply it with swarmgate apply`);
    }
    const now = await transact(state, [chosen], {
      op: "follow", pid: process.pid, startedAt: new Date().toISOString(), before,
      target: { owned: { [chosen.name]: target }, sysctl: before.sysctl },
      recovery: "undo", recordBefore: record, recordAfter: record, written: { [chosen.name]: written },
    });
    rememberSpelling(state, chosen, target, now.owned[chosen.name]!);
    return { outcome: "moved", ports, ms: performance.now() - started };
  });
}

/**
 * A guarded move from what swarmgate last wrote, journaled, the kernel checked
 * after it. true: moved and checked. false: a guard held; nothing changed.
 * Throws FOLLOW_REFUSED when swarmgate's table turned out to be changed by
 * someone else (the move undone, that change kept), or when undoing failed.
 */
async function moveThenCheck(state: StateDir, backend: KernelBackend, record: Applied, last: { text: Owned; shape: string }, target: Owned): Promise<boolean> {
  const mover = backend.portMover!;
  const sysctl = readSettings();
  const journal: Journal = {
    op: "follow", pid: process.pid, startedAt: new Date().toISOString(),
    before: { owned: { [backend.name]: last.text }, sysctl }, target: { owned: { [backend.name]: target }, sysctl },
    recovery: "undo", recordBefore: record, recordAfter: record, written: { [backend.name]: last.text },
  };
  state.write("journal.json", journal); // STATE_UNWRITABLE here means the kernel was not touched
  const { forward, back } = mover.steps(target, last.text);
  const went = await Promise.all(forward.map(runStep));
  if (went.some((r) => r.code !== 0)) {
    const undone = await Promise.all(back.filter((_, i) => went[i]!.code === 0).map(runStep));
    state.remove("journal.json");
    if (undone.some((r) => r.code !== 0)) throw cannotUndo("a port move failed half way", undone);
    return false;
  }
  let now: Owned;
  let holds: boolean;
  try {
    now = (await readState([backend])).owned[backend.name]!;
    holds = await holdsTarget(backend, now, last.shape, target);
  } catch (e) {
    // Unchecked, the move is not kept: moved back the guarded way, or, when even that fails, left to the journal.
    const undone = await Promise.all(back.map(runStep)).catch(() => undefined);
    if (!undone?.every((r) => r.code === 0)) throw e;
    state.remove("journal.json");
    throw userError("TOOL_FAILED", `the kernel could not be read back after a port move (${(e as Error).message.replace(/^error\[[A-Z_]+\]: /, "")}); the move was undone`);
  }
  if (holds) {
    state.commit(journal);
    rememberSpelling(state, backend, target, now);
    return true;
  }
  const undone = await Promise.all(back.map(runStep));
  state.remove("journal.json");
  if (undone.some((r) => r.code !== 0)) throw cannotUndo("swarmgate's table was changed by someone else while a port moved", undone);
  throw userError("FOLLOW_REFUSED", "swarmgate's table in the kernel is not as swarmgate left it (changed by hand or by another program?): the port move was undone, and that change kept. See swarmgate status, then apply the policy again");
}

/** Whether the kernel lists what was remembered with the target's ports; a spelling the kernel chose is settled in a sandbox. */
async function holdsTarget(backend: KernelBackend, now: Owned, shape: string, target: Owned): Promise<boolean> {
  if (shapeDigest(backend, now) !== shape) return false;
  if (backend.portMover!.ports(now) === backend.portMover!.ports(target)) return true;
  return normalize(await expectedOwned(backend, target)).join("\n") === normalize(now).join("\n");
}

function cannotUndo(what: string, results: { code: number; stderr: string }[]) {
  const why = results.filter((r) => r.code !== 0).map((r) => r.stderr.trim().split("\n")[0]).join(" / ");
  return userError("FOLLOW_REFUSED", `${what}, and moving it back failed too (${why}): swarmgate's table may hold the new ports. See swarmgate status, then apply the policy again`);
}
