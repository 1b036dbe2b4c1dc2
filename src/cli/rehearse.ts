// `swarmgate rehearse`: prove a policy with real packets in a sandbox.
import { fileURLToPath } from "node:url";
import { existsSync } from "node:fs";
import { rehearse, type FlowResult } from "../lab/rehearse.js";
import type { KernelBackendName } from "../backend/registry.js";
import { DEFAULT_POLICY_PATHS, resolvePolicyPath, loadPolicyHere } from "./policy-path.js";
import { printJson, type CommonOptions } from "./report.js";

export interface RehearseCliOptions extends CommonOptions {
  backend: KernelBackendName;
}

/** With no policy anywhere, rehearse the bundled standalone example: the main job works out of the box. */
function policyPath(given: string | undefined): string {
  if (given !== undefined || DEFAULT_POLICY_PATHS.some((p) => existsSync(p))) return resolvePolicyPath(given);
  return fileURLToPath(new URL("../../examples/standalone.yaml", import.meta.url));
}

export async function runRehearse(file: string | undefined, opts: RehearseCliOptions): Promise<number> {
  const path = policyPath(file);
  const policy = await loadPolicyHere(path);
  const tty = process.stderr.isTTY;
  const progress = (m: string) => process.stderr.write(tty ? `\r\x1b[2Krehearse: ${m}…` : `rehearse: ${m}\n`);
  const result = await rehearse(policy, { backend: opts.backend, progress });
  if (tty) process.stderr.write("\r\x1b[2K");
  const leaks = result.flows.filter((f) => f.leak);
  if (opts.json) {
    printJson({ ok: result.ok, file: path, backend: result.backend, milliseconds: result.milliseconds,
      ...(policy.vpn && { leaks: { tried: leaks.length, closed: leaks.filter((f) => f.observed === "closed").length, leaked: leaks.filter((f) => !f.ok).map(leakLine) } }),
      flows: result.flows });
    return result.ok ? 0 : 1;
  }
  const failed = result.flows.filter((f) => !f.ok);
  const lines = [
    `${path}: ${result.flows.length} flows rehearsed with ${result.backend} in ${(result.milliseconds / 1000).toFixed(1)} s — ` +
      (failed.length === 0 ? "every flow behaves as the policy says" : `${failed.length} did not`),
    "",
    ...table(result.flows),
  ];
  if (policy.vpn) {
    const leaked = leaks.filter((f) => !f.ok).length;
    lines.push("", `Leak flows — what the kill switch must stop outside ${policy.vpn.interface}: ${leaks.length} tried, ` +
      (leaked === 0 ? "every one closed" : `${leaked} LEAKED`), ...leaks.map((f) => `  ${leakLine(f)}`));
  }
  if (failed.length > 0) {
    lines.push("", "Failures:");
    for (const f of failed) lines.push(`  ${f.id}. ${f.what}: expected ${f.expect}, observed ${f.observed} (${f.detail})`, `     expected rule: ${f.expectedRule}`);
  }
  process.stdout.write(`${lines.join("\n")}\n`);
  return failed.length === 0 ? 0 : 1;
}

/** "leak: user nobody TCP 198.51.100.7:6881 via eth0 (peer) — closed as expected". */
function leakLine(f: FlowResult): string {
  return `${f.what} — ${f.ok ? "closed as expected" : `OPEN: it leaked (${f.detail})`}`;
}

function table(flows: FlowResult[]): string[] {
  const width = Math.max(4, ...flows.map((f) => f.what.length));
  const idw = String(flows.length).length;
  const head = `  ${"#".padStart(idw)}  ${"flow".padEnd(width)}  expected  observed`;
  return [head, ...flows.map((f) =>
    `  ${String(f.id).padStart(idw)}  ${f.what.padEnd(width)}  ${f.expect.padEnd(8)}  ${f.observed.padEnd(8)}  ${f.ok ? "ok" : "FAIL"}`)];
}
