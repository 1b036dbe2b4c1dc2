// Printing results and user errors. A SwarmgateError becomes one or two lines
// per problem and exit status 2; anything else is a bug and keeps its trace.
import { formatDiagnosticWithSource, SwarmgateError, type Diagnostic } from "../errors.js";

export interface CommonOptions {
  json?: boolean;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function diagnosticJson(d: Diagnostic) {
  return { code: d.code, message: d.message, file: d.file, line: d.line, column: d.column };
}

/** Runs a command body; turns user errors into messages and exit status 2. */
export async function guard(json: boolean | undefined, body: () => Promise<number> | number): Promise<void> {
  try {
    process.exitCode = await body();
  } catch (e) {
    if (!(e instanceof SwarmgateError)) throw e;
    if (json) printJson({ ok: false, errors: e.diagnostics.map(diagnosticJson) });
    else process.stderr.write(`${e.diagnostics.map(formatDiagnosticWithSource).join("\n")}\n`);
    process.exitCode = e.exitCode;
  }
}
