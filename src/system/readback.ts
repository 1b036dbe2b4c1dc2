// What a ruleset looks like once the kernel holds it: loaded into a throwaway
// network namespace and read back with the tool's own listing, so that
// comparisons with the live ruleset (status, diff) use the same spelling the
// kernel gives back (nft rewrites text as it lists it).
import { emitNft } from "../backend/nft.js";
import type { Ruleset } from "../ir/ruleset.js";
import { planRestore } from "./iptables-plan.js";
import { swarmgateLines, type Backend } from "./kernel.js";
import { withNetns } from "./netns.js";
import { runChecked } from "./run.js";

export async function expectedReadback(backend: Backend, ruleset: Ruleset): Promise<string> {
  return withNetns(1, async (ns) => {
    // The same transaction apply would make, inside the namespace.
    const steps = backend === "nft" ? [["nft", "list", "table", "inet", "swarmgate"]] : [["iptables-save"], ["ip6tables-save"]];
    await loadIn(ns.name, backend, ruleset);
    const out: string[] = [];
    for (const [cmd, ...args] of steps) out.push((await ns.execChecked(cmd!, args)).stdout);
    return backend === "nft" ? out[0]! : swarmgateLines(out);
  });
}

async function loadIn(netns: string, backend: Backend, ruleset: Ruleset): Promise<void> {
  if (backend === "nft") {
    await runChecked("ip", ["netns", "exec", netns, "nft", "-f", "-"], { input: emitNft(ruleset) });
    return;
  }
  for (const f of [4, 6] as const) {
    const plan = planRestore(ruleset, f, "");
    if (plan) await runChecked("ip", ["netns", "exec", netns, f === 4 ? "iptables-restore" : "ip6tables-restore", "--noflush"], { input: plan });
  }
}

/** Counters and handles removed: what stays the same while traffic flows. */
export function normalize(text: string): string[] {
  return text.split("\n")
    .map((l) => l.replace(/counter packets \d+ bytes \d+/, "counter").replace(/^\[\d+:\d+\] /, "").replace(/ # handle \d+$/, "").trimEnd())
    .filter((l) => l.trim() !== "" && !l.startsWith("#"));
}
