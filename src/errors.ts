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
  | "POLICY_AUTO_PORTS"
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
  | "OUTPUT_EXISTS"
  // init
  | "INIT_NO_ROUTE"
  | "INIT_NO_ADDRESS"
  | "INIT_NO_LAN"
  // the machine
  | "TOOL_MISSING"
  | "TOOL_FAILED"
  // the rehearsal sandbox
  | "LAB_NEEDS_ROOT"
  | "LAB_LOAD_FAILED"
  // explain
  | "PACKET_SYNTAX"
  | "SIM_UNSUPPORTED"
  | "SIM_UNKNOWN"
  // reading another tool's ruleset (doctor, import, explain --from)
  | "IMPORT_SYNTAX"
  | "IMPORT_UNSUPPORTED"
  | "IMPORT_UNREADABLE"
  // BitTorrent clients' own configs (swarmgate clients)
  | "CLIENT_CONFIG_SYNTAX"
  | "CLIENT_CONFIG_VALUE"
  | "CLIENT_CONFIG_NOT_FOUND"
  | "CLIENT_CONFIG_UNREADABLE"
  | "CLIENT_CONFIG_NOT_REGULAR"
  | "CLIENT_CONFIG_TOO_LARGE"
  | "CLIENT_ROOT_INVALID"
  // apply, stop, status, rollback, install
  | "NEEDS_ROOT"
  | "STATE_UNWRITABLE"
  | "LOCKED"
  | "LOAD_FAILED"
  | "LOCKOUT"
  | "NO_BACKUP"
  | "CONFIRM_PENDING"
  | "FOLLOW_REFUSED"
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
    place = displayValue(d.file, 200);
    if (d.line !== undefined) place += `:${d.line}`;
    if (d.column !== undefined) place += `:${d.column}`;
    place += ": ";
  }
  return `${place}error[${d.code}]: ${d.message}`;
}

/**
 * The diagnostic plus the offending source line with a caret under the column.
 * The line comes from the user's file, so it is escaped like any user value (an
 * ANSI sequence in a policy must not repaint the terminal) and a long line is
 * cut to a window around the column.
 */
export function formatDiagnosticWithSource(d: Diagnostic): string {
  const head = formatDiagnostic(d.file === undefined ? d : { ...d, file: displayValue(d.file, Infinity) });
  if (d.sourceLine === undefined || d.line === undefined) return head;
  const WIDTH = 100;
  const line = d.sourceLine.replace(/\r$/, "");
  // Columns count UTF-16 units (what the YAML positions use). Only a stretch
  // around the column is looked at: a minified 1 MiB one-line file stays cheap.
  const at = Math.min(Math.max(0, (d.column ?? 1) - 1), line.length);
  const from = Math.max(0, at - WIDTH);
  const to = Math.min(line.length, at + 2 * WIDTH);
  // One cell per code point, as shown; a tab shows as one space so the caret stays aligned.
  const cells: string[] = [];
  let caretCell = -1;
  let unit = from;
  for (const ch of line.slice(from, to)) {
    if (caretCell < 0 && unit >= at) caretCell = cells.length;
    cells.push(ch === "\t" ? " " : displayValue(ch));
    unit += ch.length;
  }
  if (caretCell < 0) caretCell = cells.length;
  const width = (a: number, b: number) => cells.slice(a, b).join("").length;
  let first = 0;
  let last = cells.length; // exclusive
  if (from > 0 || to < line.length || width(0, cells.length) > WIDTH) {
    first = caretCell;
    while (first > 0 && width(first - 1, caretCell) <= WIDTH / 3) first--;
    last = first;
    while (last < cells.length && width(first, last + 1) <= WIDTH) last++;
  }
  const before = first > 0 || from > 0 ? "…" : "";
  const after = last < cells.length || to < line.length ? "…" : "";
  const caret = " ".repeat(before.length + width(first, caretCell)) + "^";
  const gutter = String(d.line);
  return `${head}\n ${gutter} | ${before}${cells.slice(first, last).join("")}${after}\n ${" ".repeat(gutter.length)} | ${caret}`;
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
