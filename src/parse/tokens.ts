// Words of an iptables-save (or ipset save) line, with the column each starts
// at. Those tools quote a value that holds spaces with double quotes and
// escape `"` and `\` inside it with a backslash (iptables' save_string).
import { userError } from "../errors.js";

export interface Token { text: string; column: number }

export interface Place { file: string; line: number; source: string }

export function tokenize(source: string, at: Place): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source[i]!;
    if (c === " " || c === "\t" || c === "\r") { i++; continue; }
    const column = i + 1;
    let text = "";
    if (c === '"') {
      i++;
      for (;;) {
        if (i >= source.length) throw syntaxAt(at, column, "a quoted value is not closed");
        const q = source[i]!;
        if (q === "\\" && i + 1 < source.length) { text += source[i + 1]; i += 2; continue; }
        if (q === '"') { i++; break; }
        text += q;
        i++;
      }
    } else {
      while (i < source.length && !/[ \t\r]/.test(source[i]!)) text += source[i++];
    }
    out.push({ text, column });
  }
  return out;
}

export function syntaxAt(at: Place, column: number, message: string) {
  return userError("IMPORT_SYNTAX", message, { file: at.file, line: at.line, column, sourceLine: at.source });
}

export function unsupportedAt(at: Place, column: number, message: string) {
  return userError("IMPORT_UNSUPPORTED", message, { file: at.file, line: at.line, column, sourceLine: at.source });
}
