// The connection-tracking state the kernel gives a packet (ct state, -m
// conntrack --ctstate), from the connections it has seen: what `explain`
// assumes when a packet spec names no state, and what the stateful
// differential (lab/stateful-differential.ts) predicts for every packet of a
// conversation before it compares verdicts with the kernel's.
//
// The model is the kernel's (net/netfilter/nf_conntrack_proto_tcp.c,
// nf_conntrack_proto_icmp.c, nf_conntrack_core.c) for what a single packet
// can show, with the defaults of a fresh namespace (nf_conntrack_tcp_loose=1):
// - a TCP packet whose flags are not one of the combinations TCP uses (SYN+FIN,
//   none, FIN alone, FIN+PSH+URG …) is invalid, connection or not;
// - with no connection: SYN, and a bare ACK (picked up mid-stream), are new;
//   RST, SYN+ACK and FIN+ACK are invalid; UDP is new; an ICMP echo request is
//   new, an echo reply invalid; neighbour discovery and MLD are untracked; an ICMP error is related to the connection
//   the packet it quotes belongs to, and invalid when there is none;
// - with a connection: the reply direction is established; the original
//   direction is established once a reply was seen, new until then; a TCP
//   packet that is no step of the handshake from the connection's TCP state
//   (an ACK before the SYN+ACK) is invalid.
// Sequence numbers are not modelled: packets are taken to be in the window.
import type { CtState, TcpFlag } from "../ir/match.js";
import type { Packet } from "./packet.js";

/** TCP states a connection can be in (the kernel's sNO … sCL, those a packet can reach here). */
type TcpState = "none" | "syn-sent" | "syn-recv" | "established" | "fin-wait" | "close-wait" | "last-ack" | "time-wait" | "close" | "syn-sent2";
type Index = "syn" | "synack" | "fin" | "ack" | "rst" | "none";

const ORDER: TcpState[] = ["none", "syn-sent", "syn-recv", "established", "fin-wait", "close-wait", "last-ack", "time-wait", "close", "syn-sent2"];
// The kernel's tcp_conntracks table, columns in ORDER; "iv": invalid, "ig": ignored (state unchanged).
type Cell = TcpState | "iv" | "ig";
const T = (s: string): Cell[] => s.split(" ").map((x) => ({ NO: "none", SS: "syn-sent", SR: "syn-recv", ES: "established", FW: "fin-wait", CW: "close-wait", LA: "last-ack", TW: "time-wait", CL: "close", S2: "syn-sent2", IV: "iv", IG: "ig" } as Record<string, Cell>)[x]!);
const TABLE: Record<"original" | "reply", Record<Index, Cell[]>> = {
  original: {
    syn: T("SS SS IG IG IG IG IG SS SS S2"),
    synack: T("IV IV SR IV IV IV IV IV IV SR"),
    fin: T("IV IV FW FW LA LA LA TW CL IV"),
    ack: T("ES IV ES ES CW CW TW TW CL IV"),
    rst: T("IV CL CL CL CL CL CL CL CL CL"),
    none: T("IV IV IV IV IV IV IV IV IV IV"),
  },
  reply: {
    syn: T("IV S2 IV IV IV IV IV SS IV S2"),
    synack: T("IV SR IG IG IG IG IG IG IG SR"),
    fin: T("IV IV FW FW LA LA LA TW CL IV"),
    ack: T("IV IG SR ES CW CW TW TW CL IG"),
    rst: T("IV CL CL CL CL CL CL CL CL CL"),
    none: T("IV IV IV IV IV IV IV IV IV IV"),
  },
};

const BIT: Record<TcpFlag, number> = { fin: 1, syn: 2, rst: 4, psh: 8, ack: 16, urg: 32 };
const [FIN, SYN, RST, ACK, URG] = [1, 2, 4, 16, 32];
// The combinations TCP uses (tcp_valid_flags, PSH ignored); any other is invalid before any state is asked.
const VALID = new Set([SYN, SYN | URG, SYN | ACK, RST, RST | ACK, FIN | ACK, FIN | ACK | URG, ACK, ACK | URG]);

/** A packet without flags is what the simulator takes it for: a SYN opening a connection, an ACK inside one. */
function flagsOf(p: Packet, inConnection: boolean): number {
  const flags = p.flags ?? (inConnection ? ["ack"] : ["syn"]);
  return flags.reduce((n, f) => n | BIT[f], 0) & ~BIT.psh;
}

function indexOf(bits: number): Index {
  if (bits & RST) return "rst";
  if (bits & SYN) return bits & ACK ? "synack" : "syn";
  if (bits & FIN) return "fin";
  return bits & ACK ? "ack" : "none";
}

const ERRORS = { 4: new Set([3, 4, 5, 11, 12]), 6: new Set([1, 2, 3, 4]) };
// Queries that open an ICMP "connection" (echo, timestamp, information, address mask; ICMPv6 echo, node information).
const QUERIES: Record<4 | 6, Set<number>> = { 4: new Set([8, 13, 15, 17]), 6: new Set([128, 139]) };

// Neighbour discovery and multicast listener messages are never tracked (nf_conntrack_proto_icmpv6.c, noct_valid_new).
const UNTRACKED6 = new Set([130, 131, 132, 133, 134, 135, 136, 143]);

export const isIcmpError = (p: Pick<Packet, "family" | "protocol" | "icmpType">): boolean =>
  (p.protocol === "icmp" || p.protocol === "icmpv6") && ERRORS[p.family].has(p.icmpType ?? -1);

/** What NAT rewrote in a connection's first packet. */
export interface Translation { saddr?: Packet["saddr"]; daddr?: Packet["daddr"]; sport?: number; dport?: number }

interface Entry { original: string; tcp: TcpState; seenReply: boolean }

/** A tuple as the kernel keys a connection; ICMP queries by their identifier (carried in sport). */
function tuple(p: Packet, reverse = false): string {
  const [s, d, sp, dp] = reverse ? [p.daddr, p.saddr, p.dport, p.sport] : [p.saddr, p.daddr, p.sport, p.dport];
  if (p.protocol === "tcp" || p.protocol === "udp") return `${p.family}|${p.protocol}|${s.value}|${sp}|${d.value}|${dp}`;
  return `${p.family}|${p.protocol}|${s.value}|${d.value}|${p.sport ?? 0}`;
}

export interface Tracked {
  state: CtState;
  /**
   * Call when conntrack saw the packet (nothing before it at priority -200
   * dropped it or took it out of tracking): the connection it belongs to
   * moves on, whatever the filters do with the packet afterwards.
   */
  seen(): void;
  /**
   * Call when the packet got through every hook: a new connection is then kept
   * (the kernel confirms it last). `translated`: where NAT sent it (the
   * simulator's SimResult.translated): replies come back from there.
   */
  confirm(translated?: Translation): void;
}

const NOTHING = () => {};
const only = (state: CtState): Tracked => ({ state, seen: NOTHING, confirm: NOTHING });

export class Conntrack {
  private readonly entries = new Map<string, Entry>();

  /**
   * The state the kernel gives this packet. `quote`: the packet an ICMP error
   * carries. An ICMP query's identifier goes in `sport` and `dport`.
   */
  track(p: Packet, quote?: Packet): Tracked {
    if (p.protocol === "icmpv6" && UNTRACKED6.has(p.icmpType ?? -1)) return only("untracked");
    // The kernel looks up the inverse of the quoted packet: the error goes back to whoever sent it.
    if (isIcmpError(p)) return only(quote && this.entries.has(tuple(quote, true)) ? "related" : "invalid");
    const entry = this.entries.get(tuple(p));
    const bits = flagsOf(p, entry !== undefined);
    if (p.protocol === "tcp" && !VALID.has(bits)) return only("invalid");
    if (!entry) return this.first(p, bits);
    const direction = entry.original === tuple(p) ? "original" : "reply";
    let tcp = entry.tcp;
    if (p.protocol === "tcp") {
      const next = TABLE[direction][indexOf(bits)][ORDER.indexOf(entry.tcp)]!;
      if (next === "iv") return only("invalid");
      if (next !== "ig") tcp = next;
    }
    const state = direction === "reply" || entry.seenReply ? "established" : "new";
    return { state, seen: () => { entry.tcp = tcp; if (direction === "reply") entry.seenReply = true; }, confirm: NOTHING };
  }

  private first(p: Packet, bits: number): Tracked {
    let tcp: TcpState = "none";
    if (p.protocol === "tcp") {
      const next = TABLE.original[indexOf(bits)][0]!;
      if (next === "iv" || next === "ig") return only("invalid");
      tcp = next;
    } else if (p.protocol !== "udp" && !QUERIES[p.family].has(p.icmpType ?? -1)) {
      // An echo reply, or any other ICMP message that is neither a query nor an error: nothing it could belong to.
      return only("invalid");
    }
    // The answer comes back with the addresses swapped (an ICMP answer with the query's identifier): keyed as the reverse.
    const key = tuple(p);
    return {
      state: "new", seen: NOTHING,
      confirm: (t) => {
        const e = { original: key, tcp, seenReply: false };
        this.entries.set(key, e);
        // Replies come from where NAT sent the connection, to where it came from.
        this.entries.set(tuple({ ...p, ...t }, true), e);
      },
    };
  }
}

/** The state of a packet that belongs to no connection the kernel knows. */
export function stateWithoutConnection(p: Packet): CtState {
  return new Conntrack().track(p).state;
}
