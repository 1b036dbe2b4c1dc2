// A swarmgate gateway policy from a ruleset another tool wrote for a NAT
// router, read off its exact exposure on the WAN and the LAN: each connection
// peers may open from the WAN to a LAN host that DNAT chose becomes a
// forward[] entry (with host6 where IPv6 reaches the same ports of one
// address), masquerade comes from the postrouting rules, the gateway's own
// openings become clients and admin services as a host's do, what it may open
// itself the outbound section. What a gateway policy cannot say (forwards:
// import-forwards.ts; here, a port opened on the LAN interface to sources
// outside the LAN, a masquerade of part of the LAN) is listed, never dropped
// silently.
import { parseAddress, type Address, type Family } from "../net/address.js";
import { joinPortRanges, type PortRange } from "../net/port.js";
import { formatPrefix, prefixContains, prefixLast, type Prefix } from "../net/prefix.js";
import { rangeToPrefixes, subtractRanges, unionRanges, type Range } from "../net/ranges.js";
import type { Exposure } from "./exposure.js";
import { describeAddresses } from "./exposure-diff.js";
import type { GatewayNat } from "./gateway-nat.js";
import { adminLines, clientLines, comment, importInbound, importOutbound, quoted, spoofedOnly, type Imported, type Opening, type Says } from "./import.js";
import { asRanges, importForwards, lanForwards, perFamily, rangesOf } from "./import-forwards.js";

export interface GatewayImportInput {
  exposure: readonly Exposure[];
  wan: string;
  lan: string;
  lanNetwork: Prefix;
  lanNetwork6?: Prefix;
  nat: GatewayNat;
  /** Every network routed to the LAN interface (the LAN networks first): where a forward's target can be. */
  lanRoutes: readonly Prefix[];
  local: Record<Family, Address>;
  /** Where the ruleset came from, and where the WAN and LAN were learnt, for the file's comments. */
  source: string;
  learnt?: { wan?: string; lan?: string };
}


export function importGatewayPolicy(input: GatewayImportInput): Imported {
  const notExpressed: string[] = [];
  const says: Says = (e) => `${e.direction} ${e.families} ${e.protocol.toUpperCase()} ${e.ports} ${e.direction === "outbound" ? "to" : "from"} ${e.peers.join(", ")}${e.except ? ` except ${e.except.join(", ")}` : ""}${e.target ? ` → ${e.target}` : ""}`;
  const lanOf: Record<Family, Prefix | undefined> = { 4: input.lanNetwork, 6: input.lanNetwork6 };
  const nets = [input.lanNetwork, ...(input.lanNetwork6 ? [input.lanNetwork6] : [])];
  const masq = masquerade(input, notExpressed);
  const forwards = importForwards(input, lanOf, says, notExpressed);
  lanForwards(input, lanOf, notExpressed);
  const { inbound, outbound } = gatewayOwn(input, lanOf, nets, says, notExpressed);
  const learnt = (what: string | undefined) => (what ? `  # ${what}` : "");
  const lines = [
    `# Imported by swarmgate from ${input.source}: a NAT gateway — what that ruleset forwards from ${input.wan}`,
    `# to the hosts on ${input.lan}, and lets in and out of the gateway itself, as far as a swarmgate policy can`,
    "# say it. Read it before you apply it: swarmgate import printed what this policy closes that was open,",
    "# and what it opens that was closed.",
    "version: 1",
    "gateway:",
    `  wan: ${input.wan}${learnt(input.learnt?.wan)}`,
    `  lan: ${input.lan}${learnt(input.learnt?.lan)}`,
    `  lan_network: ${quoted(formatPrefix(input.lanNetwork))}`,
    ...(input.lanNetwork6 ? [`  lan_network6: ${quoted(formatPrefix(input.lanNetwork6))}`] : []),
    `  masquerade: ${masq.on}${masq.paths.length ? comment(masq.paths) : "  # no masquerade or SNAT of the LAN network out of the WAN"}`,
    ...(forwards.length ? ["forward:", ...forwards] : []),
    ...clientLines(inbound.clients, []),
    outbound,
    ...adminLines(inbound.admin),
    `icmp: ${inbound.ping ? "allow" : "deny"}`,
  ];
  return { yaml: `${lines.join("\n")}\n`, notExpressed };
}

/** Masquerade (or SNAT) of the LAN network leaving by the WAN. */
function masquerade(input: GatewayImportInput, notExpressed: string[]): { on: boolean; paths: string[] } {
  const net = input.lanNetwork;
  const out = input.nat.masquerades.filter((m) => m.oif === undefined || m.oif === input.wan);
  const covering = out.filter((m) => m.saddr.length === 0 || m.saddr.some((p) => p.family === 4 && p.length <= net.length && prefixContains(p, { family: 4, value: net.network })));
  if (covering.length) return { on: true, paths: covering.map((m) => m.path) };
  const partial = out.filter((m) => m.saddr.some((p) => p.family === 4 && (prefixContains(net, { family: 4, value: p.network }))));
  for (const m of partial) notExpressed.push(`masquerade of ${m.saddr.map(formatPrefix).join(", ")} only, out of ${input.wan} (${m.path}): a policy masquerades the whole LAN network or nothing; it leaves masquerade off`);
  return { on: false, paths: [] };
}

/** WAN inbound lines of one kind (protocol and family), ports parsed once. */
interface WanLine { first: number; last: number; w: Exposure; addrs?: Range[] }
type Kind = string;
const kindOf = (protocol: string, family: Family): Kind => `${protocol}|${family}`;

interface WanIndex {
  lines: Map<Kind, WanLine[]>;
  cuts: Map<Kind, number[]>;
  anyone: Map<Kind, [number, number][]>;
  /** The lines of a kind that hold a port. */
  holding: (kind: Kind, port: number) => readonly WanLine[];
}

/** The WAN's lines by kind, where they begin and end (and the DNATs' ports), and what is open to anyone. */
function indexWan(wanIn: readonly Exposure[], dnats: GatewayNat["dnats"]): WanIndex {
  const lines = new Map<Kind, WanLine[]>();
  const anyone = new Map<Kind, [number, number][]>();
  for (const w of wanIn) {
    for (const f of w.families === "IPv4+IPv6" ? [4, 6] as const : [w.family]) {
      const k = kindOf(w.protocol, f);
      const open = w.peers[0] === "anywhere" && !w.except?.length;
      for (const [first, last] of rangesOf(w.ports)) {
        (lines.get(k) ?? lines.set(k, []).get(k)!).push({ first, last, w });
        if (open) (anyone.get(k) ?? anyone.set(k, []).get(k)!).push([first, last]);
      }
    }
  }
  const dnatCuts = dnats.flatMap((d) => d.dports.flatMap((r) => [r.first, r.last + 1]));
  const cuts = new Map<Kind, number[]>();
  for (const protocol of ["tcp", "udp"]) for (const f of [4, 6] as const) {
    const k = kindOf(protocol, f);
    cuts.set(k, [...new Set([...(lines.get(k) ?? []).flatMap((l) => [l.first, l.last + 1]), ...dnatCuts])].sort((x, y) => x - y));
  }
  const stabbers = new Map([...lines].map(([k, list]) => [k, stabber(list)]));
  return { lines, cuts, anyone, holding: (kind, port) => stabbers.get(kind)?.(port) ?? [] };
}

/**
 * Which lines hold a port, found by binary search: the ports are cut at every line's ends, and each
 * piece lists the lines over it (a scan of every line per LAN piece was 12 million tests at 5,000 rules).
 */
function stabber(lines: readonly WanLine[]): (port: number) => readonly WanLine[] {
  const bounds = [...new Set(lines.flatMap((l) => [l.first, l.last + 1]))].sort((x, y) => x - y);
  const over: WanLine[][] = bounds.map(() => []);
  for (const l of lines) for (let i = lowerBound(bounds, l.first); i < bounds.length && bounds[i]! <= l.last; i++) over[i]!.push(l);
  return (port) => {
    const i = lowerBound(bounds, port + 1) - 1; // the last bound ≤ port
    return i >= 0 ? over[i]! : [];
  };
}

/** A line cut into one line per port range between cuts (sorted). */
function cutAt(e: Exposure, cuts: readonly number[]): Exposure[] {
  return rangesOf(e.ports).flatMap(([a, b]) => {
    let i = lowerBound(cuts, a + 1);
    const at = [a];
    for (; i < cuts.length && cuts[i]! <= b; i++) at.push(cuts[i]!);
    at.push(b + 1);
    if (at.length === 2) return [rangesOf(e.ports).length === 1 ? e : { ...e, ports: a === b ? `${a}` : `${a}-${b}` }];
    return at.slice(0, -1).map((first, j) => ({ ...e, ports: first === at[j + 1]! - 1 ? `${first}` : `${first}-${at[j + 1]! - 1}` }));
  });
}

/** Whether the ranges hold all of [a, b], found by binary search over them joined. */
function holder(ranges: readonly PortRange[]): (range: [number, number]) => boolean {
  const joined = joinPortRanges(ranges);
  const starts = joined.map((r) => r.first);
  return ([a, b]) => {
    const r = joined[lowerBound(starts, a + 1) - 1]; // the last range that starts at or below a
    return r !== undefined && b <= r.last;
  };
}

/** The first index whose value is at least v. */
function lowerBound(sorted: readonly number[], v: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (sorted[mid]! < v) lo = mid + 1; else hi = mid; }
  return lo;
}

/** LAN sources kept for an admin service, by protocol and port range, to be put back into its sources. */
interface LanSources { protocol: string; first: number; last: number; prefixes: Prefix[] }

/**
 * The LAN's inbound lines as a policy can say them. A policy's admin services and clients are open on every
 * interface, by source: what the LAN lets in from sources the WAN lets in too (or on ports the WAN DNATs away), from
 * the LAN network, or from loopback and own addresses (dropped as spoofed on the WAN only) is kept; what it lets in
 * from other sources cannot be said, and is opened from the LAN network only (and said so).
 */
function lanInbound(input: GatewayImportInput, lanOf: Record<Family, Prefix | undefined>, index: WanIndex, says: Says, notExpressed: string[]) {
  const spoofed = spoofedOnly(input.local);
  const lanIn: Exposure[] = [];
  const kept: LanSources[] = [];
  // Ports the WAN DNATs to a LAN host: a policy's admin service there is reached from the LAN only, whatever its sources.
  // Pieces are cut at every DNAT's ports, so a piece inside the union of their ranges is inside one of them.
  const wanDnats = input.nat.dnats.filter((d) => (d.iif === undefined || d.iif === input.wan) && !d.sourceLimited);
  const dnatPorts = (protocol: string) => {
    const of = wanDnats.filter((d) => d.protocol === undefined || d.protocol === protocol);
    return holder(of.some((d) => d.dports.length === 0) ? [{ first: 1, last: 65535 }] : of.flatMap((d) => d.dports));
  };
  const dnatByProtocol = new Map([["tcp", dnatPorts("tcp")], ["udp", dnatPorts("udp")]]);
  const dnatted = (e: Exposure, range: [number, number]) => dnatByProtocol.get(e.protocol)?.(range) ?? false;
  const anyone = new Map([...index.anyone].map(([k, list]) => [k, holder(list.map(([first, last]) => ({ first, last })))]));
  const lines = input.exposure.filter((x) => x.direction === "inbound" && x.interface === input.lan).flatMap(perFamily);
  for (const e of lines.flatMap((x) => (x.protocol === "icmp" ? [x] : cutAt(x, index.cuts.get(kindOf(x.protocol, x.family)) ?? [])))) {
    if (e.protocol === "icmp" || e.sourcePorts || e.depends) { lanIn.push(e); continue; }
    const range = rangesOf(e.ports)[0]!;
    const k = kindOf(e.protocol, e.family);
    // What is open to anyone on the WAN (a client) is open on the LAN too: the LAN's line says nothing more.
    if (anyone.get(k)?.(range)) continue;
    const net = lanOf[e.family];
    const peers = asRanges(e.family, e);
    // Sources the WAN lets in on these ports too are an admin service's sources already. The pieces are cut at every
    // WAN line's ends, so a WAN line covers one when it holds its first port.
    const onWan = dnatted(e, range) ? peers : unionRanges(index.holding(k, range[0]).flatMap((l) => (l.addrs ??= asRanges(e.family, l.w))));
    const within: Range[] = net ? subtractRanges(peers, subtractRanges(peers, [[net.network, prefixLast(net)]])) : [];
    const restPrefixes = subtractRanges(subtractRanges(peers, within), onWan).flatMap(([a, b]) => rangeToPrefixes(e.family, a, b));
    const loose = restPrefixes.filter((p) => !spoofed(formatPrefix(p)));
    if (loose.length) {
      notExpressed.push(net
        ? `${says(e)} on ${input.lan}, from ${describeAddresses(e.family, unionRanges(loose.map((p): Range => [p.network, prefixLast(p)])))} outside the LAN network: a policy names sources, not interfaces; it opens it from the LAN network only`
        : `${says(e)} on ${input.lan}: the LAN's IPv${e.family} network is not known (give --lan-network), so a policy cannot open it on the LAN alone, and leaves it closed`);
    }
    const keep = unionRanges([...within, ...subtractRanges(peers, subtractRanges(peers, onWan)), ...restPrefixes.filter((p) => spoofed(formatPrefix(p))).map((p): Range => [p.network, prefixLast(p)])]);
    if (!keep.length) continue;
    const prefixes = keep.flatMap(([a, b]) => rangeToPrefixes(e.family, a, b));
    const { except: _, ...line } = e;
    lanIn.push({ ...line, peers: prefixes.map(formatPrefix) });
    kept.push({ protocol: e.protocol, first: range[0], last: range[1], prefixes });
  }
  return { lanIn, kept };
}

/** The gateway's own openings: clients and admin services from the WAN and the LAN, and the outbound section. */
function gatewayOwn(input: GatewayImportInput, lanOf: Record<Family, Prefix | undefined>, nets: Prefix[], says: Says, notExpressed: string[]) {
  const spoofedLan = (t: string) => { const a = parseAddress(t.split("/")[0]!); return a !== undefined && nets.some((n) => prefixContains(n, a) && n.length <= Number(t.split("/")[1] ?? 128)); };
  // On the WAN, sources in the LAN are dropped as spoofed by a gateway policy: "anyone but the LAN" is anyone.
  const wanIn = input.exposure.filter((e) => e.direction === "inbound" && e.interface === input.wan).map((e) => {
    if (!e.except) return e;
    const { except, ...line } = e;
    const left = except.filter((x) => !spoofedLan(x));
    return left.length ? { ...line, except: left } : line;
  });
  const index = indexWan(wanIn, input.nat.dnats);
  const { lanIn, kept } = lanInbound(input, lanOf, index, says, notExpressed);
  const spoofed = spoofedOnly(input.local);
  // Admin services of one protocol are cut where any begins or ends (a policy's may not overlap), and joined again below.
  const adminLike = (e: Exposure) => e.protocol !== "icmp" && !e.sourcePorts && !e.depends && !(e.peers[0] === "anywhere" && (e.except ?? []).every(spoofed));
  const all = [...wanIn, ...lanIn];
  const cuts = { tcp: new Set<number>(), udp: new Set<number>(), icmp: new Set<number>() };
  for (const e of all.filter(adminLike)) for (const [a, b] of rangesOf(e.ports)) { cuts[e.protocol].add(a); cuts[e.protocol].add(b + 1); }
  const sorted = { tcp: [...cuts.tcp].sort((x, y) => x - y), udp: [...cuts.udp].sort((x, y) => x - y), icmp: [] };
  const inbound = importInbound(all.flatMap((e) => (adminLike(e) ? cutAt(e, sorted[e.protocol]) : [e])), input.local, spoofed, says, notExpressed);
  putBackLan(inbound.admin, kept);
  inbound.admin = joinAdjacent(inbound.admin);
  const outAll = input.exposure.filter((x) => x.direction === "outbound" && x.interface === input.wan && !x.depends);
  return { inbound, outbound: importOutbound(outAll, [], says, notExpressed) };
}

/**
 * The host reader leaves loopback and own addresses out of an admin service's sources (a host drops them as
 * spoofed); a gateway lets them in on the LAN, so they are put back where the LAN lets them in.
 */
function putBackLan(admin: Opening[], kept: readonly LanSources[]): void {
  for (const o of admin) {
    const [a, b] = rangesOf(o.ports)[0]!;
    const protocols = (o as { both?: boolean }).both ? ["tcp", "udp"] : [o.protocol];
    const extra = kept.filter((k) => protocols.includes(k.protocol) && k.first <= a && b <= k.last).flatMap((k) => k.prefixes);
    if (!extra.length) continue;
    const own = o.from.flatMap((t): Prefix[] => { const x = parseAddress(t.split("/")[0]!); return x ? [{ family: x.family, network: x.value, length: Number(t.split("/")[1] ?? (x.family === 4 ? 32 : 128)) }] : []; });
    o.from = normalize([...own, ...extra]);
  }
}

/** Prefixes as the fewest, IPv4 first. */
function normalize(list: Prefix[]): string[] {
  return ([4, 6] as const).flatMap((f) => unionRanges(list.filter((p) => p.family === f).map((p): Range => [p.network, prefixLast(p)])).flatMap(([a, b]) => rangeToPrefixes(f, a, b)).map(formatPrefix));
}

/** Admin services on adjacent ports with the same protocols and sources: one. */
function joinAdjacent(admin: Opening[]): Opening[] {
  const key = (o: Opening) => `${o.protocol}|${(o as { both?: boolean }).both === true}|${o.from.join()}`;
  const out: Opening[] = [];
  for (const o of [...admin].sort((x, y) => rangesOf(x.ports)[0]![0] - rangesOf(y.ports)[0]![0])) {
    const [a, b] = rangesOf(o.ports)[0]!;
    const prev = out.find((p) => key(p) === key(o) && rangesOf(p.ports)[0]![1] + 1 === a);
    if (!prev) { out.push({ ...o, paths: new Set(o.paths) }); continue; }
    const first = rangesOf(prev.ports)[0]![0];
    prev.ports = `${first}-${b}`;
    o.paths.forEach((p) => prev.paths.add(p));
  }
  return out;
}
