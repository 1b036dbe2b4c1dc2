// `ipset save` output: the members of the sets that `-m set --match-set`
// rules test. Sets of single addresses or networks (hash:ip, hash:net,
// bitmap:ip) become prefixes; sets of other kinds (ip,port pairs, …) are
// kept by name only, and a rule testing one carries an unknown condition.
import { parsePrefix, type Prefix } from "../net/prefix.js";
import { rangeToPrefixes } from "../net/ranges.js";
import { parseAddress } from "../net/address.js";
import { syntaxAt, tokenize, type Place } from "./tokens.js";

export interface IpSet {
  name: string;
  type: string;
  /** The members as prefixes, for the set types that hold addresses alone. */
  prefixes?: Prefix[];
}

const ADDRESS_TYPES = new Set(["hash:ip", "hash:net", "bitmap:ip"]);

export function parseIpsetSave(text: string, file: string): Map<string, IpSet> {
  const sets = new Map<string, IpSet>();
  text.split("\n").forEach((source, index) => {
    const at: Place = { file, line: index + 1, source };
    const words = tokenize(source, at);
    if (words.length === 0 || words[0]!.text.startsWith("#")) return;
    const [verb, name, value] = words;
    if (verb!.text === "create") {
      if (!name || !value) throw syntaxAt(at, verb!.column, "`create` needs a set name and a type");
      sets.set(name.text, { name: name.text, type: value.text, ...(ADDRESS_TYPES.has(value.text) && { prefixes: [] }) });
    } else if (verb!.text === "add") {
      if (!name || !value) throw syntaxAt(at, verb!.column, "`add` needs a set name and a member");
      const set = sets.get(name.text);
      if (!set) throw syntaxAt(at, name.column, `set "${name.text}" is added to before it is created`);
      if (!set.prefixes) return;
      const member = memberPrefixes(value.text);
      if (!member) throw syntaxAt(at, value.column, `"${value.text}" is not an address, network or range`);
      set.prefixes.push(...member);
    } else {
      throw syntaxAt(at, verb!.column, `"${verb!.text}" is not a line of \`ipset save\` (create or add)`);
    }
  });
  return sets;
}

/** "10.0.0.1", "10.0.0.0/24" or "10.0.0.1-10.0.0.9". */
function memberPrefixes(text: string): Prefix[] | undefined {
  const dash = text.indexOf("-");
  if (dash > 0) {
    const a = parseAddress(text.slice(0, dash));
    const b = parseAddress(text.slice(dash + 1));
    if (!a || !b || a.family !== b.family || a.value > b.value) return undefined;
    return rangeToPrefixes(a.family, a.value, b.value);
  }
  const p = parsePrefix(text, "interface");
  return p.ok ? [p.prefix] : undefined;
}
