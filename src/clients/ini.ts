// Qt's QSettings INI format as qBittorrent writes it: "[Section]" headers and
// "Group\Key=value" lines; "/" in a key path is written "\". Values may be
// quoted with C escapes. Only what a reader needs: the string value of each
// key path ("BitTorrent/Session/Port") and its line.
import { Findings } from "./values.js";

export interface IniValue { value: string; line: number }

export function parseQtIni(text: string, found: Findings): Map<string, IniValue> {
  const values = new Map<string, IniValue>();
  let section = "General";
  const lines = text.split("\n");
  lines.forEach((raw, index) => {
    const line = raw.replace(/\r$/, "");
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith(";") || trimmed.startsWith("#")) return;
    if (trimmed.startsWith("[")) {
      if (!trimmed.endsWith("]")) return found.syntax("a section header must end with ]", index + 1, line.length + 1);
      section = trimmed.slice(1, -1).trim();
      return;
    }
    const eq = line.indexOf("=");
    if (eq < 0) return found.syntax("expected Key=value", index + 1, 1);
    const key = line.slice(0, eq).trim().replace(/\\/g, "/");
    // QSettings stores keys outside any section under "General".
    const path = section === "General" ? key : `${section}/${key}`;
    values.set(path, { value: unquote(line.slice(eq + 1).trim()), line: index + 1 });
  });
  return values;
}

function unquote(v: string): string {
  if (v.length < 2 || !v.startsWith('"') || !v.endsWith('"')) return v;
  return v.slice(1, -1).replace(/\\(.)/g, (_, c: string) => ({ n: "\n", t: "\t", r: "\r" } as Record<string, string>)[c] ?? c);
}
