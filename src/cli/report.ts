// Printing results and failures. A SwarmgateError becomes one or two lines per
// problem and its exit status (2 for most). Anything else is a bug: code
// INTERNAL, exit status 70 (EX_SOFTWARE, sysexits.h) and the stack on stderr
// for the bug report. Under --json every failure is exactly one JSON object on
// stdout with ok: false and the codes.
import { formatDiagnosticWithSource, SwarmgateError, type Diagnostic } from "../errors.js";

export interface CommonOptions {
  json?: boolean;
}

export const EXIT_INTERNAL = 70;

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function diagnosticJson(d: Diagnostic) {
  return { code: d.code, message: d.message, file: d.file, line: d.line, column: d.column };
}

/** Prints a failure the way the user asked for and sets the exit status. */
export function reportFailure(e: unknown, json: boolean | undefined): void {
  if (e instanceof SwarmgateError) {
    if (json) printJson({ ok: false, errors: e.diagnostics.map(diagnosticJson) });
    else process.stderr.write(`${e.diagnostics.map(formatDiagnosticWithSource).join("\n")}\n`);
    process.exitCode = e.exitCode;
    return;
  }
  const message = e instanceof Error ? e.message : String(e);
  process.stderr.write(`swarmgate: internal error (a bug; please report it with what follows):\n${e instanceof Error && e.stack ? e.stack : message}\n`);
  if (json) printJson({ ok: false, errors: [{ code: "INTERNAL", message }] });
  process.exitCode = EXIT_INTERNAL;
}

/** Runs a command body; turns every failure into a report and an exit status. */
export async function guard(json: boolean | undefined, body: () => Promise<number> | number): Promise<void> {
  try {
    process.exitCode = await body();
  } catch (e) {
    reportFailure(e, json);
  }
}
