// A swarmgate policy from a ruleset another tool wrote, read off its exact
// exposure on the interface peers arrive on (not off its rules' syntax, which
// says how, not what): ports open to anyone become clients, ports open to a
// few sources become admin services, what this machine may open becomes the
// outbound section, an answered ping becomes `icmp: allow`. What the policy
// format cannot say — an opening from some source ports only (a stateless
// rule), one that depends on a rate or a mark, a range of more than 1,024
// ports open to anyone — is listed, never dropped silently. A ruleset that
// forwards becomes a gateway policy (import-gateway.ts), which uses the
// inbound and outbound readers here. Every entry carries a comment naming
// the rules it came from. The difference between the two is then computed by
// the exposure analysis on both (exposure-diff.ts).
import { formatAddress, type Address, type Family } from "../net/address.js";
import { formatPrefix, parsePrefix, prefixLast, type Prefix } from "../net/prefix.js";
import { fullRange, rangeToPrefixes, subtractRanges, unionRanges, type Range } from "../net/ranges.js";
import type { Exposure } from "./exposure.js";

export interface ImportInput {
  exposure: readonly Exposure[];
  iface: string;
  local: Record<Family, Address>;
  /** Say where the ruleset came from, for the file's first comment. */
  source: string;
}

export interface Imported { yaml: string; notExpressed: string[] }

export type Says = (e: Exposure) => string;

const NAMES: Record<number, string> = { 22: "ssh", 5900: "vnc", 8080: "webui", 9091: "transmission-webui", 8112: "deluge-webui", 6800: "aria2-rpc", 80: "http", 443: "https" };
const MAX_CLIENT_RANGE = 1024;

export interface Opening { protocol: "tcp" | "udp"; ports: string; families: Set<Family>; from: string[]; paths: Set<string> }

export const quoted = (s: string) => JSON.stringify(s);
export const comment = (paths: Iterable<string>) => { const list = [...paths].filter(Boolean); return list.length ? `  # from ${list.join(", ")}` : "  # not filtered before"; };
export const portCount = (ports: string) => ports.split(",").reduce((n, r) => { const [a, b] = r.split("-").map(Number); return n + (b ?? a!) - a! + 1; }, 0);
export const portValue = (ports: string) => (/^\d+$/.test(ports) ? ports : quoted(ports));

// Loopback sources, which every swarmgate policy drops as spoofed.
const LOOPBACK: Record<Family, Range> = { 4: [0x7f000000n, 0x7fffffffn], 6: [1n, 1n] };

/**
 * Sources no packet from outside can honestly have — loopback, this machine's
 * own addresses, and on a gateway's WAN the LAN's networks (`inside`) — which
 * every swarmgate policy drops as spoofed: an opening "from anywhere except
 * these" is an opening from anywhere to a policy.
 */
export function spoofedOnly(local: Record<Family, Address>, inside: readonly Prefix[] = []): (prefix: string) => boolean {
  const spoofed: Record<Family, Range[]> = { 4: [LOOPBACK[4]], 6: [LOOPBACK[6]] };
  for (const a of [local[4], local[6]]) spoofed[a.family].push([a.value, a.value]);
  for (const n of inside) spoofed[n.family].push([n.network, prefixLast(n)]);
  const merged = { 4: unionRanges(spoofed[4]), 6: unionRanges(spoofed[6]) };
  // Every address of the prefix is one of them (a prefix may span two: ::/127 is :: in a LAN and ::1).
  return (text) => {
    const p = parsePrefix(text, "interface");
    return p.ok && subtractRanges([[p.prefix.network, prefixLast(p.prefix)]], merged[p.prefix.family]).length === 0;
  };
}


/**
 * A source list with this machine's own addresses put back where they split a
 * network, and never alone, and loopback put back where it splits one (an
 * opening from ::/19 is, to the exposure, ::/19 without ::1).
 */
export function sourcesWithOwn(peers: string[], local: Record<Family, Address>, spoofed: (p: string) => boolean): string[] {
  const ranges = new Map<Family, Range[]>([[4, []], [6, []]]);
  for (const t of peers) { const p = parsePrefix(t, "interface"); if (p.ok) ranges.get(p.prefix.family)!.push([p.prefix.network, prefixLast(p.prefix)]); }
  for (const a of [local[4], local[6]]) ranges.get(a.family)!.push([a.value, a.value]);
  for (const [family, rs] of ranges) {
    const [first, last] = LOOPBACK[family];
    if (rs.some(([, b]) => b + 1n === first) && rs.some(([a]) => a === last + 1n)) rs.push([first, last]);
  }
  const out: string[] = [];
  for (const [family, rs] of ranges) out.push(...unionRanges(rs).flatMap(([a, b]) => rangeToPrefixes(family, a, b)).map(formatPrefix).filter((t) => !spoofed(t)));
  return out;
}

/** The prefixes of "anywhere except these". */
export function complementOf(family: Family, except: readonly string[]): string[] {
  const out: Range[] = except.flatMap((t): Range[] => { const p = parsePrefix(t, "interface"); return p.ok ? [[p.prefix.network, prefixLast(p.prefix)]] : []; });
  return subtractRanges(fullRange(family), unionRanges(out)).flatMap(([a, b]) => rangeToPrefixes(family, a, b)).map(formatPrefix);
}

// An admin service's sources beyond this many prefixes are no list a person would keep.
const MAX_ADMIN_SOURCES = 64;

// Local Service Discovery (BEP 14): a client's announcements go to these groups, UDP 6771.
const LSD = { port: "6771", groups: ["239.192.152.143", "ff15::efc0:988f"] };

const rangesOf = (ports: string) => ports.split(",").map((r) => { const [a, b] = r.split("-").map(Number); return [a!, b ?? a!] as const; });
/** Every port of `inner` is in `outer`. */
const covers = (outer: string, inner: string) => rangesOf(inner).every(([a, b]) => rangesOf(outer).some(([c, d]) => c <= a && b <= d));

export function importPolicy(input: ImportInput): Imported {
  const notExpressed: string[] = [];
  const on = input.exposure.filter((e) => e.interface === input.iface);
  const says: Says = (e) => `${e.direction} ${e.families} ${e.protocol.toUpperCase()} ${e.ports} ${e.direction === "outbound" ? "to" : "from"} ${e.peers.join(", ")}${e.except ? ` except ${e.except.join(", ")}` : ""}`;
  const inbound = importInbound(on, input.local, spoofedOnly(input.local), says, notExpressed);
  const outAll = on.filter((x) => x.direction === "outbound" && !x.depends);
  // Announcements to the LSD groups alone: a client's `lsd: true` (there must be a client to carry it).
  const lsd = outAll.filter((e) => e.protocol === "udp" && e.ports === LSD.port && e.peers.length === 1 && LSD.groups.includes(e.peers[0]!) && !e.except);
  const withLsd = lsd.length > 0 && inbound.clients.size > 0;
  if (lsd.length && !withLsd) for (const e of lsd) notExpressed.push(`${says(e)}: Local Service Discovery, which a policy says on a client, and there is none`);
  const outbound = importOutbound(outAll, withLsd ? lsd : [], says, notExpressed);

  const lines = [
    `# Imported by swarmgate from ${input.source}: what that ruleset lets in and out on ${input.iface},`,
    "# as far as a swarmgate policy can say it. Read it before you apply it: swarmgate import",
    "# printed what this policy closes that was open, and what it opens that was closed.",
    "version: 1",
    "host:",
    `  interface: ${input.iface}`,
    `  addresses: [${quoted(formatAddress(input.local[4]))}, ${quoted(formatAddress(input.local[6]))}]`,
  ];
  lines.push(...clientLines(inbound.clients, withLsd ? lsd : []), outbound, ...adminLines(inbound.admin));
  lines.push(`icmp: ${inbound.ping ? "allow" : "deny"}`);
  return { yaml: `${lines.join("\n")}\n`, notExpressed };
}

const both = (o: Opening) => (o as { both?: boolean }).both === true;

/** The clients section: one client per port range; the first carries LSD when the ruleset lets its announcements out. */
export function clientLines(clients: ReadonlyMap<string, Opening>, lsd: readonly Exposure[]): string[] {
  if (!clients.size) return [];
  const lines = ["clients:"];
  let n = 0;
  for (const o of clients.values()) {
    const lsdHere = lsd.length > 0 && n === 0 ? ", lsd: true" : "";
    lines.push(`  - {name: imported${n++ || ""}, ports: ${portValue(o.ports)}${both(o) ? "" : `, protocols: [${o.protocol}]`}${lsdHere}}${comment(lsdHere ? [...o.paths, ...lsd.flatMap((e) => e.paths)] : o.paths)}`);
  }
  return lines;
}

/** The admin section: a name from the port where it is a known service's. */
export function adminLines(admin: readonly Opening[]): string[] {
  if (!admin.length) return [];
  const lines = ["admin:"];
  const used = new Map<string, number>();
  for (const o of admin) {
    const base = NAMES[Number(o.ports)] ?? `port-${o.ports}`;
    const k = used.get(base) ?? 0;
    used.set(base, k + 1);
    lines.push(`  - {name: ${k ? `${base}-${k + 1}` : base}, port: ${portValue(o.ports)}${both(o) ? ", protocols: [tcp, udp]" : o.protocol === "udp" ? ", protocols: [udp]" : ""}, from: [${o.from.map(quoted).join(", ")}]}${comment(o.paths)}`);
  }
  return lines;
}

/** Inbound: clients (anyone) and admin services (some sources), TCP and UDP merged where they agree. */
export function importInbound(on: readonly Exposure[], local: Record<Family, Address>, spoofed: (prefix: string) => boolean, says: Says, notExpressed: string[]) {
  const familiesOf = (e: Exposure): Family[] => (e.families === "IPv4+IPv6" ? [4, 6] : [e.family]);
  const clients = new Map<string, Opening>();
  // One admin service per port range and protocol, its sources those of both families (the exposure has a line per family).
  const admin = new Map<string, Opening>();
  let ping = false;
  for (const e of on.filter((x) => x.direction === "inbound" || (x.direction === "forwarded" && x.target))) {
    if (e.direction === "forwarded") { notExpressed.push(`${says(e)} → ${e.target}: a forward, which a host policy cannot have (import --gateway writes a gateway policy)`); continue; }
    if (e.sourcePorts) { notExpressed.push(`${says(e)}, source port ${e.sourcePorts} only: a stateless rule; the policy closes it (replies are let in by connection tracking)`); continue; }
    if (e.depends) { notExpressed.push(`${says(e)}, as far as ${e.depends.join("; ")} allows: the policy has no such condition and leaves it closed`); continue; }
    if (e.protocol === "icmp") { ping = true; continue; }
    if (e.peers[0] === "anywhere" && (e.except ?? []).every(spoofed)) {
      if (portCount(e.ports) > MAX_CLIENT_RANGE) { notExpressed.push(`${says(e)}: ${portCount(e.ports)} ports open to anyone is no client's port range; the policy closes them`); continue; }
      const o = clients.get(e.ports) ?? { protocol: e.protocol, ports: e.ports, families: new Set(), from: [], paths: new Set() };
      if (o.protocol !== e.protocol) (o as { both?: boolean }).both = true;
      for (const f of familiesOf(e)) o.families.add(f);
      for (const p of e.paths) o.paths.add(p);
      clients.set(e.ports, o);
      continue;
    }
    // Anyone but a few: the rest, as prefixes, when that is a list a person would keep.
    const peers = e.except ? complementOf(e.family, e.except) : e.peers;
    if (e.except && sourcesWithOwn(peers, local, spoofed).length > MAX_ADMIN_SOURCES) { notExpressed.push(`${says(e)}: open to anyone but a few; the policy cannot say "except" and leaves it closed`); continue; }
    const key = `${e.ports}|${e.protocol}`;
    const o = admin.get(key) ?? { protocol: e.protocol, ports: e.ports, families: new Set(), from: [], paths: new Set() };
    o.from.push(...peers);
    for (const p of e.paths) o.paths.add(p);
    admin.set(key, o);
  }
  for (const o of admin.values()) o.from = sourcesWithOwn(o.from, local, spoofed);
  // TCP and UDP on the same ports from the same sources: one service with both protocols.
  const merged: Opening[] = [];
  for (const o of admin.values()) {
    const twin = merged.find((m) => m.ports === o.ports && m.protocol !== o.protocol && m.from.join() === o.from.join());
    if (twin) { (twin as { both?: boolean }).both = true; for (const p of o.paths) twin.paths.add(p); } else merged.push(o);
  }
  return { clients, admin: merged, ping };
}

/**
 * Outbound: any, or peers (1024-65535 to anyone, TCP and UDP), trackers and DNS. What is open to
 * anyone is read off IPv4, since the policy's outbound section is one for both families (an IPv6
 * left unfiltered is a defect, not a wish); what is open to some destinations only becomes a
 * tracker entry with `to`, from both families.
 */
export function importOutbound(all: readonly Exposure[], lsd: readonly Exposure[], says: Says, notExpressed: string[]): string {
  // The LSD announcements are a client's, not the outbound section's; they still open what they open.
  const outAll = all.filter((e) => !lsd.includes(e));
  const out = outAll.filter((x) => x.family === 4 || x.families === "IPv4+IPv6");
  // "Anywhere except X" is anywhere when other lines open X on those ports (an LSD group beside the peers' range).
  const toAnyone = (e: Exposure) => e.peers[0] === "anywhere" && (e.except ?? []).every((x) => all.some((f) => f !== e && f.protocol === e.protocol && f.peers.includes(x) && covers(f.ports, e.ports)));
  /** Whether every port first-last of the protocol is open to anyone (over as many lines as it takes). */
  const openTo = (protocol: string, first: number, last: number) => {
    const ranges = out.filter((e) => e.protocol === protocol && toAnyone(e)).flatMap((e) => rangesOf(e.ports)).sort((x, y) => x[0] - y[0]);
    let next = first;
    for (const [a, b] of ranges) { if (a > next) break; if (b >= next) next = b + 1; }
    return next > last;
  };
  if (openTo("tcp", 1, 65535) && openTo("udp", 1, 65535)) return "outbound: any";
  const peers = openTo("tcp", 1024, 65535) && openTo("udp", 1024, 65535);
  const trackers = new Map<string, Set<string>>();
  const limited = new Map<string, { ports: string; protocols: Set<string>; to: string[] }>();
  const dns: string[] = [];
  let dnsAny = false;
  for (const e of outAll) {
    if (e.protocol === "icmp") continue;
    const anyone = toAnyone(e);
    // Open to anyone: read off IPv4 (above); to some destinations: from both families.
    if (anyone && e.family === 6 && e.families !== "IPv4+IPv6") continue;
    if (!anyone && e.peers[0] === "anywhere") { notExpressed.push(`${says(e)}: open to anyone but a few; the policy cannot say "except" and leaves it closed`); continue; }
    for (const [a, last] of rangesOf(e.ports)) {
      if (a === 53 && last === 53) {
        if (anyone) dnsAny = true;
        else dns.push(...e.peers);
        continue;
      }
      if (peers && a >= 1024) continue;
      const ports = a === last ? `${a}` : `${a}-${last}`;
      if (anyone) { trackers.set(ports, (trackers.get(ports) ?? new Set()).add(e.protocol)); continue; }
      const key = `${ports}|${e.protocol}`;
      const l = limited.get(key) ?? { ports, protocols: new Set([e.protocol]), to: [] };
      l.to.push(...e.peers);
      limited.set(key, l);
    }
  }
  const trackerText = [...trackers].map(([ports, protos]) => (protos.size === 2 ? portValue(ports) : `{ports: ${portValue(ports)}, protocols: [${[...protos][0]}]}`));
  // TCP and UDP to the same destinations on the same ports: one entry.
  const entries: { ports: string; protocols: Set<string>; to: string[] }[] = [];
  for (const l of limited.values()) {
    const twin = entries.find((x) => x.ports === l.ports && x.to.join() === l.to.join());
    if (twin) l.protocols.forEach((p) => twin.protocols.add(p)); else entries.push(l);
  }
  for (const l of entries) trackerText.push(`{ports: ${portValue(l.ports)}, to: [${l.to.map(quoted).join(", ")}]${l.protocols.size === 2 ? "" : `, protocols: [${[...l.protocols][0]}]`}}`);
  return ["outbound:", `  peers: ${peers}`, `  trackers: [${trackerText.join(", ")}]`, `  dns: ${dnsAny ? "any" : `[${[...new Set(dns)].map(quoted).join(", ")}]`}`].join("\n");
}
