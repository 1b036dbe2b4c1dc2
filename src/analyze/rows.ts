// From judged cells to report lines: within one destination-port cell, the
// accepted address cells grouped by (deciding rule, target, source ports) and
// written as prefixes; then adjacent port cells with the same groups merged
// into one port range.
import type { Family } from "../net/address.js";
import { formatPortRange } from "../net/port.js";
import { formatPrefix } from "../net/prefix.js";
import { rangeToPrefixes, runs, type Cells } from "./cells.js";

/** One simulated packet's outcome. */
export interface Judged { accept: boolean; key: string; paths: string[]; intents: string[]; target?: string }

/** One line of the report for one port cell, before its ports are known. */
export interface Group {
  peers: string[];
  except?: string[];
  sourcePorts?: string;
  target?: string;
  paths: string[];
  intents: string[];
}

/** An address set as prefixes, or as "anywhere" with the fewer prefixes left out when that is shorter. */
export function describeSet(family: Family, cells: Cells<bigint>, selected: (i: number) => boolean): { peers: string[]; except?: string[] } {
  const toPrefixes = (pick: (i: number) => boolean) => runs(cells, pick).flatMap(([a, b]) => rangeToPrefixes(family, a, b)).map(formatPrefix);
  const inside = toPrefixes(selected);
  const outside = toPrefixes((i) => !selected(i));
  if (outside.length === 0) return { peers: ["anywhere"] };
  return outside.length < inside.length ? { peers: ["anywhere"], except: outside } : { peers: inside };
}

/** The groups of one port cell: judged[address cell][source-port cell]. */
export function groupCells(judged: Judged[][], family: Family, addrs: Cells<bigint>, sports: Cells<number>): Group[] {
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
    ...(g.cell.target && { target: g.cell.target }), paths: g.cell.paths, intents: g.cell.intents,
  }));
}

/** Adjacent port cells with the same groups, as (port text, groups) in port order. */
export function mergePorts(dports: Cells<number>, rows: Group[][], icmp: boolean): { ports: string; groups: Group[] }[] {
  const signature = rows.map((r) => JSON.stringify(r));
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
