// From judged cells to report lines: within one destination-port cell, the
// accepted address cells grouped by (deciding rule, target, source ports) and
// written as prefixes; then adjacent port cells with the same groups merged
// into one port range.
import type { Family } from "../net/address.js";
import { formatPortRange } from "../net/port.js";
import { formatPrefix } from "../net/prefix.js";
import { prefixCount, rangeToPrefixes } from "../net/ranges.js";
import { runs, type Cells } from "./cells.js";

/** One simulated packet's outcome. */
/** `depends`: accepted only when these conditions (no packet decides them) fall one way; rulesets read from other tools. */
export interface Judged { accept: boolean; key: string; paths: string[]; intents: string[]; target?: string; depends?: string[] }

/** One line of the report for one port cell, before its ports are known. */
export interface Group {
  peers: string[];
  except?: string[];
  sourcePorts?: string;
  target?: string;
  paths: string[];
  intents: string[];
  depends?: string[];
}

/** An address set as written in the report: prefixes, or "anywhere" with the prefixes left out. */
export interface SetText { peers: string[]; except?: string[] }

/** Writes an address set given as selected cells. */
export type Describe = (family: Family, cells: Cells<bigint>, selected: (i: number) => boolean) => SetText;

/**
 * A `Describe` that remembers what it wrote: most port cells select the same
 * address set (anywhere except loopback and the machine's own addresses), and
 * writing it costs up to 2 × 128 prefixes per side for IPv6.
 */
export function setDescriber(): Describe {
  const memo = new Map<string, SetText>();
  return (family, cells, selected) => {
    const inside = runs(cells, selected);
    const key = `${family}:${inside.map(([a, b]) => `${a.toString(36)}-${b.toString(36)}`).join(",")}`;
    let text = memo.get(key);
    // Shared, frozen: thousands of port cells describe the same set, and no reader changes one.
    if (!text) { text = Object.freeze(describeRuns(family, inside, cells.end)); Object.freeze(text.peers); if (text.except) Object.freeze(text.except); memo.set(key, text); }
    return text;
  };
}

/** The gaps between ascending runs over [0, end]. */
function complement(inside: readonly [bigint, bigint][], end: bigint): [bigint, bigint][] {
  const out: [bigint, bigint][] = [];
  let next = 0n;
  for (const [a, b] of inside) { if (a > next) out.push([next, a - 1n]); next = b + 1n; }
  if (next <= end) out.push([next, end]);
  return out;
}

/** The shorter of the two descriptions, counted before either is written. */
export function describeRuns(family: Family, inside: [bigint, bigint][], end: bigint): SetText {
  const outside = complement(inside, end);
  if (outside.length === 0) return { peers: ["anywhere"] };
  const count = (rs: [bigint, bigint][]) => rs.reduce((n, [a, b]) => n + prefixCount(family, a, b), 0);
  const write = (rs: [bigint, bigint][]) => rs.flatMap(([a, b]) => rangeToPrefixes(family, a, b)).map(formatPrefix);
  return count(outside) < count(inside) ? { peers: ["anywhere"], except: write(outside) } : { peers: write(inside) };
}

/** The groups of one port cell: judged[address cell][source-port cell]. */
export function groupCells(judged: Judged[][], family: Family, addrs: Cells<bigint>, sports: Cells<number>, describeSet: Describe): Group[] {
  const groups = new Map<string, { addrs: boolean[]; cell: Judged; sports: string }>();
  judged.forEach((bySport, ai) => {
    const accepted = bySport.map((c) => c.accept);
    const first = bySport.find((c) => c.accept);
    if (!first) return;
    const sportText = accepted.every(Boolean) ? "" : runs(sports, (i) => accepted[i]!).map(([a, b]) => formatPortRange({ first: a, last: b })).join(",");
    const key = `${first.key}|${sportText}`;
    const g = groups.get(key) ?? { addrs: addrs.starts.map(() => false), cell: first, sports: sportText };
    g.addrs[ai] = true;
    groups.set(key, g);
  });
  return [...groups.values()].map((g) => ({
    ...describeSet(family, addrs, (k) => g.addrs[k]!), ...(g.sports && { sourcePorts: g.sports }),
    ...(g.cell.target && { target: g.cell.target }), paths: g.cell.paths, intents: g.cell.intents, ...(g.cell.depends && { depends: g.cell.depends }),
  }));
}

/** Adjacent port cells with the same groups, as (port text, groups) in port order. */
export function mergePorts(dports: Cells<number>, rows: Group[][], icmp: boolean): { ports: string; groups: Group[] }[] {
  // Port cells judged alike share one rows array: write each array's signature once.
  const written = new Map<Group[], string>();
  const signature = rows.map((r) => {
    let text = written.get(r);
    if (text === undefined) { text = JSON.stringify(r); written.set(r, text); }
    return text;
  });
  const out: { ports: string; groups: Group[] }[] = [];
  for (let i = 0; i < rows.length;) {
    let j = i;
    while (j + 1 < rows.length && signature[j + 1] === signature[i]) j++;
    const last = j + 1 < dports.starts.length ? dports.starts[j + 1]! - 1 : dports.end;
    if (rows[i]!.length) out.push({ ports: icmp ? "echo-request" : formatPortRange({ first: dports.starts[i]!, last }), groups: rows[i]! });
    i = j + 1;
  }
  return out;
}
