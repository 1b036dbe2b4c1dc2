// Packets a person can type:
//   tcp 203.0.113.5:40000 -> 192.168.153.51:6881 in eth0
//   udp [2001:db8::5]:6881 -> [2001:db8::51]:6881 in eth0 established
//   icmp 198.51.100.7 -> 192.0.2.51 echo-request in eth0
//   tcp 192.168.1.3:50000 -> 198.51.100.7:443 in lan0 out ppp0 flags syn uid 1000
// `in IF` alone: arriving for this machine (or to be forwarded after DNAT);
// `out IF` alone: sent by this machine; both: forwarded.
import { parseAddress, type Address } from "../net/address.js";
import { userError } from "../errors.js";
import { ICMP4, ICMP6 } from "../ir/icmp.js";
import type { CtState, TcpFlag } from "../ir/match.js";
import type { Packet, SimProtocol } from "./packet.js";

const STATES: CtState[] = ["new", "established", "related", "invalid", "untracked"];
const FLAGS: TcpFlag[] = ["fin", "syn", "rst", "psh", "ack", "urg"];

function bad(message: string, text: string, at: number): never {
  throw userError("PACKET_SYNTAX", `${message}\n  ${text}\n  ${" ".repeat(Math.max(0, at))}^`);
}

/** "1.2.3.4:80", "[2001:db8::1]:80", "1.2.3.4", "2001:db8::1" or "[2001:db8::1]". */
function endpoint(token: string, text: string, at: number, wantPort: boolean): { address: Address; port?: number } {
  let host = token;
  let port: string | undefined;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(token);
  if (bracket) { host = bracket[1]!; port = bracket[2]; }
  else if ((token.match(/:/g) ?? []).length === 1) [host, port] = token.split(":") as [string, string];
  const address = parseAddress(host);
  if (!address) bad(`"${host}" is not an IPv4 or IPv6 address (IPv6 with a port goes in brackets: [2001:db8::5]:40000)`, text, at);
  if (port !== undefined) {
    const n = Number(port);
    if (!/^\d+$/.test(port) || n < 1 || n > 65535) bad(`port ${port} is out of range (1-65535)`, text, at + token.lastIndexOf(port));
    return { address, port: n };
  }
  if (wantPort) bad(`${token} needs a port (${address.family === 6 ? "[address]:port" : "address:port"})`, text, at);
  return { address };
}

function icmpTypeByName(family: 4 | 6, name: string): number | undefined {
  const table = family === 4 ? ICMP4 : ICMP6;
  for (const [n, names] of Object.entries(table)) if (names.nft === name || names.iptables === name) return Number(n);
  return /^\d+$/.test(name) && Number(name) < 256 ? Number(name) : undefined;
}

export interface SpecOverrides { state?: string; flags?: string; uid?: number }

export function parsePacket(text: string, overrides: SpecOverrides = {}): Packet {
  const tokens: { t: string; at: number }[] = [];
  for (const m of text.matchAll(/\S+/g)) tokens.push({ t: m[0], at: m.index! });
  const take = () => tokens.shift();
  const first = take();
  const protoWord = first?.t.toLowerCase();
  const protocols: Record<string, SimProtocol> = { tcp: "tcp", udp: "udp", icmp: "icmp", icmpv6: "icmpv6", "ipv6-icmp": "icmpv6", ping: "icmp" };
  let protocol = protoWord ? protocols[protoWord] : undefined;
  if (!protocol) bad(`a packet starts with tcp, udp, icmp or icmpv6`, text, first?.at ?? 0);
  const src = take();
  const arrow = take();
  const dst = take();
  if (!src || !arrow || arrow.t !== "->" || !dst) bad('expected "SOURCE -> DESTINATION"', text, (arrow ?? src ?? first)!.at);
  const ported = protocol === "tcp" || protocol === "udp";
  const s = endpoint(src.t, text, src.at, false);
  const d = endpoint(dst.t, text, dst.at, ported);
  if (s.address.family !== d.address.family) bad("source and destination must be of one address family", text, dst.at);
  if (protocol === "icmp" && d.address.family === 6) protocol = "icmpv6";
  const packet: Packet = { family: s.address.family, saddr: s.address, daddr: d.address, protocol, state: "new" };
  if (ported) { packet.sport = s.port ?? 40000; packet.dport = d.port!; }
  let flags: string | undefined = overrides.flags;
  let state: string | undefined = overrides.state;
  let uid = overrides.uid;
  for (let tok = take(); tok; tok = take()) {
    const w = tok.t.toLowerCase();
    const value = () => take() ?? bad(`"${tok!.t}" needs a value`, text, tok!.at + tok!.t.length);
    if (w === "in" || w === "out") {
      const iface = value();
      if (!/^[A-Za-z0-9_.@+-]{1,15}$/.test(iface.t)) bad(`"${iface.t}" is not an interface name`, text, iface.at);
      if (w === "in") packet.iif = iface.t; else packet.oif = iface.t;
    } else if (STATES.includes(w as CtState)) state = w;
    else if (w === "flags") flags = value().t;
    else if (w === "uid") uid = Number(value().t);
    else if (w === "type" && !ported) packet.icmpType = icmpTypeByName(packet.family, value().t) ?? bad(`unknown ICMP type`, text, tok.at);
    else if (!ported && icmpTypeByName(packet.family, w) !== undefined) packet.icmpType = icmpTypeByName(packet.family, w);
    else bad(`unknown word "${tok.t}" (expected in IF, out IF, a state, flags F,F, uid N${ported ? "" : ", an ICMP type"})`, text, tok.at);
  }
  if (packet.iif === undefined && packet.oif === undefined) bad("say where the packet is: in IF (arriving), out IF (sent by this machine), or both (forwarded)", text, text.length);
  if (!ported && packet.icmpType === undefined) packet.icmpType = packet.family === 4 ? 8 : 128;
  if (state !== undefined) {
    if (!STATES.includes(state as CtState)) bad(`unknown state "${state}" (${STATES.join(", ")})`, text, 0);
    packet.state = state as CtState;
  }
  if (flags !== undefined) {
    const list = flags.toLowerCase().split(/[,|]/).filter(Boolean);
    const unknown = list.find((f) => !FLAGS.includes(f as TcpFlag));
    if (unknown) bad(`unknown TCP flag "${unknown}" (${FLAGS.join(", ")})`, text, 0);
    packet.flags = list as TcpFlag[];
  }
  if (uid !== undefined) {
    if (!Number.isInteger(uid) || uid < 0) bad("uid is a whole number", text, 0);
    packet.uid = uid;
  }
  return packet;
}

export function formatPacket(p: Packet, fmt: (a: Address) => string): string {
  const ep = (a: Address, port?: number) => (port === undefined ? fmt(a) : a.family === 6 ? `[${fmt(a)}]:${port}` : `${fmt(a)}:${port}`);
  const where = [p.iif && `in ${p.iif}`, p.oif && `out ${p.oif}`].filter(Boolean).join(" ");
  return `${p.protocol} ${ep(p.saddr, p.sport)} -> ${ep(p.daddr, p.dport)} ${where} ${p.state}`.trim();
}
