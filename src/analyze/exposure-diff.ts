// The exact difference between two exposure reports on one interface: for
// every (direction, family, protocol), the port space is cut at every range
// either report names, and in each part the peers one report lets in are
// compared with the other's as address intervals. What the second closes
// that the first left open, and what it opens that the first kept closed,
// come out as lines of ports and peers, with the first report's rules
// (file:line) behind each closing. Lines that the first report opens only
// from some source ports (a stateless rule) or only as far as a condition
// allows count as open in it: a policy that lets them no longer in closes
// them. Forwarded lines are compared in one more dimension, where the
// connection goes (the DNAT'd LAN host, or the destinations routed through):
// in each port part, the destination space is cut at every target either
// report names, and the sources compared per destination part.
import { ADDRESS_BITS, sortedUnique, type Family } from "../net/address.js";
import { parsePrefix, prefixLast } from "../net/prefix.js";
import { fullRange, subtractRanges, unionRanges, type Range } from "../net/ranges.js";
import type { Exposure } from "./exposure.js";
import { describeRuns } from "./rows.js";


export interface DiffLine {
  direction: "inbound" | "outbound" | "forwarded";
  family: Family;
  protocol: "tcp" | "udp" | "icmp";
  ports: string;
  /** "anywhere", "anywhere except …" or prefixes: who (inbound) or where (outbound). */
  peers: string;
  /** Forwarded: where the connection goes (a LAN host after DNAT, or destination prefixes). */
  target?: string;
  /** Closings: how it was open (the first report's rules, or "not filtered"; a stateless rule says its source ports). */
  was?: string;
}

export interface ExposureDiff { closes: DiffLine[]; opens: DiffLine[] }

interface Region { first: number; last: number; addrs: Range[]; how: string }

function addrsOf(e: Exposure): Range[] {
  const toRanges = (list: string[]) => list.flatMap((t): Range[] => { const p = parsePrefix(t, "interface"); return p.ok ? [[p.prefix.network, prefixLast(p.prefix)]] : []; });
  if (e.peers[0] === "anywhere") return subtractRanges(fullRange(e.family), unionRanges(toRanges(e.except ?? [])));
  return unionRanges(toRanges(e.peers));
}

function portsOf(e: Exposure): [number, number][] {
  if (e.protocol === "icmp") return [[0, 0]];
  return e.ports.split(",").map((r) => { const [a, b] = r.split("-").map(Number); return [a!, b ?? a!]; });
}

const same = (a: Range[], b: Range[]) => a.length === b.length && a.every((r, i) => r[0] === b[i]![0] && r[1] === b[i]![1]);

/** Who, in words: anywhere, anywhere except the fewer prefixes, or the prefixes (as the exposure report writes them). */
export function describeAddresses(family: Family, rs: Range[]): string {
  const text = describeRuns(family, rs, (1n << BigInt(ADDRESS_BITS[family])) - 1n);
  return text.except ? `anywhere except ${text.except.join(", ")}` : text.peers.join(", ");
}

/** How an old line was open, in words. */
function howOpen(e: Exposure): string {
  const where = e.paths.filter(Boolean).join(", ");
  if (e.sourcePorts) return `open through a stateless rule, from source port ${e.sourcePorts}${where ? ` (${where})` : ""}`;
  if (e.depends) return `open as far as ${e.depends.join("; ")} allowed${where ? ` (${where})` : ""}`;
  return where ? `open through ${where}` : "open: nothing filtered it";
}

export function exposureDiff(before: readonly Exposure[], after: readonly Exposure[], iface: string): ExposureDiff {
  const closes: DiffLine[] = [];
  const opens: DiffLine[] = [];
  for (const direction of ["inbound", "outbound", "forwarded"] as const) {
    for (const family of [4, 6] as Family[]) {
      for (const protocol of ["tcp", "udp", "icmp"] as const) {
        if (direction === "forwarded") { diffForwarded(before, after, iface, family, protocol, closes, opens); continue; }
        const pick = (list: readonly Exposure[]) => list.filter((e) => e.direction === direction && e.interface === iface && e.protocol === protocol
          && (e.family === family || e.families === "IPv4+IPv6") && !e.target);
        const regions = (list: Exposure[]): Region[] => list.flatMap((e) => portsOf(e).map(([first, last]) => ({ first, last, addrs: addrsOf(e.families === "IPv4+IPv6" ? { ...e, family } : e), how: howOpen(e) })));
        const old = regions(pick(before));
        const now = regions(pick(after));
        if (old.length === 0 && now.length === 0) continue;
        const cuts = new Set<number>();
        for (const r of [...old, ...now]) { cuts.add(r.first); cuts.add(r.last + 1); }
        const bounds = [...cuts].sort((a, b) => a - b);
        let pendingClose: { first: number; last: number; addrs: Range[]; was: string } | undefined;
        let pendingOpen: { first: number; last: number; addrs: Range[] } | undefined;
        const flush = () => {
          if (pendingClose && pendingClose.addrs.length) closes.push({ direction, family, protocol, ports: portText(protocol, pendingClose.first, pendingClose.last), peers: describeAddresses(family, pendingClose.addrs), was: pendingClose.was });
          if (pendingOpen && pendingOpen.addrs.length) opens.push({ direction, family, protocol, ports: portText(protocol, pendingOpen.first, pendingOpen.last), peers: describeAddresses(family, pendingOpen.addrs) });
          pendingClose = undefined; pendingOpen = undefined;
        };
        for (let i = 0; i + 1 < bounds.length; i++) {
          const first = bounds[i]!;
          const last = bounds[i + 1]! - 1;
          const inOld = old.filter((r) => r.first <= first && r.last >= first);
          const inNew = now.filter((r) => r.first <= first && r.last >= first);
          const oldAddrs = unionRanges(inOld.flatMap((r) => r.addrs));
          const newAddrs = unionRanges(inNew.flatMap((r) => r.addrs));
          const closed = subtractRanges(oldAddrs, newAddrs);
          const opened = subtractRanges(newAddrs, oldAddrs);
          const was = [...new Set(inOld.filter((r) => subtractRanges(r.addrs, newAddrs).length > 0).map((r) => r.how))].join("; ");
          if (pendingClose && pendingClose.last + 1 === first && same(pendingClose.addrs, closed) && pendingClose.was === was) pendingClose.last = last;
          else { if (pendingClose?.addrs.length) closes.push({ direction, family, protocol, ports: portText(protocol, pendingClose.first, pendingClose.last), peers: describeAddresses(family, pendingClose.addrs), was: pendingClose.was }); pendingClose = { first, last, addrs: closed, was }; }
          if (pendingOpen && pendingOpen.last + 1 === first && same(pendingOpen.addrs, opened)) pendingOpen.last = last;
          else { if (pendingOpen?.addrs.length) opens.push({ direction, family, protocol, ports: portText(protocol, pendingOpen.first, pendingOpen.last), peers: describeAddresses(family, pendingOpen.addrs) }); pendingOpen = { first, last, addrs: opened }; }
        }
        flush();
      }
    }
  }
  return { closes, opens };
}

const portText = (protocol: string, first: number, last: number) => (protocol === "icmp" ? "echo-request" : first === last ? `${first}` : `${first}-${last}`);

/** A forwarded line's target as address ranges: "anywhere", "anywhere except …", or prefixes. */
export function targetRanges(family: Family, target: string): Range[] {
  const list = (text: string) => text.split(", ").flatMap((t): Range[] => { const p = parsePrefix(t, "interface"); return p.ok && p.prefix.family === family ? [[p.prefix.network, prefixLast(p.prefix)]] : []; });
  if (target === "anywhere") return fullRange(family);
  if (target.startsWith("anywhere except ")) return subtractRanges(fullRange(family), unionRanges(list(target.slice("anywhere except ".length))));
  return unionRanges(list(target));
}

interface Box { first: number; last: number; addrs: Range[]; dests: Range[]; how: string }
interface Part { addrs: Range[]; dests: Range[]; was: string }

/** Boundaries of a set of range lists, sorted: the cells are [b[i], b[i+1]-1]. */
function boundsOf(lists: Range[][]): bigint[] {
  const cuts: bigint[] = [];
  for (const rs of lists) for (const [a, b] of rs) cuts.push(a, b + 1n);
  return sortedUnique(cuts);
}

const rangesKey = (rs: Range[]) => rs.map(([a, b]) => `${a}-${b}`).join(",");

/** In one port part: per destination part, the sources closed and opened; destination parts alike are merged. */
function partsAt(old: Box[], now: Box[]): { closed: Part[]; opened: Part[] } {
  const bounds = boundsOf([...old, ...now].map((b) => b.dests));
  const closed = new Map<string, Part>();
  const opened = new Map<string, Part>();
  const add = (into: Map<string, Part>, addrs: Range[], cell: Range, was: string) => {
    if (!addrs.length) return;
    const key = `${rangesKey(addrs)}|${was}`;
    const p = into.get(key) ?? { addrs, dests: [], was };
    p.dests.push(cell);
    into.set(key, p);
  };
  for (let i = 0; i + 1 < bounds.length; i++) {
    const cell: Range = [bounds[i]!, bounds[i + 1]! - 1n];
    const inside = (b: Box) => b.dests.some(([a, z]) => a <= cell[0] && cell[0] <= z);
    const o = old.filter(inside);
    const n = now.filter(inside);
    if (!o.length && !n.length) continue;
    const oldAddrs = unionRanges(o.flatMap((b) => b.addrs));
    const newAddrs = unionRanges(n.flatMap((b) => b.addrs));
    const was = [...new Set(o.filter((b) => subtractRanges(b.addrs, newAddrs).length > 0).map((b) => b.how))].join("; ");
    add(closed, subtractRanges(oldAddrs, newAddrs), cell, was);
    add(opened, subtractRanges(newAddrs, oldAddrs), cell, "");
  }
  const done = (m: Map<string, Part>) => [...m.values()].map((p) => ({ ...p, dests: unionRanges(p.dests) }));
  return { closed: done(closed), opened: done(opened) };
}

/** Forwarded connections arriving by iface: (ports × sources × targets) of each report compared. */
function diffForwarded(before: readonly Exposure[], after: readonly Exposure[], iface: string, family: Family, protocol: "tcp" | "udp" | "icmp", closes: DiffLine[], opens: DiffLine[]): void {
  const boxes = (list: readonly Exposure[]): Box[] => list
    .filter((e) => e.direction === "forwarded" && e.interface === iface && e.protocol === protocol && e.family === family && e.target)
    .flatMap((e) => portsOf(e).map(([first, last]) => ({ first, last, addrs: addrsOf(e), dests: targetRanges(family, e.target!), how: howOpen(e) })));
  const old = boxes(before);
  const now = boxes(after);
  if (!old.length && !now.length) return;
  const cuts = new Set<number>();
  for (const b of [...old, ...now]) { cuts.add(b.first); cuts.add(b.last + 1); }
  const bounds = [...cuts].sort((a, b) => a - b);
  // Lines still growing over adjacent port parts, by what they say besides their ports.
  type Pending = { first: number; last: number; part: Part };
  let pending = { closed: new Map<string, Pending>(), opened: new Map<string, Pending>() };
  const emit = (into: DiffLine[], p: Pending, closing: boolean) => into.push({
    direction: "forwarded", family, protocol, ports: portText(protocol, p.first, p.last), peers: describeAddresses(family, p.part.addrs),
    target: describeAddresses(family, p.part.dests), ...(closing && { was: p.part.was }),
  });
  for (let i = 0; i + 1 < bounds.length; i++) {
    const first = bounds[i]!;
    const last = bounds[i + 1]! - 1;
    const at = (list: Box[]) => list.filter((b) => b.first <= first && b.last >= first);
    const { closed, opened } = partsAt(at(old), at(now));
    const next = { closed: new Map<string, Pending>(), opened: new Map<string, Pending>() };
    for (const [kind, parts] of [["closed", closed], ["opened", opened]] as const) {
      for (const part of parts) {
        const key = `${rangesKey(part.addrs)}|${rangesKey(part.dests)}|${part.was}`;
        const p = pending[kind].get(key);
        if (p && p.last + 1 === first) { p.last = last; pending[kind].delete(key); next[kind].set(key, p); } else next[kind].set(key, { first, last, part });
      }
      for (const p of pending[kind].values()) emit(kind === "closed" ? closes : opens, p, kind === "closed");
    }
    pending = next;
  }
  for (const p of pending.closed.values()) emit(closes, p, true);
  for (const p of pending.opened.values()) emit(opens, p, false);
}
