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
import { formatPrefix, prefixContains, prefixLast, type Prefix } from "../net/prefix.js";
import { rangeToPrefixes, subtractRanges, unionRanges, type Range } from "../net/ranges.js";
import type { Exposure } from "./exposure.js";
import { describeAddresses } from "./exposure-diff.js";
import type { GatewayNat } from "./gateway-nat.js";
import { adminLines, clientLines, comment, importInbound, importOutbound, quoted, spoofedOnly, type Imported, type Opening, type Says } from "./import.js";
import { asRanges, covers, importForwards, lanForwards, perFamily, rangesOf } from "./import-forwards.js";

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

/**
 * The gateway's own openings. A policy's admin services and clients are open on every interface, by source:
 * on the WAN, sources in the LAN are dropped as spoofed anyway; on the LAN, what is open to sources outside
 * the LAN network cannot be said, so it is opened from the LAN network only (and said so).
 */
function gatewayOwn(input: GatewayImportInput, lanOf: Record<Family, Prefix | undefined>, nets: Prefix[], says: Says, notExpressed: string[]) {
  const spoofedLan = (t: string) => { const a = parseAddress(t.split("/")[0]!); return a !== undefined && nets.some((n) => prefixContains(n, a) && n.length <= Number(t.split("/")[1] ?? 128)); };
  const wanIn = input.exposure.filter((e) => e.direction === "inbound" && e.interface === input.wan)
    .map((e) => (e.except ? { ...e, except: e.except.filter((x) => !spoofedLan(x)) } : e))
    .map((e) => { if (e.except?.length === 0) delete (e as { except?: string[] }).except; return e; });
  // What is open to anyone on the WAN (a client) is open on the LAN too: the LAN's line says nothing more.
  const toAnyone = (e: Exposure) => wanIn.some((w) => w.protocol === e.protocol && (w.family === e.family || w.families === "IPv4+IPv6") && w.peers[0] === "anywhere" && !w.except?.length && covers(w.ports, e.ports));
  const spoofed = spoofedOnly(input.local);
  const lanIn: Exposure[] = [];
  const lanSources = new Map<string, Prefix[]>();
  const sameKind = (w: Exposure, e: Exposure) => w.protocol === e.protocol && (w.family === e.family || w.families === "IPv4+IPv6");
  // Ports the WAN DNATs to a LAN host: a policy's admin service there is reached from the LAN only, whatever its sources.
  const dnatted = (e: Exposure) => input.nat.dnats.some((d) => (d.iif === undefined || d.iif === input.wan) && (d.protocol === undefined || d.protocol === e.protocol)
    && !d.sourceLimited && (d.dports.length === 0 || rangesOf(e.ports).every(([a, b]) => d.dports.some((r) => r.first <= a && b <= r.last))));
  /** A LAN line cut where the WAN's lines and DNATs of its kind begin and end, so that each piece is compared with one WAN. */
  const pieces = (e: Exposure): Exposure[] => {
    if (e.protocol === "icmp") return [e];
    const cuts = new Set<number>();
    for (const w of wanIn.filter((x) => sameKind(x, e))) for (const [a, b] of rangesOf(w.ports)) { cuts.add(a); cuts.add(b + 1); }
    for (const d of input.nat.dnats) for (const r of d.dports) { cuts.add(r.first); cuts.add(r.last + 1); }
    return cutAt(e, cuts);
  };
  for (const e of input.exposure.filter((x) => x.direction === "inbound" && x.interface === input.lan).flatMap(perFamily).flatMap(pieces).filter((x) => x.protocol === "icmp" || !toAnyone(x))) {
    if (e.protocol === "icmp" || e.sourcePorts || e.depends) { lanIn.push(e); continue; }
    const net = lanOf[e.family];
    const peers = asRanges(e.family, e);
    // Sources the WAN lets in on these ports too are an admin service's sources already (a policy's are on every interface).
    const onWan = dnatted(e) ? peers : unionRanges(wanIn.filter((w) => sameKind(w, e) && covers(w.ports, e.ports)).flatMap((w) => asRanges(e.family, w)));
    const within: Range[] = net ? subtractRanges(peers, subtractRanges(peers, [[net.network, prefixLast(net)]])) : [];
    const rest = subtractRanges(subtractRanges(peers, within), onWan);
    // Loopback and this machine's own addresses: a gateway policy drops them on the WAN only, so on the LAN they stay.
    const restPrefixes = rest.flatMap(([a, b]) => rangeToPrefixes(e.family, a, b));
    const loose = restPrefixes.filter((p) => !spoofed(formatPrefix(p)));
    if (loose.length) {
      notExpressed.push(net
        ? `${says(e)} on ${input.lan}, from ${describeAddresses(e.family, unionRanges(loose.map((p): Range => [p.network, prefixLast(p)])))} outside the LAN network: a policy names sources, not interfaces; it opens it from the LAN network only`
        : `${says(e)} on ${input.lan}: the LAN's IPv${e.family} network is not known (give --lan-network), so a policy cannot open it on the LAN alone, and leaves it closed`);
    }
    const kept = unionRanges([...within, ...subtractRanges(peers, subtractRanges(peers, onWan)), ...restPrefixes.filter((p) => spoofed(formatPrefix(p))).map((p): Range => [p.network, prefixLast(p)])]);
    if (!kept.length) continue;
    const prefixes = kept.flatMap(([a, b]) => rangeToPrefixes(e.family, a, b));
    lanIn.push({ ...e, peers: prefixes.map(formatPrefix), except: undefined } as Exposure);
    const key = `${e.ports}|${e.protocol}`;
    lanSources.set(key, [...(lanSources.get(key) ?? []), ...prefixes]);
  }
  for (const e of lanIn) if (e.except === undefined) delete (e as { except?: string[] }).except;
  // Admin services of one protocol are cut where any begins or ends (a policy's may not overlap), and joined again below.
  const adminLike = (e: Exposure) => e.protocol !== "icmp" && !e.sourcePorts && !e.depends && !(e.peers[0] === "anywhere" && (e.except ?? []).every(spoofed));
  const all = [...wanIn, ...lanIn];
  const cuts = { tcp: new Set<number>(), udp: new Set<number>(), icmp: new Set<number>() };
  for (const e of all.filter(adminLike)) for (const [a, b] of rangesOf(e.ports)) { cuts[e.protocol].add(a); cuts[e.protocol].add(b + 1); }
  const inbound = importInbound(all.flatMap((e) => (adminLike(e) ? cutAt(e, cuts[e.protocol]) : [e])), input.local, spoofed, says, notExpressed);
  // The host reader leaves loopback and own addresses out of an admin service's sources (a host drops them as
  // spoofed); a gateway lets them in on the LAN, so they are put back where the LAN lets them in.
  for (const o of inbound.admin) {
    const extra = [o.protocol, ...((o as { both?: boolean }).both ? [o.protocol === "tcp" ? "udp" : "tcp"] : [])].flatMap((p) => lanSources.get(`${o.ports}|${p}`) ?? []);
    if (extra.length) o.from = normalize([...o.from.flatMap((t) => { const a = parseAddress(t.split("/")[0]!); return a ? [{ family: a.family, network: a.value, length: Number(t.split("/")[1] ?? (a.family === 4 ? 32 : 128)) } as Prefix] : []; }), ...extra]);
  }
  inbound.admin = joinAdjacent(inbound.admin);
  const outAll = input.exposure.filter((x) => x.direction === "outbound" && x.interface === input.wan && !x.depends);
  return { inbound, outbound: importOutbound(outAll, [], says, notExpressed) };
}

/** Prefixes as the fewest, IPv4 first. */
function normalize(list: Prefix[]): string[] {
  return ([4, 6] as const).flatMap((f) => unionRanges(list.filter((p) => p.family === f).map((p): Range => [p.network, prefixLast(p)])).flatMap(([a, b]) => rangeToPrefixes(f, a, b)).map(formatPrefix));
}

/** A line cut into one line per port range between cuts. */
function cutAt(e: Exposure, cuts: ReadonlySet<number>): Exposure[] {
  return rangesOf(e.ports).flatMap(([a, b]) => {
    const at = [a, ...[...cuts].filter((c) => c > a && c <= b).sort((x, y) => x - y), b + 1];
    return at.slice(0, -1).map((first, i) => ({ ...e, ports: first === at[i + 1]! - 1 ? `${first}` : `${first}-${at[i + 1]! - 1}` }));
  });
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
