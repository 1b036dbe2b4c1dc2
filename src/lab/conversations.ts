// Conversations for the stateful differential: each is a short exchange
// between the firewall host and a far node (a peer on its first or second
// interface), sent one step per round, so that connection tracking sees the
// packets in order. Together they reach the states doctor reasons about: new
// connections both ways, their replies and later packets (established, TCP
// and UDP), ICMP errors about them (related), and stray packets that belong
// to nothing (TCP flag combinations, bare ACKs and RSTs, errors quoting no
// connection, echo replies nobody asked for: new or invalid; neighbour
// discovery: untracked). Pure: the
// packets only, seeded.
import type { Family } from "../net/address.js";
import type { CraftSpec } from "./crafter.js";

export type Sender = "far" | "host";
/** `seenFrom`: the source the receiver sees, when NAT rewrites it on the way (a reply from a redirected port). */
export interface Step { by: Sender; spec: CraftSpec; what: string; seenFrom?: string }
export interface Conversation { kind: string; far: "peer" | "peer2"; iface: string; steps: Step[] }

export interface Ends { family: Family; far: string; host: string; farNode: "peer" | "peer2"; iface: string }
export interface Choice { pick: <T>(xs: readonly T[]) => T; random: () => number; tag: (family: Family) => number }

const U32 = (random: () => number) => Math.floor(random() * 0x100000000);
// Flags of packets with no connection: the combinations TCP uses, and those no stack sends.
const STRAY_FLAGS = ["A", "PA", "R", "RA", "F", "FA", "SF", "", "FPU", "SA", "SR", "U", "SFRPAU"];
const ICMP_ERROR = { 4: { type: 3, code: 3 }, 6: { type: 1, code: 4 } };
const TOO_BIG = { 4: { type: 3, code: 4 }, 6: { type: 2, code: 0 } };

/** One side's endpoint: the address and port it sends from. */
interface Side { addr: string; port: number; by: Sender }

function sides(e: Ends, initiator: Sender, initPort: number, respPort: number): [Side, Side] {
  const far = (port: number): Side => ({ addr: e.far, port, by: "far" });
  const host = (port: number): Side => ({ addr: e.host, port, by: "host" });
  return initiator === "far" ? [far(initPort), host(respPort)] : [host(initPort), far(respPort)];
}

function l4(e: Ends, c: Choice, from: Side, to: Side, proto: "tcp" | "udp", extra: Partial<CraftSpec> = {}): CraftSpec {
  return { family: e.family, src: from.addr, dst: to.addr, proto, sport: from.port, dport: to.port, tag: c.tag(e.family), ...extra };
}

/** An ICMP error sent by `from` about `quoted`, which travelled the other way. */
function error(e: Ends, c: Choice, from: Side, quoted: CraftSpec, kind = ICMP_ERROR): CraftSpec {
  return { family: e.family, src: from.addr, dst: quoted.src, proto: e.family === 4 ? "icmp" : "icmpv6", tag: c.tag(e.family), icmp: { ...kind[e.family], quote: quoted } };
}

/** SYN, SYN+ACK, ACK, data both ways, RST; an ICMP error about the SYN now and then. */
export function tcpConversation(e: Ends, c: Choice, initiator: Sender, initPort: number, respPort: number): Step[] {
  const [init, resp] = sides(e, initiator, initPort, respPort);
  const s = U32(c.random);
  const r = U32(c.random);
  const seq = (n: number) => (n >>> 0);
  const syn = l4(e, c, init, resp, "tcp", { flags: "S", seq: s });
  const steps: Step[] = [{ by: init.by, spec: syn, what: "SYN" }];
  if (c.random() < 0.3) steps.push({ by: resp.by, spec: error(e, c, resp, syn, c.random() < 0.5 ? ICMP_ERROR : TOO_BIG), what: "ICMP error about the SYN" });
  steps.push(
    { by: resp.by, spec: l4(e, c, resp, init, "tcp", { flags: "SA", seq: r, ack: seq(s + 1) }), what: "SYN+ACK" },
    { by: init.by, spec: l4(e, c, init, resp, "tcp", { flags: "A", seq: seq(s + 1), ack: seq(r + 1) }), what: "ACK" },
    { by: init.by, spec: l4(e, c, init, resp, "tcp", { flags: "PA", seq: seq(s + 1), ack: seq(r + 1), payload: 10 }), what: "data" },
    { by: resp.by, spec: l4(e, c, resp, init, "tcp", { flags: "PA", seq: seq(r + 1), ack: seq(s + 11), payload: 10 }), what: "data back" },
    { by: init.by, spec: l4(e, c, init, resp, "tcp", { flags: "R", seq: seq(s + 11) }), what: "RST" },
  );
  return steps;
}

/** A datagram, the answer, another datagram, and an ICMP error each way about the last ones. */
export function udpConversation(e: Ends, c: Choice, initiator: Sender, initPort: number, respPort: number): Step[] {
  const [init, resp] = sides(e, initiator, initPort, respPort);
  const first = l4(e, c, init, resp, "udp", { payload: 8 });
  const answer = l4(e, c, resp, init, "udp", { payload: 8 });
  return [
    { by: init.by, spec: first, what: "datagram" },
    { by: resp.by, spec: answer, what: "answer" },
    { by: init.by, spec: l4(e, c, init, resp, "udp", { payload: 8 }), what: "second datagram" },
    { by: init.by, spec: error(e, c, init, answer), what: "ICMP error about the answer" },
    { by: resp.by, spec: error(e, c, resp, first), what: "ICMP error about the datagram" },
  ];
}

/** An echo request and its reply. */
export function pingConversation(e: Ends, c: Choice, initiator: Sender, id: number): Step[] {
  const [init, resp] = sides(e, initiator, 0, 0);
  const proto = e.family === 4 ? "icmp" : "icmpv6";
  const [request, reply] = e.family === 4 ? [8, 0] : [128, 129];
  return [
    { by: init.by, spec: { family: e.family, src: init.addr, dst: resp.addr, proto, tag: c.tag(e.family), echo: { type: request, id, seq: 1 } }, what: "echo request" },
    { by: resp.by, spec: { family: e.family, src: resp.addr, dst: init.addr, proto, tag: c.tag(e.family), echo: { type: reply, id, seq: 1 } }, what: "echo reply" },
  ];
}

/** One packet of no connection: odd TCP flags, an ICMP error quoting nothing, an unasked echo reply. */
export function strayPacket(e: Ends, c: Choice, by: Sender, fromPort: number, toPort: number, id: number): Step[] {
  const [from, to] = sides(e, by, fromPort, toPort);
  const roll = c.random();
  if (roll < 0.6) {
    const flags = c.pick(STRAY_FLAGS);
    return [{ by, spec: l4(e, c, from, to, "tcp", { flags, seq: U32(c.random), ack: flags.includes("A") ? U32(c.random) : 0 }), what: `stray TCP [${flags || "none"}]` }];
  }
  if (roll < 0.72) {
    // About a datagram `to` never sent.
    const quoted = l4(e, c, to, from, c.random() < 0.5 ? "udp" : "tcp", { flags: "S" });
    return [{ by, spec: error(e, c, from, quoted), what: "ICMP error about no connection" }];
  }
  if (e.family === 6 && roll < 0.92) return neighbourDiscovery(e, c, by, c.random() < 0.5 ? 135 : 136);
  const proto = e.family === 4 ? "icmp" : "icmpv6";
  return [{ by, spec: { family: e.family, src: from.addr, dst: to.addr, proto, tag: c.tag(e.family), echo: { type: e.family === 4 ? 0 : 129, id, seq: 1 } }, what: "echo reply nobody asked for" }];
}

/** A neighbour solicitation or advertisement, which conntrack never tracks. */
export function neighbourDiscovery(e: Ends, c: Choice, by: Sender, type: 135 | 136): Step[] {
  const [from, to] = sides(e, by, 0, 0);
  return [{ by, spec: { family: 6, src: from.addr, dst: to.addr, proto: "icmpv6", tag: c.tag(6), nd: { type } }, what: `neighbour ${type === 135 ? "solicitation" : "advertisement"}` }];
}

/**
 * A conversation the far side opened towards a port that NAT (DNAT, REDIRECT)
 * moved to another address or port of the host: the host answers from there,
 * as a real service would, and its ICMP errors quote the packet as it arrived
 * there; the far side still sees the answers come from where it sent.
 */
export function answeredFrom(steps: readonly Step[], to: { addr: string; port?: number }): Step[] {
  return steps.map((s) => {
    if (s.by !== "host") return s;
    const spec = { ...s.spec, src: to.addr };
    if (spec.sport !== undefined && to.port !== undefined) spec.sport = to.port;
    if (spec.icmp) {
      const quote = { ...spec.icmp.quote, dst: to.addr };
      if (quote.dport !== undefined && to.port !== undefined) quote.dport = to.port;
      spec.icmp = { ...spec.icmp, quote };
    }
    return { ...s, spec, seenFrom: s.spec.src };
  });
}
