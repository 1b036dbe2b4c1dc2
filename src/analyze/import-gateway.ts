// A swarmgate gateway policy from a ruleset another tool wrote for a NAT
// router, read off its exact exposure on the WAN and the LAN: each connection
// peers may open from the WAN to a LAN host that DNAT chose becomes a
// forward[] entry (with host6 where IPv6 reaches the same ports of one
// address), masquerade comes from the postrouting rules, the gateway's own
// openings become clients and admin services as a host's do, what it may open
// itself the outbound section. What a gateway policy cannot say — a forward
// that matches the LAN host as the source (the classic wrong direction), a
// forward from some peers only, a DNAT that changes the port, one whose
// connections the forward hook drops, a port opened on the LAN interface to
// sources outside the LAN — is listed, never dropped silently.
import { formatAddress, parseAddress, type Address, type Family } from "../net/address.js";
import { formatPrefix, prefixContains, prefixLast, type Prefix } from "../net/prefix.js";
import { rangeToPrefixes, subtractRanges, unionRanges, type Range } from "../net/ranges.js";
import type { Exposure } from "./exposure.js";
import type { Dnat, GatewayNat } from "./gateway-nat.js";
import { adminLines, clientLines, comment, importInbound, importOutbound, quoted, spoofedOnly, type Imported, type Opening, type Says } from "./import.js";
import { describeAddresses, targetRanges } from "./exposure-diff.js";

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

type Proto = "tcp" | "udp";
interface Wanted { host: Address; protocol: Proto; ranges: [number, number][]; paths: Set<string> }

const rangesOf = (ports: string): [number, number][] => ports.split(",").map((r) => { const [a, b] = r.split("-").map(Number); return [a!, b ?? a!]; });
const portText = ([a, b]: [number, number]) => (a === b ? `${a}` : `"${a}-${b}"`);
const mergeRanges = (rs: [number, number][]) => {
  const out: [number, number][] = [];
  for (const [a, b] of [...rs].sort((x, y) => x[0] - y[0])) { const l = out[out.length - 1]; if (l && a <= l[1] + 1) l[1] = Math.max(l[1], b); else out.push([a, b]); }
  return out;
};

/**
 * Where a forwarded line's connections go on the LAN: its target (which the exposure words as the destinations
 * accepted together with those never asked, this machine's own and those routed back out) within the LAN's routes.
 */
function onLan(family: Family, target: string | undefined, lanRoutes: readonly Prefix[]): Range[] {
  const lan = unionRanges(lanRoutes.filter((p) => p.family === family).map((p): Range => [p.network, prefixLast(p)]));
  return target === undefined ? [] : subtractRanges(targetRanges(family, target), subtractRanges(targetRanges(family, target), lan));
}

function asRanges(family: Family, e: Exposure): Range[] {
  const list = (xs: readonly string[]) => xs.flatMap((t): Range[] => { const p = parseAddress(t.split("/")[0]!); if (!p) return []; const len = Number(t.split("/")[1] ?? (family === 4 ? 32 : 128)); const pre: Prefix = { family, network: p.value, length: len }; return [[p.value, prefixLast(pre)]]; });
  if (e.peers[0] === "anywhere") return subtractRanges([[0n, family === 4 ? (1n << 32n) - 1n : (1n << 128n) - 1n]], unionRanges(list(e.except ?? [])));
  return unionRanges(list(e.peers));
}

const inside = (net: Prefix | undefined, rs: Range[]) => net !== undefined && rs.length > 0 && rs.every(([a, b]) => a >= net.network && b <= prefixLast(net));
/** Every port of `inner` is in `outer`. */
const covers = (outer: string, inner: string) => rangesOf(inner).every(([a, b]) => rangesOf(outer).some(([c, d]) => c <= a && b <= d));
const perFamily = (e: Exposure): Exposure[] => (e.families === "IPv4+IPv6" ? [{ ...e, family: 4, families: "IPv4" }, { ...e, family: 6, families: "IPv6" }] : [e]);

export function importGatewayPolicy(input: GatewayImportInput): Imported {
  const notExpressed: string[] = [];
  const says: Says = (e) => `${e.direction} ${e.families} ${e.protocol.toUpperCase()} ${e.ports} ${e.direction === "outbound" ? "to" : "from"} ${e.peers.join(", ")}${e.except ? ` except ${e.except.join(", ")}` : ""}${e.target ? ` → ${e.target}` : ""}`;
  const lanOf: Record<Family, Prefix | undefined> = { 4: input.lanNetwork, 6: input.lanNetwork6 };
  const nets = [input.lanNetwork, ...(input.lanNetwork6 ? [input.lanNetwork6] : [])];
  const masq = masquerade(input, notExpressed);
  const forwards = importForwards(input, lanOf, says, notExpressed);
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

/** The DNATs that send a forwarded line's connections to its host: the same host, protocol and ports. */
function dnatsFor(nat: GatewayNat, host: Address, protocol: Proto, ports: [number, number][]): Dnat[] {
  return nat.dnats.filter((d) => d.to.family === host.family && d.to.value === host.value && (d.protocol === undefined || d.protocol === protocol)
    && (d.dports.length === 0 || d.dports.some((r) => ports.some(([a, b]) => r.first <= b && a <= r.last))));
}

/** forward[]: the WAN's forwarded lines to one DNAT'd LAN host, open to every peer; IPv6 to one host on the same ports as host6. */
function importForwards(input: GatewayImportInput, lanOf: Record<Family, Prefix | undefined>, says: Says, notExpressed: string[]): string[] {
  const spoofed = spoofedOnly(input.local, [input.lanNetwork, ...(input.lanNetwork6 ? [input.lanNetwork6] : [])]);
  const wanted = new Map<string, Wanted>();
  const v6 = new Map<string, Wanted>();
  // Forwards in the wrong direction, one note per rule set and source: they open many port lines each.
  const wrong = new Map<string, { e: Exposure; protocols: Set<string>; ranges: [number, number][] }>();
  const said = new Set<bigint>();
  for (const e of input.exposure.filter((x) => x.direction === "forwarded" && x.interface === input.wan && x.protocol !== "icmp")) {
    const protocol = e.protocol as Proto;
    // An IPv6 line DNAT'd to an IPv4 host is the simulator's reading of an inet table's `dnat ip to` on an IPv6
    // packet, which the kernel never forwards; a policy's own DNAT gives it again, so there is nothing to say.
    const other = e.target !== undefined ? parseAddress(e.target) : undefined;
    if (other && other.family !== e.family) continue;
    const dests = onLan(e.family, e.target, input.lanRoutes);
    const host = dests.length === 1 && dests[0]![0] === dests[0]![1] ? { family: e.family, value: dests[0]![0] } as Address : undefined;
    const peers = asRanges(e.family, e);
    if (inside(lanOf[e.family], peers) || (e.family === 4 && host && peers.length === 1 && peers[0]![0] === host.value && peers[0]![1] === host.value)) {
      const key = `${e.family}|${e.peers.join()}|${e.sourcePorts ?? ""}|${e.paths.join()}`;
      const w = wrong.get(key) ?? { e, protocols: new Set<string>(), ranges: [] as [number, number][] };
      w.protocols.add(e.protocol.toUpperCase());
      w.ranges.push(...rangesOf(e.ports));
      wrong.set(key, w);
      continue;
    }
    // What is said about a host here is said instead of "no forward accepts its DNAT" below.
    const say = (text: string) => { notExpressed.push(text); if (host) said.add(host.value); };
    if (e.sourcePorts) { say(`${says(e)}, source port ${e.sourcePorts} only: a stateless forward; a policy forwards a host's ports to every peer or not at all, and leaves it closed`); continue; }
    if (e.depends) { say(`${says(e)}, as far as ${e.depends.join("; ")} allows: a policy has no such condition and leaves it closed`); continue; }
    // IPv4 reaches a LAN host through DNAT of its ports; without one, the line is routing to that address.
    if (!host || (e.family === 4 && dnatsFor(input.nat, host, protocol, rangesOf(e.ports)).length === 0)) {
      say(`${says(e)}: forwarded to ${dests.length ? describeAddresses(e.family, dests) : "no LAN network"}, not by DNAT of what peers send to the gateway (routing to LAN addresses, or a DNAT that does not ask for the gateway's own address); a policy forwards only what peers send to the gateway, and leaves it closed`);
      continue;
    }
    if (!(e.peers[0] === "anywhere" && (e.except ?? []).every(spoofed))) { say(`${says(e)}: forwarded from some peers only; a policy forwards to every peer and leaves it closed`); continue; }
    const net = lanOf[e.family];
    if (e.family === 4 && net && !prefixContains(net, host)) { say(`${says(e)}: ${formatAddress(host)} is outside the LAN network ${formatPrefix(net)}, where a policy's forwards go`); continue; }
    const ports = rangesOf(e.ports);
    const dnats = e.family === 4 ? dnatsFor(input.nat, host, protocol, ports) : [];
    const moved = dnats.filter((d) => d.port !== undefined && !(d.dports.length === 1 && d.dports[0]!.first === d.port && d.dports[0]!.last === d.port));
    if (moved.length) { say(`${says(e)}: the DNAT changes the port (${moved.map((d) => `to ${d.port} at ${d.path}`).join(", ")}); a policy forwards a port to the same port, and leaves it closed`); continue; }
    if (dnats.some((d) => d.sourceLimited)) { say(`${says(e)}: the DNAT rewrites connections from some sources only (${dnats.filter((d) => d.sourceLimited).map((d) => d.path).join(", ")}); a policy forwards to every peer and leaves it closed`); continue; }
    const into = e.family === 4 ? wanted : v6;
    const key = `${formatAddress(host)}|${protocol}`;
    const w = into.get(key) ?? { host, protocol, ranges: [], paths: new Set<string>() };
    w.ranges.push(...ports);
    for (const p of [...dnats.map((d) => d.path), ...e.paths]) if (p) w.paths.add(p);
    into.set(key, w);
  }
  for (const { e, protocols, ranges } of wrong.values()) {
    const ports = mergeRanges(ranges).map((r) => portText(r).replace(/"/g, "")).join(",");
    notExpressed.push(`forwarded IPv${e.family} ${[...protocols].join("+")} ${ports} from ${e.peers.join(", ")}${e.sourcePorts ? `, source port ${e.sourcePorts} only` : ""} (${e.paths.join(", ")}): a forward in the wrong direction — it matches the LAN host as the source, which only that host's answers have (and which a gateway policy drops as spoofed on ${input.wan}), not the peers' connections DNAT sends to it; the policy leaves it closed`);
  }
  const entries = forwardEntries(wanted);
  for (const w of v6.values()) {
    for (const r of mergeRanges(w.ranges)) {
      const e = entries.find((x) => x.range[0] === r[0] && x.range[1] === r[1] && x.protocols.includes(w.protocol) && (x.host6 === undefined || x.host6.value === w.host.value));
      if (e && (x6Protocols(v6, w.host, r).join() === e.protocols.join())) { e.host6 = w.host; w.paths.forEach((p) => e.paths.add(p)); continue; }
      notExpressed.push(`forwarded IPv6 ${w.protocol.toUpperCase()} ${portText(r).replace(/"/g, "")} from anywhere → ${formatAddress(w.host)}: a policy forwards IPv6 only to a host6 beside an IPv4 forward of the same ports and protocols, and leaves it closed`);
    }
  }
  // A DNAT whose connections no forward accepts: the port forward the script meant, broken.
  for (const d of input.nat.dnats) {
    if (d.to.family !== 4 || !d.iif || d.iif !== input.wan || said.has(d.to.value)) continue;
    const host = formatAddress(d.to);
    const done = entries.some((x) => x.host.value === d.to.value && (d.protocol === undefined || x.protocols.includes(d.protocol)) && d.dports.every((r) => x.range[0] <= r.first && r.last <= x.range[1]));
    if (done) continue;
    const what = `${d.protocol?.toUpperCase() ?? "every protocol"} ${d.dports.map((r) => (r.first === r.last ? `${r.first}` : `${r.first}-${r.last}`)).join(",") || "every port"}`;
    notExpressed.push(`DNAT of ${what} to ${host} (${d.path}): no forward rule accepts the connections it rewrites as a policy would, so the policy does not forward them; if peers should reach ${host}, add {host: ${host}, ports: ${d.dports[0] ? (d.dports[0].first === d.dports[0].last ? d.dports[0].first : `"${d.dports[0].first}-${d.dports[0].last}"`) : "…"}${d.protocol ? `, protocols: [${d.protocol}]` : ""}} under forward:`);
  }
  return entries.map((x) => `  - {host: ${quoted(formatAddress(x.host))}${x.host6 ? `, host6: ${quoted(formatAddress(x.host6))}` : ""}, ports: ${portText(x.range)}${x.protocols.length === 2 ? "" : `, protocols: [${x.protocols[0]}]`}}${comment(x.paths)}`);
}

/** The protocols by which IPv6 reaches host on exactly range r. */
function x6Protocols(v6: Map<string, Wanted>, host: Address, r: [number, number]): Proto[] {
  return (["tcp", "udp"] as const).filter((p) => mergeRanges(v6.get(`${formatAddress(host)}|${p}`)?.ranges ?? []).some(([a, b]) => a === r[0] && b === r[1]));
}

interface Entry { host: Address; host6?: Address; range: [number, number]; protocols: Proto[]; paths: Set<string> }

/** One entry per host and port range, TCP and UDP together where both are forwarded on it. */
function forwardEntries(wanted: Map<string, Wanted>): Entry[] {
  const out: Entry[] = [];
  for (const w of wanted.values()) {
    for (const r of mergeRanges(w.ranges)) {
      const twin = out.find((x) => x.host.value === w.host.value && x.range[0] === r[0] && x.range[1] === r[1]);
      if (twin) { twin.protocols.push(w.protocol); twin.protocols.sort(); w.paths.forEach((p) => twin.paths.add(p)); } else out.push({ host: w.host, range: r, protocols: [w.protocol], paths: new Set(w.paths) });
    }
  }
  return out.sort((a, b) => (a.host.value < b.host.value ? -1 : a.host.value > b.host.value ? 1 : a.range[0] - b.range[0]));
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
