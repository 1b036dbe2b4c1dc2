// One step of `swarmgate follow`: the applied policy compiled again with the
// ports its `ports: auto` clients use now, and the firewall moved to it in
// place — an element swap in nft's port sets, the client rules replaced where
// they stand with iptables — so that no other rule is reloaded, no counter is
// reset and no connection is dropped. Journaled like apply (undone when it
// fails, finished by the next command when the process dies midway).
//
// It moves ports and nothing else. A firewall that is not the one swarmgate
// left (changed by hand or by another program), another policy, or a policy
// edited beyond its ports is refused with what to run instead: following must
// never apply a change the user has not applied.
import { resolve } from "node:path";
import { compile } from "../compile/index.js";
import { userError } from "../errors.js";
import type { Policy } from "../policy/types.js";
import { withState } from "./apply.js";
import { readState } from "./kernel-state.js";
import { rememberSpelling, writtenFor } from "./readback.js";
import type { Pending } from "./state.js";
import { transact, type Log } from "./transaction.js";

export interface FollowStep {
  /** unchanged: the firewall already holds these ports; moved: it does now. */
  outcome: "unchanged" | "moved";
  /** The ports in force afterwards, per client entry ("clients[0]": "51413"). */
  ports: Record<string, string>;
  ms: number;
}

export async function followStep(policy: Policy, options: { stateDir: string; waitMs?: number; log?: Log }): Promise<FollowStep> {
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
    const before = await readState([chosen]);
    const written = writtenFor(state, chosen, before.owned[chosen.name]!);
    if (!written) {
      throw userError("FOLLOW_REFUSED", `swarmgate's ${chosen.name === "nft" ? "table" : "chains"} in the kernel are not as swarmgate left them (changed by hand or by another program?); follow changes nothing. See swarmgate status, then apply the policy again`);
    }
    const target = chosen.ownedOf(ruleset);
    const ports = Object.fromEntries(policy.clients.filter((c) => c.auto).map((c) => [c.path, `${c.ports.first}${c.ports.last !== c.ports.first ? `-${c.ports.last}` : ""}`]));
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
