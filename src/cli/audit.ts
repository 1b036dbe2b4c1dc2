// `swarmgate audit`: what exactly is open, to whom; is BitTorrent ready; lint.
import { audit } from "../analyze/audit.js";
import type { Exposure } from "../analyze/exposure.js";
import { loadDetection, resolvePolicyPath, loadPolicyHere } from "./policy-path.js";
import { autoPortLines, wantsClientWarnings } from "./check.js";
import { printJson, type CommonOptions } from "./report.js";

const TITLES = { inbound: "New connections accepted by this machine", forwarded: "New connections forwarded", outbound: "New connections this machine may open" } as const;

/** The widest a column is padded to; a longer cell overflows its own line. */
const COLUMN_CAP = 48;

/** The exposure report as text: one table per direction (audit, and doctor --exposure). */
export function exposureLines(exposure: readonly Exposure[]): string[] {
  const lines: string[] = [];
  for (const direction of ["inbound", "forwarded", "outbound"] as const) {
    const rows = exposure.filter((e) => e.direction === direction);
    if (rows.length === 0) continue;
    lines.push("", `${TITLES[direction]} (exact, over the whole packet space):`);
    const table = rows.map((e) => [
      e.protocol, e.ports, `${direction === "outbound" ? "to" : "from"} ${e.peers.join(", ")}${e.except ? ` except ${e.except.join(", ")}` : ""}${e.sourcePorts ? ` (source port ${e.sourcePorts})` : ""}`,
      `via ${e.interface}`, e.families, e.target ? `→ ${e.target}` : "", e.paths.filter(Boolean).join(", ") || (e.paths.length ? "built in" : "not filtered"),
      e.depends ? `depends on ${e.depends.join("; ")}` : "",
    ]);
    // A column is as wide as its widest cell up to COLUMN_CAP: one long cell (a list of sources or targets)
    // overflows its own line instead of padding every line to its width (at 10,000 forwards that padding
    // made 51 MB of output). Counted in a loop: spreading ~130,000 rows into Math.max overflows the stack.
    const widths = table[0]!.map(() => 0);
    for (const r of table) r.forEach((c, i) => { if (c.length <= COLUMN_CAP && c.length > widths[i]!) widths[i] = c.length; });
    for (const r of table) lines.push(`  ${r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()}`);
  }
  return lines;
}

export async function runAudit(file: string | undefined, opts: CommonOptions): Promise<number> {
  const path = resolvePolicyPath(file);
  const policy = await loadPolicyHere(path);
  if (wantsClientWarnings(policy)) await loadDetection();
  const result = audit(policy);
  const clients = autoPortLines(policy);
  if (opts.json) {
    printJson({ ok: result.ok, file: path, exposure: result.exposure, checks: result.checks, findings: result.findings, autoPorts: clients.json, clientWarnings: clients.warnings });
    return result.ok ? 0 : 1;
  }
  const failed = result.checks.filter((c) => c.status === "fail");
  const lines = [`${path}: ${result.checks.length - failed.length} of ${result.checks.length} readiness checks pass${failed.length ? `, ${failed.length} FAIL` : ""}; ${result.findings.length} lint finding(s)`, ...clients.text];
  lines.push(...exposureLines(result.exposure));
  lines.push("", "Readiness:");
  for (const c of result.checks) {
    lines.push(`  ${c.status.toUpperCase().padEnd(4)}  ${c.title}${c.status === "pass" ? "" : ` — ${c.detail}`}`);
    if (c.status === "fail" && c.rule) lines.push(`        deciding rule: ${c.rule}`);
  }
  lines.push("", "Lint:", ...(result.findings.length ? result.findings.flatMap((f) => [`  ${f.kind}: ${f.message}`, ...(f.rule ? [`        ${f.rule}`] : [])]) : ["  nothing to report"]));
  process.stdout.write(`${lines.join("\n")}\n`);
  return result.ok ? 0 : 1;
}
