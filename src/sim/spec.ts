// Packets a person can type:
//   tcp 203.0.113.5:40000 -> 192.168.153.51:6881 in eth0
//   udp [2001:db8::5]:6881 -> [2001:db8::51]:6881 in eth0 established
//   icmp 198.51.100.7 -> 192.0.2.51 echo-request in eth0
//   tcp 192.168.1.3:50000 -> 198.51.100.7:443 in lan0 out ppp0 flags syn uid 1000
// `in IF` alone: arriving for this machine (or to be forwarded after DNAT);
// `out IF` alone: sent by this machine; both: forwarded.
import { embeddedIpv4, formatAddress, parseAddress, type Address } from "../net/address.js";
import { displayValue, userError } from "../errors.js";
import { ICMP4, ICMP6 } from "../ir/icmp.js";
import type { CtState, TcpFlag } from "../ir/match.js";
import { stateWithoutConnection } from "./conntrack.js";
import type { Packet, SimProtocol } from "./packet.js";

const STATES: CtState[] = ["new", "established", "related", "invalid", "untracked"];
const FLAGS: TcpFlag[] = ["fin", "syn", "rst", "psh", "ack", "urg"];
const PROTOCOLS: Record<string, SimProtocol | "ping"> = { tcp: "tcp", udp: "udp", icmp: "icmp", icmpv6: "icmpv6", "ipv6-icmp": "icmpv6", ping: "ping" };
const UID_MAX = 4294967295;

interface Token { t: string; at: number }

/** A syntax error with the 1-based column of the offending word, and a caret under it. */
function bad(message: string, text: string, at: number): never {
  throw userError("PACKET_SYNTAX", `${message}\n  ${text}\n  ${" ".repeat(Math.max(0, at))}^`, { column: at + 1 });
}

/** An error in an option value (--state, --flags, --uid): it has no column in the packet. */
function badOption(message: string): never {
  throw userError("PACKET_SYNTAX", message);
}

/** "1.2.3.4:80", "[2001:db8::1]:80", "1.2.3.4", "2001:db8::1" or "[2001:db8::1]". */
function endpoint(token: Token, text: string, ported: boolean, wantPort: boolean): { address: Address; port?: number } {
  let host = token.t;
  let port: string | undefined;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(token.t);
  if (bracket) { host = bracket[1]!; port = bracket[2]; }
  else if ((token.t.match(/:/g) ?? []).length === 1) [host, port] = token.t.split(":") as [string, string];
  const address = parseAddress(host);
  if (!address) bad(`"${displayValue(host)}" is not an IPv4 or IPv6 address (IPv6 with a port goes in brackets: [2001:db8::5]:40000)`, text, token.at);
  const v4 = embeddedIpv4(address);
  if (v4) bad(`${displayValue(host)} is an IPv4-mapped IPv6 address, which no packet carries on the wire; write ${formatAddress(v4)}`, text, token.at);
  if (port !== undefined) {
    const at = token.at + token.t.lastIndexOf(port);
    if (!ported) bad(`ICMP has no ports; write the address alone`, text, at);
    const n = Number(port);
    if (!/^\d{1,5}$/.test(port) || n < 1 || n > 65535) bad(`port ${displayValue(port)} is out of range (1-65535)`, text, at);
    return { address, port: n };
  }
  if (wantPort) bad(`${displayValue(token.t)} needs a port (${address.family === 6 ? "[address]:port" : "address:port"})`, text, token.at);
  return { address };
}

function icmpTypeByName(family: 4 | 6, name: string): number | undefined {
  const table = family === 4 ? ICMP4 : ICMP6;
  for (const [n, names] of Object.entries(table)) if (names.nft === name || names.iptables === name) return Number(n);
  return /^\d{1,3}$/.test(name) && Number(name) < 256 ? Number(name) : undefined;
}

/** The protocol word, source and destination: `tcp A:1 -> B:2`. */
function head(tokens: Token[], text: string): Pick<Packet, "family" | "saddr" | "daddr" | "protocol" | "sport" | "dport"> {
  const [first, src, arrow, dst] = tokens.splice(0, 4);
  const word = first ? PROTOCOLS[first.t.toLowerCase()] : undefined;
  if (!word) bad(`a packet starts with tcp, udp, icmp or icmpv6`, text, first?.at ?? 0);
  if (!src || !arrow || arrow.t !== "->" || !dst) bad('expected "SOURCE -> DESTINATION"', text, (arrow ?? src ?? first)!.at);
  const ported = word === "tcp" || word === "udp";
  const s = endpoint(src, text, ported, false);
  const d = endpoint(dst, text, ported, ported);
  const family = s.address.family;
  if (family !== d.address.family) bad("source and destination must be of one address family", text, dst.at);
  // `ping` is ICMP of the addresses' family; icmp and icmpv6 say which they are.
  if ((word === "icmp" && family === 6) || (word === "icmpv6" && family === 4)) {
    bad(`${first!.t} is ICMP for IPv${word === "icmp" ? 4 : 6}; between IPv${family} addresses write ${family === 4 ? "icmp" : "icmpv6"}`, text, first!.at);
  }
  const protocol: SimProtocol = word === "ping" ? (family === 4 ? "icmp" : "icmpv6") : word;
  return { family, saddr: s.address, daddr: d.address, protocol, ...(ported && { sport: s.port ?? 40000, dport: d.port! }) };
}

/** The words after the addresses, each at most once: the word itself and its value. */
interface Said { word: Token; value: Token }
interface Words { in?: Said; out?: Said; state?: Said; flags?: Said; uid?: Said; type?: Said }

function readWords(tokens: Token[], text: string, packet: Packet): Words {
  const words: Words = {};
  const ported = packet.protocol === "tcp" || packet.protocol === "udp";
  const once = (key: keyof Words, tok: Token, value: Token) => {
    if (words[key]) bad(`"${displayValue(tok.t)}" given twice (first at column ${words[key]!.word.at + 1})`, text, tok.at);
    words[key] = { word: tok, value };
  };
  for (let tok = tokens.shift(); tok; tok = tokens.shift()) {
    const w = tok.t.toLowerCase();
    const value = () => tokens.shift() ?? bad(`"${displayValue(tok!.t)}" needs a value`, text, tok!.at + tok!.t.length);
    if (w === "in" || w === "out") once(w, tok, value());
    else if (STATES.includes(w as CtState)) once("state", tok, tok);
    else if (w === "flags") {
      if (packet.protocol !== "tcp") bad(`flags are TCP flags; a ${packet.protocol} packet has none`, text, tok.at);
      once("flags", tok, value());
    } else if (w === "uid") once("uid", tok, value());
    else if (!ported && (w === "type" || icmpTypeByName(packet.family, w) !== undefined)) once("type", tok, w === "type" ? value() : tok);
    else bad(`unknown word "${displayValue(tok.t)}" (expected in IF, out IF, a state, flags F,F, uid N${ported ? "" : ", an ICMP type"})`, text, tok.at);
  }
  return words;
}

export interface SpecOverrides { state?: string; flags?: string; uid?: number | string }

function interfaceOf(said: Said | undefined, text: string): string | undefined {
  const tok = said?.value;
  if (tok && !/^[A-Za-z0-9_.@+-]{1,15}$/.test(tok.t)) bad(`"${displayValue(tok.t)}" is not an interface name`, text, tok.at);
  return tok?.t;
}

function stateOf(value: string, fail: (m: string) => never): CtState {
  if (!STATES.includes(value.toLowerCase() as CtState)) fail(`unknown state "${displayValue(value)}" (${STATES.join(", ")})`);
  return value.toLowerCase() as CtState;
}

function flagsOf(value: string, fail: (m: string) => never): TcpFlag[] {
  const list = value.toLowerCase().split(/[,|]/).filter(Boolean);
  const unknown = list.find((f) => !FLAGS.includes(f as TcpFlag));
  if (unknown !== undefined || list.length === 0) fail(`unknown TCP flag "${displayValue(unknown ?? value)}" (${FLAGS.join(", ")})`);
  return list as TcpFlag[];
}

function uidOf(value: string, fail: (m: string) => never): number {
  if (!/^\d{1,10}$/.test(value) || Number(value) > UID_MAX) fail(`uid is a whole number from 0 to ${UID_MAX}, not "${displayValue(value)}"`);
  return Number(value);
}

/**
 * A value from the packet or from its option (--state, --flags, --uid), never
 * both: a second value would silently override the first.
 */
function pick<T>(name: string, said: Said | undefined, option: string | undefined, text: string, read: (v: string, fail: (m: string) => never) => T): T | undefined {
  if (said && option !== undefined) bad(`${name} given twice: in the packet and as --${name}`, text, said.word.at);
  if (said) return read(said.value.t, (m) => bad(m, text, said.value.at));
  return option === undefined ? undefined : read(option, (m) => badOption(`--${name}: ${m}`));
}

export function parsePacket(text: string, overrides: SpecOverrides = {}): Packet {
  const tokens: Token[] = [...text.matchAll(/\S+/g)].map((m) => ({ t: m[0], at: m.index! }));
  const packet: Packet = { ...head(tokens, text), state: "new" };
  const words = readWords(tokens, text, packet);
  const iif = interfaceOf(words.in, text);
  const oif = interfaceOf(words.out, text);
  if (iif === undefined && oif === undefined) bad("say where the packet is: in IF (arriving), out IF (sent by this machine), or both (forwarded)", text, text.length);
  if (iif !== undefined) packet.iif = iif;
  if (oif !== undefined) packet.oif = oif;
  if (packet.protocol === "icmp" || packet.protocol === "icmpv6") {
    const t = words.type?.value;
    packet.icmpType = t ? icmpTypeByName(packet.family, t.t.toLowerCase()) ?? bad(`unknown ICMP type "${displayValue(t.t)}"`, text, t.at) : packet.family === 4 ? 8 : 128;
  }
  const state = pick("state", words.state, overrides.state, text, stateOf);
  if (overrides.flags !== undefined && packet.protocol !== "tcp") badOption(`--flags: TCP flags, but this is a ${packet.protocol} packet`);
  const flags = pick("flags", words.flags, overrides.flags, text, flagsOf);
  if (flags) packet.flags = flags;
  // No state given: the one the kernel gives such a packet with no connection (a SYN+FIN or an echo reply is
  // invalid, not new; neighbour discovery is untracked), as the stateful differential shows.
  packet.state = state ?? stateWithoutConnection(packet);
  const uid = pick("uid", words.uid, overrides.uid === undefined ? undefined : String(overrides.uid), text, uidOf);
  if (uid !== undefined) packet.uid = uid;
  return packet;
}

export function formatPacket(p: Packet, fmt: (a: Address) => string): string {
  const ep = (a: Address, port?: number) => (port === undefined ? fmt(a) : a.family === 6 ? `[${fmt(a)}]:${port}` : `${fmt(a)}:${port}`);
  const where = [p.iif && `in ${p.iif}`, p.oif && `out ${p.oif}`].filter(Boolean).join(" ");
  return `${p.protocol} ${ep(p.saddr, p.sport)} -> ${ep(p.daddr, p.dport)} ${where} ${p.state}`.trim();
}
