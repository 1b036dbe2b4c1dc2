// What a ruleset looks like once the kernel holds it: loaded into a throwaway
// network namespace with the very plan apply uses, and read back with the
// backend's own reader, so that comparisons with the live objects (status,
// diff) use the spelling the kernel gives back (nft rewrites text as it lists).
import type { KernelBackend, Owned } from "../backend/kernel-types.js";
import type { Ruleset } from "../ir/ruleset.js";
import { withNetns } from "./netns.js";

export async function expectedOwned(backend: KernelBackend, ruleset: Ruleset): Promise<Owned> {
  return withNetns(1, async (ns) => {
    for (const { step } of backend.plan(backend.ownedOf(ruleset), backend.empty())) {
      await ns.execChecked(step.command, step.args, step.input === undefined ? {} : { input: step.input });
    }
    const outputs = [];
    for (const step of backend.readSteps) outputs.push(await ns.exec(step.command, step.args));
    return backend.parseOwned(outputs);
  });
}

/** Counters and handles removed: what stays the same while traffic flows. */
export function normalize(owned: Owned): string[] {
  return Object.values(owned).join("\n").split("\n")
    .map((l) => l.replace(/counter packets \d+ bytes \d+/, "counter").replace(/^\[\d+:\d+\] /, "").replace(/ # handle \d+$/, "").trimEnd())
    .filter((l) => l.trim() !== "" && !l.startsWith("#"));
}
