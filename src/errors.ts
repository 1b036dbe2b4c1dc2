// User errors are values a person can act on: a stable code, a message and,
// where there is one, a place in a file. Anything else thrown is a bug.

export type ErrorCode =
  // reading the policy file
  | "POLICY_NOT_FOUND"
  | "POLICY_UNREADABLE"
  | "POLICY_TOO_LARGE"
  | "POLICY_BINARY"
  | "POLICY_EMPTY"
  | "POLICY_SYNTAX"
  | "POLICY_DUPLICATE_KEY"
  | "POLICY_NOT_REGULAR"
  | "POLICY_TOO_COMPLEX"
  // shape of the policy
  | "POLICY_UNKNOWN_KEY"
  | "POLICY_MISSING_KEY"
  | "POLICY_TYPE"
  | "POLICY_BAD_VALUE"
  | "POLICY_BAD_VERSION"
  | "POLICY_ROLE"
  // values
  | "POLICY_BAD_ADDRESS"
  | "POLICY_BAD_PORT"
  | "POLICY_BAD_RANGE"
  | "POLICY_BAD_NAME"
  // meaning
  | "POLICY_DUPLICATE_NAME"
  | "POLICY_PORT_CONFLICT"
  | "POLICY_FORWARD_OVERLAP"
  | "POLICY_FORWARD_OUTSIDE_LAN"
  | "POLICY_FAMILY_MISMATCH"
  // command line and output
  | "CLI_USAGE"
  | "BACKEND_UNKNOWN"
  | "OUTPUT_WRITE"
  | "OUTPUT_NOT_REGULAR"
  // the machine
  | "TOOL_MISSING"
  | "TOOL_FAILED"
  // the rehearsal sandbox
  | "LAB_NEEDS_ROOT"
  | "LAB_LOAD_FAILED"
  // explain
  | "PACKET_SYNTAX"
  | "SIM_UNSUPPORTED"
  // apply, stop, status, rollback, install
  | "NEEDS_ROOT"
  | "STATE_UNWRITABLE"
  | "LOCKED"
  | "LOAD_FAILED"
  | "LOCKOUT"
  | "NO_BACKUP"
  | "CONFIRM_PENDING"
  | "NOTHING_TO_CONFIRM"
  | "ROLLBACK_FAILED"
  | "STATE_UNREADABLE"
  | "STATE_CORRUPT"
  | "INSTALL_FAILED"
  // a bug: anything thrown that is not a SwarmgateError (printed under --json too)
  | "INTERNAL";

export interface Diagnostic {
  code: ErrorCode;
  message: string;
  file?: string;
  line?: number; // 1-based
  column?: number; // 1-based
  /** The source line the position points into, for a caret display. */
  sourceLine?: string;
}

export class SwarmgateError extends Error {
  readonly diagnostics: readonly Diagnostic[];
  /** 2 for every user error; a few outcomes have their own (a failed rollback: 4). */
  readonly exitCode: number;

  constructor(diagnostics: Diagnostic | readonly Diagnostic[], exitCode = 2) {
    const list = Array.isArray(diagnostics) ? diagnostics : [diagnostics as Diagnostic];
    super(list.map(formatDiagnostic).join("\n"));
    this.name = "SwarmgateError";
    this.diagnostics = list;
    this.exitCode = exitCode;
  }

  get code(): ErrorCode {
    return this.diagnostics[0]!.code;
  }
}

export function userError(code: ErrorCode, message: string, where: Partial<Diagnostic> = {}): SwarmgateError {
  return new SwarmgateError({ code, message, ...where });
}

/** `file:line:col: error[CODE]: message`, the form compilers use. */
export function formatDiagnostic(d: Diagnostic): string {
  let place = "";
  if (d.file !== undefined) {
    place = d.file;
    if (d.line !== undefined) place += `:${d.line}`;
    if (d.column !== undefined) place += `:${d.column}`;
    place += ": ";
  }
  return `${place}error[${d.code}]: ${d.message}`;
}

/** The diagnostic plus the offending source line with a caret under the column. */
export function formatDiagnosticWithSource(d: Diagnostic): string {
  const head = formatDiagnostic(d);
  if (d.sourceLine === undefined || d.line === undefined) return head;
  const gutter = String(d.line);
  const caret = " ".repeat(Math.max(0, (d.column ?? 1) - 1)) + "^";
  return `${head}\n ${gutter} | ${d.sourceLine}\n ${" ".repeat(gutter.length)} | ${caret}`;
}

/**
 * A value from the user, safe to echo in a message: control characters (ANSI
 * escape sequences, newlines) shown as \xNN escapes and long values cut, so an
 * error message can neither repaint the terminal nor bury the line it is about.
 */
export function displayValue(value: string, max = 60): string {
  const escaped = [...value].map((ch) => {
    const c = ch.codePointAt(0)!;
    return c < 0x20 || c === 0x7f || (c >= 0x80 && c < 0xa0) ? `\\x${c.toString(16).padStart(2, "0")}` : ch;
  }).join("");
  const chars = [...escaped];
  return chars.length > max ? `${chars.slice(0, max).join("")}… (${chars.length} characters)` : escaped;
}
