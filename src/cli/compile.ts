// `swarmgate compile`: policy → ruleset text on stdout or into files.
import { compile } from "../compile/index.js";
import { backendByName } from "../backend/registry.js";
import { writeFilesAtomically } from "../system/files.js";
import { resolvePolicyPath, loadPolicyHere } from "./policy-path.js";
import { printJson, type CommonOptions } from "./report.js";

export interface CompileOptions extends CommonOptions {
  backend: string;
  output?: string;
}

export async function runCompile(file: string | undefined, opts: CompileOptions): Promise<number> {
  const backend = backendByName(opts.backend);
  const path = resolvePolicyPath(file);
  const artifacts = backend.emit(compile(await loadPolicyHere(path)), { source: path });
  if (opts.output !== undefined) {
    const out = opts.output;
    const files = artifacts.map((a) => ({ path: a.suffix ? `${out}.${a.suffix}` : out, text: a.text, mode: a.executable ? 0o755 : 0o644 }));
    writeFilesAtomically(files);
    if (opts.json) printJson({ ok: true, backend: backend.name, written: files.map((f, i) => ({ path: f.path, reader: artifacts[i]!.reader })) });
    else for (const [i, f] of files.entries()) process.stderr.write(`wrote ${f.path} (for ${artifacts[i]!.reader})\n`);
    return 0;
  }
  if (opts.json) {
    printJson({ ok: true, backend: backend.name, artifacts: artifacts.map((a) => ({ suffix: a.suffix, reader: a.reader, text: a.text })) });
  } else {
    process.stdout.write(artifacts.map((a) => a.text).join("\n"));
  }
  return 0;
}
