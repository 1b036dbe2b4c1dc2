// `nft -j list ruleset` (libnftables-json(5)) into the IR. Tables of family
// ip, ip6 and inet are read (bridge, arp and netdev are listed as not read);
// base chains keep their hook, priority and policy. A rule becomes one IR rule,
// or several when it tests a concatenated set or a verdict map, or `th dport`
// for TCP and UDP: the elements of a set never overlap (the kernel refuses
// it), so a packet matches at most one of them and the rules are exact
// together. What the IR cannot say is an unknown condition or target, as for
// iptables-save. A table that iptables-nft wrote shows its matches as `xt`
// stubs without their arguments: it is not read here but named, so that the
// caller reads it from iptables-save instead.
import { ICMP4, ICMP6 } from "../ir/icmp.js";
import type { CtState, L4Protocol, LimitUnit, Match, PacketType, TcpFlag } from "../ir/match.js";
import type { BaseChainSpec, Chain, Hook, Rule, Table, TableFamily } from "../ir/ruleset.js";
import type { Verdict } from "../ir/verdict.js";
import { parseAddress, type Family } from "../net/address.js";
import { parsePrefix, type Prefix } from "../net/prefix.js";
import { portComplement, type PortRange } from "../net/port.js";
import { prefixComplement, rangeToPrefixes } from "../net/ranges.js";
import { userError } from "../errors.js";
import { jsonErrorOffset } from "./json-position.js";
import { writerOf } from "./writer.js";

type Json = unknown;
type Obj = Record<string, Json>;

export interface ParsedNft {
  tables: Table[];
  /** Tables iptables-nft wrote ("ip filter"): read them from iptables-save output. */
  iptablesNft: string[];
  /** What was not read, in words. */
  notes: string[];
}

/** One way a rule can match, with the verdict it then has. */
interface Way { matches: Match[]; verdict?: Verdict }

const MAX_WAYS = 100_000;
const HOOKS: readonly Hook[] = ["prerouting", "input", "forward", "output", "postrouting"];
const isObj = (v: Json): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

export function parseNftJson(text: string, file: string): ParsedNft {
  let doc: Json;
  try { doc = JSON.parse(text); } catch {
    const pos = Math.max(0, jsonErrorOffset(text));
    const before = text.slice(0, pos);
    const line = before.split("\n").length;
    const source = text.split("\n")[line - 1] ?? "";
    throw userError("IMPORT_SYNTAX", pos >= text.length ? "not valid JSON: the text ends too early" : "not valid JSON here", { file, line, column: pos - before.lastIndexOf("\n"), sourceLine: source });
  }
  const items = isObj(doc) && Array.isArray(doc.nftables) ? doc.nftables : undefined;
  if (!items) throw userError("IMPORT_SYNTAX", 'not nft -j output: the top level is not {"nftables": [...]}', { file, line: 1, column: 1 });
  const notes: string[] = [];
  const tables = new Map<string, { family: TableFamily; name: string; chains: Map<string, { name: string; base?: BaseChainSpec; rules: Rule[] }> }>();
  const sets = new Map<string, Obj>();
  const xt = new Set<string>();
  const rules: Obj[] = [];
  for (const item of items) {
    if (!isObj(item)) continue;
    const [kind, body] = Object.entries(item)[0] ?? [];
    if (!isObj(body)) continue;
    const key = `${String(body.family)} ${String(body.table ?? body.name)}`;
    if (kind === "table") {
      const family = body.family;
      if (family !== "ip" && family !== "ip6" && family !== "inet") { notes.push(`table ${String(family)} ${String(body.name)} is not read (a ${String(family)} table does not filter routed IP traffic)`); continue; }
      tables.set(key, { family, name: String(body.name), chains: new Map() });
    } else if (kind === "chain") {
      const t = tables.get(key);
      if (!t) continue;
      const name = String(body.name);
      const hook = body.hook;
      if (hook !== undefined && !HOOKS.includes(hook as Hook)) { notes.push(`chain ${key}/${name} on hook ${String(hook)} is not read`); continue; }
      const base = hook === undefined ? undefined : {
        type: body.type === "nat" ? "nat" : "filter", hook: hook as Hook, priority: typeof body.prio === "number" ? body.prio : 0,
        policy: body.policy === "drop" ? "drop" : "accept",
      } satisfies BaseChainSpec;
      t.chains.set(name, { name, rules: [], ...(base && { base }) });
    } else if (kind === "set" || kind === "map") {
      sets.set(`${key}/${String(body.name)}`, body);
    } else if (kind === "rule") {
      rules.push(body);
      if (Array.isArray(body.expr) && body.expr.some((e) => isObj(e) && "xt" in e)) xt.add(key);
    }
  }
  const numbers = new Map<string, number>();
  for (const r of rules) {
    const key = `${String(r.family)} ${String(r.table)}`;
    if (xt.has(key)) continue;
    const chain = tables.get(key)?.chains.get(String(r.chain));
    if (!chain) continue;
    const n = (numbers.get(`${key}/${chain.name}`) ?? 0) + 1;
    numbers.set(`${key}/${chain.name}`, n);
    const family = tables.get(key)!.family;
    const text = ruleText(r);
    const comment = typeof r.comment === "string" ? r.comment : undefined;
    const writer = writerOf(chain.name, comment, String(r.table));
    const origin = {
      path: `${file}: table ${key} chain ${chain.name} rule ${n}`,
      intent: comment ?? text,
      source: { format: "nft-json" as const, file, line: 1, table: key, chain: chain.name, number: n, text, ...(typeof r.handle === "number" && { handle: r.handle }), ...(writer && { writer }) },
    };
    for (const way of ruleWays(r, family, key, sets)) chain.rules.push({ matches: way.matches, verdict: way.verdict!, origin });
  }
  // A jump to a chain the table does not have: nft would have refused it, so the file was not listed from a kernel.
  for (const [key, t] of tables) for (const c of t.chains.values()) for (const r of c.rules) {
    if ((r.verdict.kind === "jump" || r.verdict.kind === "goto") && !t.chains.has(r.verdict.chain)) {
      throw userError("IMPORT_SYNTAX", `table ${key} chain ${c.name}: ${r.verdict.kind} to chain ${r.verdict.chain}, which the table does not have`, { file });
    }
  }
  for (const key of xt) notes.push(`table ${key} was written by iptables-nft; its rules are read from iptables-save output`);
  const out: Table[] = [];
  for (const [key, t] of tables) {
    if (xt.has(key)) continue;
    out.push({ family: t.family, name: t.name, chains: [...t.chains.values()].map((c): Chain => ({ name: c.name, rules: c.rules, ...(c.base && { base: c.base }) })) });
  }
  return { tables: out, iptablesNft: [...xt], notes };
}

// ---- one rule -------------------------------------------------------------

function ruleWays(r: Obj, family: TableFamily, table: string, sets: Map<string, Obj>): Way[] {
  let ways: Way[] = [{ matches: [] }];
  const exprs = Array.isArray(r.expr) ? r.expr : [];
  const and = (alts: Way[]) => {
    // Decided before building: a set of a million elements times another must not be built to be refused.
    if (ways.length * alts.length > MAX_WAYS) { ways = [{ matches: [{ kind: "unknown", text: `a rule of more than ${MAX_WAYS} alternatives` }] }]; return; }
    const next: Way[] = [];
    for (const w of ways) for (const a of alts) {
      const merged = { matches: [...w.matches, ...a.matches], ...(w.verdict ?? a.verdict ? { verdict: w.verdict ?? a.verdict } : {}) };
      if (!contradicts(merged.matches)) next.push(merged);
    }
    ways = next;
  };
  const plain = (m: Match[]) => and([{ matches: m }]);
  // An expression the IR cannot say is unknown, but what it implies is kept: `icmpv6 type x` never matches TCP.
  const unknown = (e: Json) => {
    const left = isObj(e) && isObj(e.match) ? e.match.left : undefined;
    const proto = isObj(left) && isObj(left.payload) ? protocolOf(left.payload.protocol === "ip6" || left.payload.protocol === "ip" || left.payload.protocol === "th" ? undefined : left.payload.protocol) : undefined;
    plain([...(proto ? [{ kind: "protocol" as const, protocol: proto }] : []), { kind: "unknown", text: exprText(e) }]);
  };
  let verdict: Verdict | undefined;
  let logged: Verdict | undefined;
  for (const e of exprs) {
    if (!isObj(e)) continue;
    const [kind, body] = Object.entries(e)[0] ?? [];
    switch (kind) {
      case "match": {
        const alts = matchWays(body as Obj, family, table, sets);
        if (alts) and(alts); else unknown(e);
        break;
      }
      case "counter": break;
      case "limit": {
        const l = body as Obj;
        const unit = UNITS[String(l.per)];
        if (l.inv === true || !unit || typeof l.rate !== "number" || (l.rate_unit && l.rate_unit !== "packets")) unknown(e);
        else plain([{ kind: "limit", count: l.rate, unit, burst: typeof l.burst === "number" ? l.burst : 5 }]);
        break;
      }
      // Logging is a side effect: the rule's verdict is the statement after it, if any.
      case "log": logged = { kind: "log", prefix: isObj(body) && typeof body.prefix === "string" ? body.prefix : "" }; break;
      case "vmap": {
        const v = body as Obj;
        const alts = vmapWays(v, family, table, sets);
        if (alts) and(alts); else unknown(e);
        break;
      }
      default: {
        const v = statementVerdict(kind ?? "", body, family);
        if (v) verdict = v; else unknown(e);
      }
    }
  }
  // A rule whose last statement decides nothing only counts (or logs): it goes on with the next rule.
  return ways.map((w) => ({ matches: w.matches, verdict: w.verdict ?? verdict ?? logged ?? { kind: "other", text: "(no verdict: the rule only counts)", terminal: false } }));
}

const UNITS: Record<string, LimitUnit> = { second: "second", minute: "minute", hour: "hour", day: "day" };

function statementVerdict(kind: string, body: Json, family: TableFamily): Verdict | undefined {
  const b = isObj(body) ? body : {};
  switch (kind) {
    case "accept": return { kind: "accept" };
    case "drop": return { kind: "drop" };
    case "return": return { kind: "return" };
    case "jump": return typeof b.target === "string" ? { kind: "jump", chain: b.target } : undefined;
    case "goto": return typeof b.target === "string" ? { kind: "goto", chain: b.target } : undefined;
    case "reject": return { kind: "reject", ...(b.expr !== undefined && { with: `${String(b.type ?? "icmp")} ${String(b.expr)}` }), ...(b.expr === undefined && b.type === "tcp reset" && { with: "tcp reset" }) };
    case "masquerade": return b.port === undefined ? { kind: "masquerade" } : undefined;
    case "notrack": return { kind: "notrack" };
    case "dnat": case "snat": {
      const addr = typeof b.addr === "string" ? parseAddress(b.addr) : undefined;
      const port = typeof b.port === "number" ? b.port : undefined;
      if (!addr || (b.port !== undefined && port === undefined) || (family !== "inet" && (family === "ip") !== (addr.family === 4))) return undefined;
      if (kind === "snat") return port === undefined ? { kind: "snat", to: addr } : undefined;
      return { kind: "dnat", to: addr, ...(port !== undefined && { port }) };
    }
    case "redirect": return b.port === undefined ? { kind: "redirect" } : typeof b.port === "number" ? { kind: "redirect", port: b.port } : undefined;
    case "queue": return { kind: "other", text: exprText({ queue: body }), terminal: true };
    case "mangle": case "ct": case "meta": case "tproxy": case "synproxy": case "flow": case "set": case "dup": case "fwd":
      return kind === "tproxy" || kind === "synproxy" ? { kind: "other", text: exprText({ [kind]: body }), terminal: true } : { kind: "other", text: exprText({ [kind]: body }), terminal: false };
    default: return undefined;
  }
}

// ---- matches --------------------------------------------------------------

type Field =
  | { kind: "addr"; dir: "saddr" | "daddr"; family: Family }
  | { kind: "port"; dir: "sport" | "dport"; protocols: ("tcp" | "udp")[] }
  | { kind: "l4proto" } | { kind: "nfproto" } | { kind: "iface"; dir: "iifname" | "oifname" }
  | { kind: "ctstate" } | { kind: "ctstatus" } | { kind: "fib"; dir: "saddr" | "daddr" } | { kind: "icmptype"; family: Family }
  | { kind: "tcpflags"; mask?: TcpFlag[] } | { kind: "pkttype" };

function fieldOf(left: Json): Field | undefined {
  if (!isObj(left)) return undefined;
  if (isObj(left.payload)) {
    const { protocol, field } = left.payload;
    if ((protocol === "ip" || protocol === "ip6") && (field === "saddr" || field === "daddr")) return { kind: "addr", dir: field, family: protocol === "ip" ? 4 : 6 };
    if ((protocol === "tcp" || protocol === "udp" || protocol === "th") && (field === "sport" || field === "dport")) return { kind: "port", dir: field, protocols: protocol === "th" ? ["tcp", "udp"] : [protocol] };
    if ((protocol === "ip" && field === "protocol") || (protocol === "ip6" && field === "nexthdr")) return { kind: "l4proto" };
    if ((protocol === "icmp" || protocol === "icmpv6") && field === "type") return { kind: "icmptype", family: protocol === "icmp" ? 4 : 6 };
    if (protocol === "tcp" && field === "flags") return { kind: "tcpflags" };
    return undefined;
  }
  if (isObj(left.meta)) {
    const k = left.meta.key;
    if (k === "l4proto") return { kind: "l4proto" };
    if (k === "nfproto") return { kind: "nfproto" };
    if (k === "iifname" || k === "oifname") return { kind: "iface", dir: k };
    // By index: the same interface as its name, unless it is renamed or re-created meanwhile.
    if (k === "iif" || k === "oif") return { kind: "iface", dir: k === "iif" ? "iifname" : "oifname" };
    if (k === "pkttype") return { kind: "pkttype" };
    return undefined;
  }
  if (isObj(left.ct)) {
    if (left.ct.key === "state" && left.ct.dir === undefined) return { kind: "ctstate" };
    if (left.ct.key === "status" && left.ct.dir === undefined) return { kind: "ctstatus" };
    return undefined;
  }
  if (isObj(left.fib)) {
    const flags = left.fib.flags;
    if (left.fib.result === "type" && Array.isArray(flags) && flags.length === 1 && (flags[0] === "saddr" || flags[0] === "daddr")) return { kind: "fib", dir: flags[0] };
    return undefined;
  }
  if (Array.isArray(left["&"]) && left["&"].length === 2) {
    const [f, mask] = left["&"] as [Json, Json];
    if (isObj(f) && isObj(f.payload) && f.payload.protocol === "tcp" && f.payload.field === "flags") {
      const m = flagList(mask);
      return m ? { kind: "tcpflags", mask: m } : undefined;
    }
  }
  return undefined;
}

/** The ways a match can hold, or undefined for one the IR cannot say. */
function matchWays(m: Obj, family: TableFamily, table: string, sets: Map<string, Obj>): Way[] | undefined {
  const op = m.op;
  let values = m.right;
  if (typeof values === "string" && values.startsWith("@")) {
    const set = sets.get(`${table}/${values.slice(1)}`);
    if (!set || !Array.isArray(set.elem)) return undefined;
    values = { set: set.elem };
  }
  if (isObj(m.left) && Array.isArray(m.left.concat)) return op === "==" || op === "in" ? concatWays(m.left.concat, values) : undefined;
  const f = fieldOf(m.left);
  if (!f) return undefined;
  const negate = op === "!=";
  if (op !== "==" && op !== "!=" && op !== "in" && !(op === "!" && f.kind === "tcpflags")) return undefined;
  const list = isObj(values) && Array.isArray(values.set) ? values.set : [values];
  return fieldWays(f, list, negate, op === "!", family);
}

function fieldWays(f: Field, list: Json[], negate: boolean, notAny: boolean, family: TableFamily): Way[] | undefined {
  const one = (m: Match): Way[] => [{ matches: [m] }];
  switch (f.kind) {
    case "addr": {
      if (family !== "inet" && (family === "ip") !== (f.family === 4)) return [];
      const prefixes = list.map((v) => prefixesOf(v, f.family));
      if (prefixes.some((p) => p === undefined)) return undefined;
      const all = prefixes.flat() as Prefix[];
      return one({ kind: f.dir, family: f.family, prefixes: negate ? prefixComplement(f.family, all) : all });
    }
    case "port": {
      const ranges = list.map(portRangeOf);
      if (ranges.some((r) => r === undefined)) return undefined;
      const rs = negate ? portComplement(ranges as PortRange[]) : (ranges as PortRange[]);
      return f.protocols.map((p) => ({ matches: [{ kind: f.dir, protocol: p, ranges: rs }] }));
    }
    case "l4proto": {
      const ps = list.map(protocolOf);
      if (negate || ps.some((p) => p === undefined)) return undefined;
      return (ps as L4Protocol[]).map((p) => ({ matches: [{ kind: "protocol", protocol: p }] }));
    }
    case "nfproto": {
      if (negate || list.length !== 1 || (list[0] !== "ipv4" && list[0] !== "ipv6")) return undefined;
      return one({ kind: "family", family: list[0] === "ipv4" ? 4 : 6 });
    }
    case "iface": {
      if (list.some((v) => typeof v !== "string")) return undefined;
      if (negate && list.length > 1) return undefined;
      return (list as string[]).map((name) => ({ matches: [{ kind: f.dir, name: name.endsWith("*") ? name.slice(0, -1) : name, negate, ...(name.endsWith("*") && { wildcard: true }) }] }));
    }
    case "ctstate": {
      const names = list.flatMap((v) => (Array.isArray(v) ? v : [v]));
      if (names.some((s) => !STATES.includes(s as CtState))) return undefined;
      const states = names as CtState[];
      return one({ kind: "ctstate", states: negate ? STATES.filter((s) => !states.includes(s)) : states });
    }
    case "ctstatus": {
      const names = list.flatMap((v) => (Array.isArray(v) ? v : [v]));
      return !negate && names.length === 1 && names[0] === "dnat" ? one({ kind: "ctdnat" }) : undefined;
    }
    case "fib":
      return !negate && list.length === 1 && list[0] === "local" ? one({ kind: "localaddr", field: f.dir }) : undefined;
    case "icmptype": {
      const types = list.map((v) => icmpType(f.family, v));
      if (negate || types.some((t) => t === undefined)) return undefined;
      return one({ kind: "icmptype", family: f.family, types: types as number[] });
    }
    case "pkttype": {
      const types = list.map((v) => (v === "host" ? "unicast" : v === "broadcast" || v === "multicast" ? v : undefined));
      if (types.some((t) => t === undefined)) return undefined;
      const all: PacketType[] = ["unicast", "broadcast", "multicast"];
      return one({ kind: "pkttype", types: negate ? all.filter((t) => !types.includes(t)) : (types as PacketType[]) });
    }
    case "tcpflags": {
      // `tcp flags & (mask) == value`, `!= value`, and `! (flags)`: no flag of the list set.
      if (list.length !== 1) return undefined;
      const value = flagList(list[0]);
      if (!value) return undefined;
      if (notAny) return one({ kind: "tcpflags", mask: value, equal: [], negate: false });
      if (!f.mask) return undefined;
      return one({ kind: "tcpflags", mask: f.mask, equal: value, negate });
    }
  }
}

/** `a . b @set`: one way per element, each a conjunction of its fields. */
function concatWays(fields: Json[], values: Json): Way[] | undefined {
  const fs = fields.map(fieldOf);
  if (fs.some((f) => f === undefined)) return undefined;
  const elems = isObj(values) && Array.isArray(values.set) ? values.set : [values];
  if (elems.length > MAX_WAYS) return undefined; // one rule per element: past this many, an unknown condition instead
  const ways: Way[] = [];
  for (const e of elems) {
    const parts = isObj(e) && Array.isArray(e.concat) ? e.concat : undefined;
    if (!parts || parts.length !== fs.length) return undefined;
    let acc: Way[] = [{ matches: [] }];
    for (let i = 0; i < fs.length; i++) {
      const alts = fieldWays(fs[i]!, [parts[i]!], false, false, "inet");
      if (!alts) return undefined;
      acc = acc.flatMap((w) => alts.map((a) => ({ matches: [...w.matches, ...a.matches] })));
    }
    ways.push(...acc);
  }
  return ways;
}

/** `key vmap { k : verdict, … }`: one way per element; a packet whose key is in none goes on. */
function vmapWays(v: Obj, family: TableFamily, table: string, sets: Map<string, Obj>): Way[] | undefined {
  let data = v.data;
  if (typeof data === "string" && data.startsWith("@")) {
    const map = sets.get(`${table}/${data.slice(1)}`);
    if (!map || !Array.isArray(map.elem)) return undefined;
    data = { set: map.elem };
  }
  const elems = isObj(data) && Array.isArray(data.set) ? data.set : undefined;
  if (!elems || elems.length > MAX_WAYS) return undefined;
  const ways: Way[] = [];
  for (const el of elems) {
    if (!Array.isArray(el) || el.length !== 2 || !isObj(el[1])) return undefined;
    const [kind, body] = Object.entries(el[1])[0] ?? [];
    const verdict = statementVerdict(kind ?? "", body, family);
    const alts = matchWays({ op: "==", left: v.key, right: el[0] }, family, table, sets);
    if (!verdict || !alts) return undefined;
    ways.push(...alts.map((a) => ({ matches: a.matches, verdict })));
  }
  return ways;
}

/** Matches no packet can satisfy together: two protocols, or two address families. */
function contradicts(ms: Match[]): boolean {
  let proto: string | undefined;
  let fam: Family | undefined;
  for (const m of ms) {
    const p = m.kind === "protocol" ? m.protocol : m.kind === "dport" || m.kind === "sport" ? m.protocol : m.kind === "icmptype" ? (m.family === 4 ? "icmp" : "icmpv6") : m.kind === "tcpflags" ? "tcp" : undefined;
    if (p) { if (proto && proto !== p) return true; proto = p; }
    const f = m.kind === "family" || m.kind === "saddr" || m.kind === "daddr" || m.kind === "icmptype" ? m.family : m.kind === "protocol" && (m.protocol === "icmp" || m.protocol === "icmpv6") ? (m.protocol === "icmp" ? 4 : 6) : undefined;
    if (f) { if (fam && fam !== f) return true; fam = f; }
  }
  return false;
}

const STATES: CtState[] = ["new", "established", "related", "invalid", "untracked"];
const FLAGS: TcpFlag[] = ["fin", "syn", "rst", "psh", "ack", "urg"];

function flagList(v: Json): TcpFlag[] | undefined {
  const names = Array.isArray(v) ? v : [v];
  return names.every((n) => FLAGS.includes(n as TcpFlag)) ? (names as TcpFlag[]) : undefined;
}

function protocolOf(v: Json): L4Protocol | undefined {
  if (v === "tcp" || v === 6) return "tcp";
  if (v === "udp" || v === 17) return "udp";
  if (v === "icmp" || v === 1) return "icmp";
  if (v === "ipv6-icmp" || v === "icmpv6" || v === 58) return "icmpv6";
  return undefined;
}

function prefixesOf(v: Json, family: Family): Prefix[] | undefined {
  if (typeof v === "string") {
    const p = parsePrefix(v, "interface");
    return p.ok && p.prefix.family === family ? [p.prefix] : undefined;
  }
  if (!isObj(v)) return undefined;
  if (isObj(v.prefix)) {
    const p = parsePrefix(`${String(v.prefix.addr)}/${String(v.prefix.len)}`, "interface");
    return p.ok && p.prefix.family === family ? [p.prefix] : undefined;
  }
  if (Array.isArray(v.range) && v.range.length === 2) {
    const [a, b] = v.range.map((x) => (typeof x === "string" ? parseAddress(x) : undefined));
    if (!a || !b || a.family !== family || b.family !== family || a.value > b.value) return undefined;
    return rangeToPrefixes(family, a.value, b.value);
  }
  if (isObj(v.elem)) return prefixesOf(v.elem.val, family);
  return undefined;
}

function portRangeOf(v: Json): PortRange | undefined {
  if (typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 65535) return { first: v, last: v };
  if (isObj(v) && Array.isArray(v.range) && v.range.length === 2) {
    const [a, b] = v.range;
    if (typeof a === "number" && typeof b === "number" && a <= b && b <= 65535) return { first: a, last: b };
  }
  if (isObj(v) && isObj(v.elem)) return portRangeOf(v.elem.val);
  return undefined;
}

/** nft's names for the ICMP types swarmgate does not write itself (nft(8), "ICMP TYPE" and "ICMPV6 TYPE"). */
const MORE_ICMP: Record<Family, Record<string, number>> = {
  4: { "source-quench": 4, redirect: 5, "router-advertisement": 9, "router-solicitation": 10, "timestamp-request": 13, "timestamp-reply": 14, "info-request": 15, "info-reply": 16, "address-mask-request": 17, "address-mask-reply": 18 },
  6: { "mld-listener-done": 132, "mld-listener-reduction": 132, "nd-redirect": 137, "router-renumbering": 138, "ind-neighbor-solicit": 141, "ind-neighbor-advert": 142 },
};

function icmpType(family: Family, v: Json): number | undefined {
  if (typeof v === "number") return v;
  const table = family === 4 ? ICMP4 : ICMP6;
  for (const [n, names] of Object.entries(table)) if (names.nft === v) return Number(n);
  return typeof v === "string" ? MORE_ICMP[family][v] : undefined;
}

// ---- text -----------------------------------------------------------------

/** The rule in nft's words, as far as this printer knows them; anything else as its JSON. */
export function ruleText(r: Obj): string {
  const exprs = Array.isArray(r.expr) ? r.expr : [];
  const parts = exprs.map(exprText).filter((t) => t !== "");
  if (typeof r.comment === "string") parts.push(`comment "${r.comment}"`);
  return parts.join(" ");
}

function valueText(v: Json): string {
  if (typeof v === "string" || typeof v === "number") return String(v);
  if (Array.isArray(v)) return v.map(valueText).join(",");
  if (!isObj(v)) return JSON.stringify(v);
  if (Array.isArray(v.set)) return `{ ${v.set.map((e) => (Array.isArray(e) && e.length === 2 ? `${valueText(e[0])} : ${exprText(e[1])}` : valueText(e))).join(", ")} }`;
  if (isObj(v.prefix)) return `${String(v.prefix.addr)}/${String(v.prefix.len)}`;
  if (Array.isArray(v.range)) return `${valueText(v.range[0])}-${valueText(v.range[1])}`;
  if (Array.isArray(v.concat)) return v.concat.map(valueText).join(" . ");
  if (isObj(v.payload)) return `${String(v.payload.protocol)} ${String(v.payload.field)}`;
  if (isObj(v.meta)) return `meta ${String(v.meta.key)}`;
  if (isObj(v.ct)) return `ct ${String(v.ct.key)}`;
  if (isObj(v.fib)) return `fib ${Array.isArray(v.fib.flags) ? v.fib.flags.join(" . ") : ""} ${String(v.fib.result)}`;
  if (Array.isArray(v["&"])) return `${valueText(v["&"][0])} & (${valueText(v["&"][1]).replace(/,/g, "|")})`;
  if (isObj(v.elem)) return valueText(v.elem.val);
  return JSON.stringify(v);
}

export function exprText(e: Json): string {
  if (!isObj(e)) return JSON.stringify(e);
  const [kind, body] = Object.entries(e)[0] ?? [];
  const b = isObj(body) ? body : {};
  switch (kind) {
    case "match": {
      const op = b.op === "==" || b.op === "in" ? "" : `${String(b.op)} `;
      return `${valueText(b.left)} ${op}${valueText(b.right)}`;
    }
    case "counter": return "counter";
    case "accept": case "drop": case "return": case "masquerade": case "notrack": return kind;
    case "jump": case "goto": return `${kind} ${String(b.target)}`;
    case "log": return typeof b.prefix === "string" ? `log prefix "${b.prefix}"` : "log";
    case "limit": return `limit rate ${b.inv ? "over " : ""}${String(b.rate)}/${String(b.per)}${b.burst ? ` burst ${String(b.burst)} packets` : ""}`;
    case "reject": return b.expr !== undefined ? `reject with ${String(b.type)} ${String(b.expr)}` : "reject";
    case "dnat": case "snat": return `${kind} to ${valueText(b.addr)}${b.port !== undefined ? `:${valueText(b.port)}` : ""}`;
    case "redirect": return b.port !== undefined ? `redirect to :${valueText(b.port)}` : "redirect";
    case "vmap": return `${valueText(b.key)} vmap ${valueText(b.data)}`;
    default: return JSON.stringify(e);
  }
}
