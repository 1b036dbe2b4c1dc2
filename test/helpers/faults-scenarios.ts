// The commands of the fault matrix, each a move of swarmgate's state from
// `old` to `new`: what sets it up, how it runs, and which transactions it
// makes (the confirmation timeout makes a second one, back from new to old).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { printed, sleep, start, swarmgateIn, type CliResult } from "./faults-run.js";
import type { Trial } from "./faults-trial.js";
import { POLICY, type Label } from "./faults-world.js";

export type Op = "apply" | "stop" | "rollback" | "timeout";

export interface Scenario {
  name: string;
  /** The journaled op it runs (the timeout's restore aside). */
  op: Op;
  /** The policies applied before, in order (a template). */
  setup: Label[];
  old: Label;
  new: Label;
  /** What exit status 3 (not confirmed) may mean here. */
  confirm?: "timeout" | "confirmed";
  run(t: Trial, env: Record<string, string>, json: boolean): Promise<Ran>;
}

/** The command judged, and everything that ran, for the report. */
export interface Ran { main: CliResult; outputs: string[] }

/** Each journaled op moves between two labels; an interrupted apply is undone, the others completed. */
export function transaction(s: Scenario, op: string): { before: Label; target: Label; recovery: "undo" | "complete" } {
  if (op === "timeout") return { before: s.new, target: s.old, recovery: "complete" };
  return { before: s.old, target: s.new, recovery: op === "apply" ? "undo" : "complete" };
}

const sdArgs = (t: Trial, json: boolean) => ["--state-dir", t.sd, ...(json ? ["--json"] : [])];

function plain(args: (t: Trial) => string[]): Scenario["run"] {
  return async (t, env, json) => {
    const full = [...args(t), ...sdArgs(t, json)];
    const main = await swarmgateIn(t.ns, full, env);
    return { main, outputs: [printed("under test", full, main)] };
  };
}

/** apply --confirm, then `swarmgate confirm` once the window is open (or not at all if the apply ends first). */
async function confirmed(t: Trial, env: Record<string, string>, json: boolean): Promise<Ran> {
  const args = ["apply", POLICY.gateway, "-b", t.backend, "--confirm", "30", ...sdArgs(t, json)];
  const apply = start(t.ns, args, env);
  let ended = false;
  void apply.done.then(() => { ended = true; });
  const outputs: string[] = [];
  // --json prints nothing until the end, so the window is known open from pending.json and the kernel's answer to confirm.
  while (!ended && !apply.stderr().includes("within") && !(json && existsSync(join(t.sd, "pending.json")))) await sleep(25);
  for (let i = 0; i < 50 && !ended; i++) {
    const c = await swarmgateIn(t.ns, ["confirm", "--state-dir", t.sd], env);
    outputs.push(printed("confirm", ["confirm"], c));
    if (c.code === 0) break;
    await sleep(200);
  }
  const main = await apply.done;
  return { main, outputs: [printed("under test", args, main), ...outputs] };
}

const applyOf = (label: "gateway" | "standalone") => plain((t) => ["apply", POLICY[label], "-b", t.backend]);

export const SCENARIOS: readonly Scenario[] = [
  { op: "apply", name: "apply on a clean machine", setup: [], old: "none", new: "gateway", run: applyOf("gateway") },
  { op: "apply", name: "apply gateway → host", setup: ["gateway"], old: "gateway", new: "standalone", run: applyOf("standalone") },
  { op: "apply", name: "apply host → gateway", setup: ["standalone"], old: "standalone", new: "gateway", run: applyOf("gateway") },
  { op: "apply", name: "apply --confirm 2, timed out", setup: ["standalone"], old: "standalone", new: "gateway", confirm: "timeout", run: plain((t) => ["apply", POLICY.gateway, "-b", t.backend, "--confirm", "2"]) },
  { op: "apply", name: "apply --confirm, then confirm", setup: ["standalone"], old: "standalone", new: "gateway", confirm: "confirmed", run: confirmed },
  { op: "stop", name: "stop", setup: ["gateway"], old: "gateway", new: "none", run: plain(() => ["stop"]) },
  { op: "rollback", name: "rollback", setup: ["gateway", "standalone"], old: "standalone", new: "gateway", run: plain(() => ["rollback"]) },
];
