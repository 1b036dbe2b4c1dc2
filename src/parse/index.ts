// Rulesets that other tools wrote, from files: each file's format is told by
// its content (iptables-save or ip6tables-save output, `ipset save` output),
// the sets are read first so that `-m set` rules can use their members, and
// every table of every file goes into one IR ruleset, in which the simulator
// runs each hook's chains in priority order.
import { userError } from "../errors.js";
import { freeze, type Ruleset, type Table } from "../ir/ruleset.js";
import { readRegularFile, type FileKind } from "../policy/read-file.js";
import { parseIpsetSave, type IpSet } from "./ipset.js";
import { parseIptablesSave } from "./iptables-save.js";

/** A 5,000-rule iptables-save file is about 0.5 MB; nft JSON of the same is several. */
const RULESET_FILE: FileKind = {
  noun: "ruleset file", maxBytes: 64 * 1024 * 1024,
  codes: { notFound: "IMPORT_UNREADABLE", notRegular: "IMPORT_UNREADABLE", unreadable: "IMPORT_UNREADABLE", tooLarge: "IMPORT_UNREADABLE" },
};

/** "empty": no rule at all (ip6tables-save prints nothing when no IPv6 table exists): nothing filters. */
export type RulesetFormat = "iptables-save" | "ipset" | "nft-json" | "nft-text" | "empty";

export interface ForeignRuleset {
  ruleset: Ruleset;
  /** What was read from where, for the report. */
  read: { file: string; format: RulesetFormat; tables: string[] }[];
}

export function formatOf(text: string): RulesetFormat | undefined {
  const body = text.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
  const first = body[0];
  if (first === undefined) return "empty";
  if (first.startsWith("{")) return "nft-json";
  if (first.startsWith("*") || first.startsWith(":")) return "iptables-save";
  if (/^(create|add) \S+/.test(first)) return "ipset";
  if (/^(table|flush|add table|define|include)\b/.test(first)) return "nft-text";
  return undefined;
}

function decode(bytes: Buffer, file: string): string {
  try {
    if (bytes.includes(0)) throw new Error("NUL");
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw userError("IMPORT_UNREADABLE", "this is a binary file, not iptables-save, ipset or nft output", { file });
  }
}

export function readForeignFiles(files: readonly string[]): ForeignRuleset {
  if (files.length === 0) throw userError("CLI_USAGE", "no ruleset file given");
  const texts = files.map((file) => ({ file, text: decode(readRegularFile(file, RULESET_FILE), file) }));
  const typed = texts.map((t) => ({ ...t, format: formatOf(t.text) }));
  const ipsets = new Map<string, IpSet>();
  for (const t of typed) if (t.format === "ipset") for (const [name, set] of parseIpsetSave(t.text, t.file)) ipsets.set(name, set);
  const tables: Table[] = [];
  const read: ForeignRuleset["read"] = [];
  for (const t of typed) {
    switch (t.format) {
      case "ipset":
      case "empty":
        read.push({ file: t.file, format: t.format, tables: [] });
        break;
      case "iptables-save": {
        const parsed = parseIptablesSave(t.text, t.file, { ipsets });
        for (const table of parsed.tables) {
          if (tables.some((x) => x.family === table.family && x.name === table.name)) {
            throw userError("IMPORT_SYNTAX", `table ${table.family} ${table.name} is in two of the files given; give each ruleset once`, { file: t.file });
          }
          tables.push(table);
        }
        read.push({ file: t.file, format: "iptables-save", tables: parsed.tables.map((x) => `${x.family} ${x.name}`) });
        break;
      }
      case "nft-json":
      case "nft-text":
        throw userError("IMPORT_UNSUPPORTED", `${t.format === "nft-json" ? "nft -j" : "nft list"} output is not read yet; give iptables-save and ip6tables-save output`, { file: t.file });
      default:
        throw userError("IMPORT_SYNTAX", "not iptables-save, ip6tables-save or ipset save output (nor nft's)", { file: t.file, line: 1, column: 1 });
    }
  }
  return { ruleset: freeze({ tables }), read };
}
