// Rulesets that other tools wrote, from files: each file's format is told by
// its content (iptables-save or ip6tables-save output, `ipset save` output),
// the sets are read first so that `-m set` rules can use their members, and
// every table of every file goes into one IR ruleset, in which the simulator
// runs each hook's chains in priority order.
import { userError } from "../errors.js";
import type { Ruleset, Table } from "../ir/ruleset.js";
import { readRegularFile, type FileKind } from "../policy/read-file.js";
import { parseIpsetSave, type IpSet } from "./ipset.js";
import { parseIptablesSave } from "./iptables-save.js";
import { parseNftJson } from "./nft-json.js";

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
  /** What was not read, and why. */
  notes: string[];
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

/**
 * Like readForeignFiles, and `nft list` text too: nft alone reads its own
 * language (variables, includes, defines), so the text is loaded into a
 * throwaway network namespace and read back as nft -j output (root needed).
 */
export async function readForeign(files: readonly string[]): Promise<ForeignRuleset> {
  if (files.length === 0) throw userError("CLI_USAGE", "no ruleset file given");
  const texts = files.map((file) => ({ file, text: decode(readRegularFile(file, RULESET_FILE), file) }));
  const nftText = texts.filter((t) => formatOf(t.text) === "nft-text");
  if (nftText.length === 0) return readForeignTexts(texts);
  if (process.getuid?.() !== 0) throw userError("NEEDS_ROOT", "nft list text is read by loading it into a throwaway network namespace, which needs root; or give nft -j list ruleset output", { file: nftText[0]!.file });
  const { withNetns } = await import("../system/netns.js");
  const converted = await withNetns(1, async (ns) => {
    const out: { file: string; text: string }[] = [];
    for (const t of nftText) {
      await ns.exec("nft", ["flush", "ruleset"]);
      const load = await ns.exec("nft", ["-f", "-"], { input: t.text });
      if (load.code !== 0) throw userError("IMPORT_SYNTAX", `nft could not load it: ${load.stderr.trim().split("\n").slice(0, 6).join(" / ")}`, { file: t.file });
      out.push({ file: t.file, text: (await ns.execChecked("nft", ["-j", "list", "ruleset"])).stdout });
    }
    return out;
  });
  return readForeignTexts(texts.map((t) => converted.find((c) => c.file === t.file) ?? t));
}

/** A chain that jumps back to itself: the kernel refuses to load one (ELOOP), so such a file was not saved from it. */
function refuseLoops(table: Table, file: string): void {
  const byName = new Map(table.chains.map((c) => [c.name, c]));
  const state = new Map<string, "open" | "done">();
  const visit = (name: string, path: string[]): void => {
    if (state.get(name) === "done") return;
    if (state.get(name) === "open") {
      throw userError("IMPORT_SYNTAX", `table ${table.family} ${table.name}: chain ${name} jumps back to itself (${[...path.slice(path.indexOf(name)), name].join(" → ")}); the kernel refuses loops, so this was not saved from one`, { file });
    }
    // The kernel stops at 16 (nft) or a little more (iptables): a file nested far deeper was not saved from one either.
    if (path.length > 64) throw userError("IMPORT_UNSUPPORTED", `table ${table.family} ${table.name}: chains jump more than 64 deep (from ${path[0]})`, { file });
    state.set(name, "open");
    for (const r of byName.get(name)?.rules ?? []) {
      if (r.verdict.kind === "jump" || r.verdict.kind === "goto") visit(r.verdict.chain, [...path, name]);
    }
    state.set(name, "done");
  };
  for (const c of table.chains) visit(c.name, []);
}

export function readForeignFiles(files: readonly string[]): ForeignRuleset {
  if (files.length === 0) throw userError("CLI_USAGE", "no ruleset file given");
  const texts = files.map((file) => ({ file, text: decode(readRegularFile(file, RULESET_FILE), file) }));
  return readForeignTexts(texts);
}

/**
 * Every table once: a table iptables-nft wrote is taken from iptables-save
 * output (nft -j shows its matches as argument-less `xt` stubs), every other
 * one from nft -j; a table iptables-save could not show (nft made it) is not
 * taken from iptables-save.
 */
export function readForeignTexts(texts: readonly { file: string; text: string }[]): ForeignRuleset {
  const typed = texts.map((t) => ({ ...t, format: formatOf(t.text) }));
  const ipsets = new Map<string, IpSet>();
  for (const t of typed) if (t.format === "ipset") for (const [name, set] of parseIpsetSave(t.text, t.file)) ipsets.set(name, set);
  const fromSave = new Map<string, { table: Table; file: string }>();
  const fromNft = new Map<string, { table: Table; file: string }>();
  const written = new Map<string, string>(); // iptables-nft tables nft -j pointed at, and where
  const read: ForeignRuleset["read"] = [];
  const notes: string[] = [];
  const put = (into: Map<string, { table: Table; file: string }>, table: Table, file: string) => {
    const key = `${table.family} ${table.name}`;
    const other = into.get(key);
    if (other) throw userError("IMPORT_SYNTAX", `table ${key} is in ${other.file} and again here; give each ruleset once`, { file });
    into.set(key, { table, file });
  };
  for (const t of typed) {
    switch (t.format) {
      case "ipset":
      case "empty":
        read.push({ file: t.file, format: t.format, tables: [] });
        break;
      case "iptables-save": {
        const parsed = parseIptablesSave(t.text, t.file, { ipsets });
        for (const table of parsed.tables) put(fromSave, table, t.file);
        read.push({ file: t.file, format: "iptables-save", tables: parsed.tables.map((x) => `${x.family} ${x.name}`) });
        break;
      }
      case "nft-json": {
        const parsed = parseNftJson(t.text, t.file);
        for (const table of parsed.tables) put(fromNft, table, t.file);
        for (const key of parsed.iptablesNft) written.set(key, t.file);
        notes.push(...parsed.notes);
        read.push({ file: t.file, format: "nft-json", tables: parsed.tables.map((x) => `${x.family} ${x.name}`) });
        break;
      }
      case "nft-text":
        throw userError("IMPORT_UNSUPPORTED", "nft list text is read only where a throwaway namespace can load it (swarmgate explain, doctor and import, as root); give nft -j list ruleset output here", { file: t.file });
      default:
        throw userError("IMPORT_SYNTAX", "not iptables-save, ip6tables-save, ipset save or nft -j output", { file: t.file, line: 1, column: 1 });
    }
  }
  for (const [key, file] of written) {
    if (!fromSave.has(key)) throw userError("IMPORT_UNSUPPORTED", `table ${key} was written by iptables-nft, and nft -j shows its matches without their arguments; give ${key.startsWith("ip6") ? "ip6tables-save" : "iptables-save"} output too`, { file });
  }
  const tables: Table[] = [...fromSave.values()].map((x) => x.table);
  for (const [key, x] of fromNft) if (!fromSave.has(key)) tables.push(x.table);
  for (const t of tables) refuseLoops(t, [...fromSave.values(), ...fromNft.values()].find((x) => x.table === t)!.file);
  // Not deep-frozen like a compiled policy (71 ms for 5,000 rules): the readers made these objects for this call alone.
  return { ruleset: { tables }, read, notes };
}
