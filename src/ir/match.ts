// What a rule can test. Frozen plain data with a string `kind`; every backend
// and the simulator handle each kind through a Record keyed by kind, so a new
// kind is a compile error until all of them handle it.
import type { Family } from "../net/address.js";
import type { PortRange } from "../net/port.js";
import type { Prefix } from "../net/prefix.js";

export type Transport = "tcp" | "udp";
export type L4Protocol = Transport | "icmp" | "icmpv6";
export type CtState = "new" | "established" | "related" | "invalid" | "untracked";
export type TcpFlag = "fin" | "syn" | "rst" | "psh" | "ack" | "urg";
export type LimitUnit = "second" | "minute" | "hour" | "day";

/** The interface is `name`; with `wildcard`, any whose name starts with it (iptables' `eth+`, nft's "eth*"). */
export interface InterfaceMatch<K extends "iifname" | "oifname" = "iifname" | "oifname"> { kind: K; name: string; negate: boolean; wildcard?: boolean }
/** Restricts a rule to one address family without testing an address. */
export interface FamilyMatch { kind: "family"; family: Family }
/** The address is inside any one of the prefixes (all of one family). */
export interface AddressMatch<K extends "saddr" | "daddr" = "saddr" | "daddr"> { kind: K; family: Family; prefixes: readonly Prefix[] }
export interface ProtocolMatch { kind: "protocol"; protocol: L4Protocol }
/**
 * The port is inside any one of the ranges; the rule also tests the protocol.
 * With `set` (destination ports only), the ranges are what the table's port
 * set of that name holds now: the backend writes a reference to the set, so
 * that a new port (a client that moved) is swapped into the set in place,
 * without reloading a rule (`swarmgate follow`).
 */
export interface PortMatch<K extends "sport" | "dport" = "sport" | "dport"> { kind: K; protocol: Transport; ranges: readonly PortRange[]; set?: string }
export interface CtStateMatch { kind: "ctstate"; states: readonly CtState[] }
/** The connection's destination was rewritten by DNAT. */
export interface CtDnatMatch { kind: "ctdnat" }
/** (flags & mask) == equal, or != when negated. */
export interface TcpFlagsMatch { kind: "tcpflags"; mask: readonly TcpFlag[]; equal: readonly TcpFlag[]; negate: boolean }
export interface IcmpTypeMatch { kind: "icmptype"; family: Family; types: readonly number[] }
/** The source or destination address is one of this machine's own (fib … type local). */
export interface LocalAddressMatch { kind: "localaddr"; field: "saddr" | "daddr" }
export interface LimitMatch { kind: "limit"; count: number; unit: LimitUnit; burst: number }
/**
 * A test no single packet decides, or one this reader does not know: a rate
 * per source (recent, hashlimit), a mark set elsewhere, a socket's owner, an
 * unknown module. Only rulesets read from other tools have it. It is carried,
 * never guessed: a verdict that depends on it is reported as depending on it.
 */
export interface UnknownMatch { kind: "unknown"; text: string }
export type PacketType = "unicast" | "broadcast" | "multicast";
/**
 * The class of the packet's destination (iptables' -m pkttype, nft's meta
 * pkttype): told by its destination address — a multicast group, the
 * limited broadcast 255.255.255.255, or anything else (unicast). Only
 * rulesets read from other tools have it.
 */
export interface PacketTypeMatch { kind: "pkttype"; types: readonly PacketType[] }
/**
 * The packet carries an IPv6 extension header of this kind (iptables' -m rt,
 * frag, hbh, dst; nft's exthdr): whatever the header's fields are tested for,
 * a packet without the header never matches. The packets swarmgate reasons
 * about carry none. Only rulesets read from other tools have it.
 */
export interface ExtensionHeaderMatch { kind: "exthdr"; header: "rt" | "frag" | "hbh" | "dst"; text: string }

/**
 * The packet was sent by a socket of this user (nft's meta skuid, iptables'
 * -m owner --uid-owner). Only packets this machine sends carry an owner: a
 * packet arriving or forwarded never matches.
 */
export interface SocketUidMatch { kind: "skuid"; uid: number }

export type Match =
  | InterfaceMatch<"iifname">
  | InterfaceMatch<"oifname">
  | FamilyMatch
  | AddressMatch<"saddr">
  | AddressMatch<"daddr">
  | ProtocolMatch
  | PortMatch<"sport">
  | PortMatch<"dport">
  | CtStateMatch
  | CtDnatMatch
  | TcpFlagsMatch
  | IcmpTypeMatch
  | LocalAddressMatch
  | LimitMatch
  | UnknownMatch
  | PacketTypeMatch
  | ExtensionHeaderMatch
  | SocketUidMatch;

export type MatchKind = Match["kind"];

/** A handler per match kind: the shape every backend implements. */
export type MatchHandlers<R> = { [K in MatchKind]: (m: Extract<Match, { kind: K }>) => R };
