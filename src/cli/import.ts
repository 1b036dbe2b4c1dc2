// `swarmgate import`: a policy from the firewall the machine has (--live) or
// that files hold (--from), and the exact difference in exposure between the
// two — what the policy closes that was open, what it opens that was closed —
// computed by the exposure analysis on both. The policy is checked by the
// policy loader before it is written, and written whole or not at all.
import { exposure } from "../analyze/exposure.js";
import { exposureDiff, type DiffLine } from "../analyze/exposure-diff.js";
import { importPolicy } from "../analyze/import.js";
import { compile } from "../compile/index.js";
import { readForeign, type ForeignRuleset } from "../parse/index.js";
import { parsePolicy } from "../policy/load.js";
import { writeFilesAtomically } from "../system/files.js";
import { userError } from "../errors.js";
import { describeMachine, type MachineOptions } from "./machine.js";
import { printJson } from "./report.js";

export interface ImportOptions extends MachineOptions {
  json?: boolean;
  live?: boolean;
  from: string[];
  output?: string;
}

export async function runImport(o: ImportOptions): Promise<number> {
  if (o.live && o.from.length) throw userError("CLI_USAGE", "--live and --from both say where the ruleset comes from; give one");
  const live = o.live || o.from.length === 0;
  const foreign: ForeignRuleset = live ? await (await import("../parse/live.js")).readLive() : await readForeign(o.from);
  const notes = [...foreign.notes];
  const machine = await describeMachine(o, undefined, foreign, live, notes);
  const space = { interfaces: [machine.iface], local: machine.local, forwards: false, routes: [], own: [machine.local[4], machine.local[6]] };
  const before = exposure(foreign.ruleset, machine.env, space);
  const source = live ? "this machine's ruleset" : o.from.join(", ");
  const imported = importPolicy({ exposure: before, iface: machine.iface, local: machine.local, source });
  // The loader is the judge of what was written: a policy it refuses is a bug here, never a file.
  const policy = parsePolicy(imported.yaml, o.output ?? "imported.yaml");
  const after = exposure(compile(policy), machine.env, space);
  const diff = exposureDiff(before, after, machine.iface);
  if (o.output) writeFilesAtomically([{ path: o.output, text: imported.yaml, mode: 0o644 }]);
  if (o.json) {
    printJson({ ok: true, policy: imported.yaml, ...(o.output && { written: o.output }), closes: diff.closes, opens: diff.opens, notExpressed: imported.notExpressed, notes });
    return 0;
  }
  const line = (d: DiffLine) => `  ${d.protocol.toUpperCase()} ${d.ports} ${d.direction === "outbound" ? "to" : "from"} ${d.peers}, IPv${d.family}${d.was ? ` — was ${d.was}` : ""}`;
  const out = [
    ...(o.output ? [`wrote ${o.output}`] : ["The policy (write it with -o FILE):", "", imported.yaml]),
    "What the policy closes that was open:", ...(diff.closes.length ? diff.closes.map((d) => `${d.direction.padEnd(8)}${line(d)}`) : ["  nothing"]),
    "", "What the policy opens that was closed:", ...(diff.opens.length ? diff.opens.map((d) => `${d.direction.padEnd(8)}${line(d)}`) : ["  nothing"]),
    ...(imported.notExpressed.length ? ["", "What a policy cannot say (left closed):", ...imported.notExpressed.map((n) => `  ${n}`)] : []),
    ...(notes.length ? ["", "Notes:", ...notes.map((n) => `  ${n}`)] : []),
  ];
  process.stdout.write(`${out.join("\n")}\n`);
  return 0;
}
