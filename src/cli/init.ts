// `swarmgate init`: a starter policy from the machine as it is (init/), which
// must load as a policy before anything is written, and which never replaces
// a file: it is written beside the target and linked into place, so an
// existing file stays untouched and a failure leaves no half-written one.
import { closeSync, fsyncSync, linkSync, openSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { displayValue, SwarmgateError, userError } from "../errors.js";
import { readFacts } from "../init/facts.js";
import { starterPolicy } from "../init/write.js";
import { parsePolicy } from "../policy/load.js";
import { printJson, type CommonOptions } from "./report.js";

export interface InitOptions extends CommonOptions { output?: string; gateway?: boolean; lan?: string; interface?: string; root?: string }

export async function runInit(o: InitOptions): Promise<number> {
  const output = o.output ?? "swarmgate.yaml";
  const facts = await readFacts({ ...(o.root !== undefined && { root: o.root }), ...(o.interface !== undefined && { interface: o.interface }) });
  const text = starterPolicy(facts, { ...(o.gateway && { gateway: true }), ...(o.lan !== undefined && { lan: o.lan }), date: new Date().toISOString().slice(0, 10) });
  try {
    parsePolicy(text, output === "-" ? "<init>" : output);
  } catch (e) {
    // What init writes must load; if it does not, that is swarmgate's fault, and nothing is written.
    throw new Error(`init wrote a policy that does not load: ${(e as Error).message}\n${text}`);
  }
  if (output === "-") process.stdout.write(text);
  else writeNew(output, text);
  const summary = { clients: facts.clients.length, problems: facts.problems.map((p) => `${p.file}${p.line ? `:${p.line}` : ""}: ${p.message}`) };
  if (o.json) printJson({ ok: true, file: output === "-" ? null : output, policy: text, ...summary });
  else if (output !== "-") {
    process.stdout.write(`wrote ${output} (${facts.clients.length} client(s) found${facts.uplink ? `, interface ${facts.uplink.name}` : ""}); next: swarmgate check ${output}, then sudo swarmgate rehearse ${output}, then sudo swarmgate apply ${output} --confirm 60\n`);
    for (const p of summary.problems) process.stderr.write(`swarmgate: could not read ${p}\n`);
  }
  return 0;
}

/** Writes a file that must not exist yet: complete and synced under a temporary name, then linked (link never replaces). */
function writeNew(path: string, text: string): void {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(temp, "wx", 0o644);
    writeSync(fd, text);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    linkSync(temp, path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === "EEXIST" && err.syscall === "link") throw userError("OUTPUT_EXISTS", `${displayValue(path, 200)} exists; init never replaces a file: give another with -o, or move it away`);
    if (e instanceof SwarmgateError) throw e;
    throw userError("OUTPUT_WRITE", `cannot write ${displayValue(path, 200)} (${err.code ?? err.message}); nothing was written`);
  } finally {
    if (fd !== undefined) closeSync(fd);
    rmSync(temp, { force: true });
  }
}
