// A packet as the simulator sees it: the headers and metadata that netfilter
// rules can test, plus the connection-tracking state of its connection.
import type { Address, Family } from "../net/address.js";
import type { CtState, TcpFlag } from "../ir/match.js";

export type SimProtocol = "tcp" | "udp" | "icmp" | "icmpv6";

export interface Packet {
  family: Family;
  /** Interface it arrived on; absent for a packet this machine sends. */
  iif?: string;
  /** Interface it leaves by; absent for a packet this machine receives. */
  oif?: string;
  saddr: Address;
  daddr: Address;
  protocol: SimProtocol;
  sport?: number;
  dport?: number;
  /** TCP flags set; a new connection's first packet is SYN alone. */
  flags?: readonly TcpFlag[];
  icmpType?: number;
  state: CtState;
  /** Owner of a locally generated packet. */
  uid?: number;
}

/** Where a packet is going, decided by routing: to this machine, through it, or from it. */
export type Path = "input" | "forward" | "output";

export function pathOf(p: Pick<Packet, "iif" | "oif">): Path {
  if (p.iif !== undefined && p.oif !== undefined) return "forward";
  return p.iif !== undefined ? "input" : "output";
}
