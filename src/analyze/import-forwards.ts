// The forwards of a gateway's ruleset, read off its exposure on the WAN: each
// connection peers may open to a LAN host that a DNAT of the gateway's own
// address chose, on the ports it keeps, from every peer, becomes a forward[]
// entry (host6 beside it where IPv6 reaches one address on the same ports).
// The rest is said: a forward that matches the LAN host as the source (the
// classic wrong direction), one from some peers only, a DNAT that changes the
// port or whose connections nothing accepts, routing to LAN addresses, and
// forwards from the LAN side from sources outside the LAN network.
import { addressKey, formatAddress, parseAddress, type Address, type Family } from "../net/address.js";
import { formatPrefix, prefixContains, prefixLast, type Prefix } from "../net/prefix.js";
import { rangeToPrefixes, subtractRanges, unionRanges, type Range } from "../net/ranges.js";
import type { Exposure } from "./exposure.js";
import { describeAddresses, targetRanges } from "./exposure-diff.js";
import type { Dnat, GatewayNat } from "./gateway-nat.js";
import type { GatewayImportInput } from "./import-gateway.js";
import { comment, quoted, spoofedOnly, type Says } from "./import.js";

type Proto = "tcp" | "udp";
interface Wanted { host: Address; protocol: Proto; ranges: [number, number][]; paths: Set<string> }

export const rangesOf = (ports: string): [number, number][] => ports.split(",").map((r) => { const [a, b] = r.split("-").map(Number); return [a!, b ?? a!]; });
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

export function asRanges(family: Family, e: Exposure): Range[] {
  const list = (xs: readonly string[]) => xs.flatMap((t): Range[] => { const p = parseAddress(t.split("/")[0]!); if (!p) return []; const len = Number(t.split("/")[1] ?? (family === 4 ? 32 : 128)); const pre: Prefix = { family, network: p.value, length: len }; return [[p.value, prefixLast(pre)]]; });
  if (e.peers[0] === "anywhere") return subtractRanges([[0n, family === 4 ? (1n << 32n) - 1n : (1n << 128n) - 1n]], unionRanges(list(e.except ?? [])));
  return unionRanges(list(e.peers));
}

const inside = (net: Prefix | undefined, rs: Range[]) => net !== undefined && rs.length > 0 && rs.every(([a, b]) => a >= net.network && b <= prefixLast(net));
/** Every port of `inner` is in `outer`. */
export const covers = (outer: string, inner: string) => rangesOf(inner).every(([a, b]) => rangesOf(outer).some(([c, d]) => c <= a && b <= d));
export const perFamily = (e: Exposure): Exposure[] => (e.families === "IPv4+IPv6" ? [{ ...e, family: 4, families: "IPv4" }, { ...e, family: 6, families: "IPv6" }] : [e]);

/** Forwards from the LAN side from sources outside the LAN network: a policy forwards the LAN network out, nothing else. */
export function lanForwards(input: GatewayImportInput, lanOf: Record<Family, Prefix | undefined>, notExpressed: string[]): void {
  const spoofed = spoofedOnly(input.local);
  const groups = new Map<string, { family: Family; protocols: Set<string>; outside: Range[]; paths: string[] }>();
  for (const e of input.exposure.filter((x) => x.direction === "forwarded" && x.interface === input.lan).flatMap(perFamily)) {
    const net = lanOf[e.family];
    // Without an IPv6 LAN network, a policy forwards all IPv6 from the LAN interface.
    if (!net) continue;
    const outside = subtractRanges(asRanges(e.family, e), [[net.network, prefixLast(net)]])
      .flatMap(([a, b]) => rangeToPrefixes(e.family, a, b)).filter((p) => !spoofed(formatPrefix(p))).map((p): Range => [p.network, prefixLast(p)]);
    if (!outside.length) continue;
    const key = `${e.family}|${e.paths.join()}`;
    const g = groups.get(key) ?? { family: e.family, protocols: new Set<string>(), outside: [], paths: e.paths };
    g.protocols.add(e.protocol.toUpperCase());
    g.outside.push(...outside);
    groups.set(key, g);
  }
  for (const g of groups.values()) {
    notExpressed.push(`forwarded IPv${g.family} ${[...g.protocols].join("+")} from ${input.lan}, from ${describeAddresses(g.family, unionRanges(g.outside))}${g.paths.length ? ` (${g.paths.join(", ")})` : ""}: sources outside the LAN network ${formatPrefix(lanOf[g.family]!)}; a gateway policy forwards from the LAN network only, and closes the rest`);
  }
}

/** The DNATs that send a forwarded line's connections to its host: the same host, protocol and ports. */
function dnatsFor(nat: GatewayNat, host: Address, protocol: Proto, ports: [number, number][]): Dnat[] {
  return nat.dnats.filter((d) => d.to.family === host.family && d.to.value === host.value && (d.protocol === undefined || d.protocol === protocol)
    && (d.dports.length === 0 || d.dports.some((r) => ports.some(([a, b]) => r.first <= b && a <= r.last))));
}

/** forward[]: the WAN's forwarded lines to one DNAT'd LAN host, open to every peer; IPv6 to one host on the same ports as host6. */
export function importForwards(input: GatewayImportInput, lanOf: Record<Family, Prefix | undefined>, says: Says, notExpressed: string[]): string[] {
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
    const say = (text: string) => { notExpressed.push(text); if (host) said.add(addressKey(host.value)); };
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
  attachHost6(entries, v6, notExpressed);
  unacceptedDnats(input, entries, said, notExpressed);
  return entries.map((x) => `  - {host: ${quoted(formatAddress(x.host))}${x.host6 ? `, host6: ${quoted(formatAddress(x.host6))}` : ""}, ports: ${portText(x.range)}${x.protocols.length === 2 ? "" : `, protocols: [${x.protocols[0]}]`}}${comment(x.paths)}`);
}

/** IPv6 to one LAN address on an IPv4 forward's ports and protocols: that forward's host6. */
function attachHost6(entries: Entry[], v6: Map<string, Wanted>, notExpressed: string[]): void {
  for (const w of v6.values()) {
    for (const r of mergeRanges(w.ranges)) {
      const e = entries.find((x) => x.range[0] === r[0] && x.range[1] === r[1] && x.protocols.includes(w.protocol) && (x.host6 === undefined || x.host6.value === w.host.value));
      if (e && (x6Protocols(v6, w.host, r).join() === e.protocols.join())) { e.host6 = w.host; w.paths.forEach((p) => e.paths.add(p)); continue; }
      notExpressed.push(`forwarded IPv6 ${w.protocol.toUpperCase()} ${portText(r).replace(/"/g, "")} from anywhere → ${formatAddress(w.host)}: a policy forwards IPv6 only to a host6 beside an IPv4 forward of the same ports and protocols, and leaves it closed`);
    }
  }
}

/** A DNAT whose connections no forward accepts (and nothing else was said of its host): the port forward the script meant, broken. */
function unacceptedDnats(input: GatewayImportInput, entries: Entry[], said: ReadonlySet<bigint>, notExpressed: string[]): void {
  for (const d of input.nat.dnats) {
    if (d.to.family !== 4 || !d.iif || d.iif !== input.wan || said.has(addressKey(d.to.value))) continue;
    const host = formatAddress(d.to);
    const done = entries.some((x) => x.host.value === d.to.value && (d.protocol === undefined || x.protocols.includes(d.protocol)) && d.dports.every((r) => x.range[0] <= r.first && r.last <= x.range[1]));
    if (done) continue;
    const what = `${d.protocol?.toUpperCase() ?? "every protocol"} ${d.dports.map((r) => (r.first === r.last ? `${r.first}` : `${r.first}-${r.last}`)).join(",") || "every port"}`;
    // A target off the LAN's routes was never asked about: say so rather than blame the forward hook.
    if (!input.lanRoutes.some((p) => prefixContains(p, d.to))) {
      notExpressed.push(`DNAT of ${what} to ${host} (${d.path}): ${host} is not on the LAN (${input.lan}) as far as the routes known say, so its forward was not judged; give --route PREFIX=${input.lan} or --lan-network with the network holding it`);
      continue;
    }
    notExpressed.push(`DNAT of ${what} to ${host} (${d.path}): no forward rule accepts the connections it rewrites as a policy would, so the policy does not forward them; if peers should reach ${host}, add {host: ${host}, ports: ${d.dports[0] ? (d.dports[0].first === d.dports[0].last ? d.dports[0].first : `"${d.dports[0].first}-${d.dports[0].last}"`) : "…"}${d.protocol ? `, protocols: [${d.protocol}]` : ""}} under forward:`);
  }
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

