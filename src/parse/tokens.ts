// Words of an iptables-save (or ipset save) line, with the column each starts
// at. Those tools quote a value that holds spaces with double quotes and
// escape `"` and `\` inside it with a backslash (iptables' save_string).
import { userError } from "../errors.js";

export interface Token { text: string; column: number }

export interface Place { file: string; line: number; source: string }

export function tokenize(source: string, at: Place): Token[] {
  const out: Token[] = [];
  // Most lines quote nothing: words by a regular expression, in one pass.
  if (!source.includes('"')) {
    const n = source.length;
    for (let i = 0; i < n;) {
      const c = source.charCodeAt(i);
      if (c === 32 || c === 9 || c === 13) { i++; continue; }
      let j = i + 1;
      while (j < n) { const d = source.charCodeAt(j); if (d === 32 || d === 9 || d === 13) break; j++; }
      out.push({ text: source.slice(i, j), column: i + 1 });
      i = j;
    }
    return out;
  }
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
