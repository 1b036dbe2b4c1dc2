// What the policy means, evaluated directly from the Policy — independently of
// the compiler — so that a rehearsal compares the policy's intent with what
// the kernel does with the compiled rules.
import { parseAddress, type Address } from "../net/address.js";
import type { PortRange } from "../net/port.js";
import { prefixContains } from "../net/prefix.js";
import type { Forward, Policy } from "../policy/types.js";

export type Proto = "tcp" | "udp" | "icmp";
export interface Verdict { open: boolean; path: string }

const CLOSED: Verdict = { open: false, path: "" };
const inRange = (port: number, r: PortRange) => port >= r.first && port <= r.last;
const addr = (text: string): Address => parseAddress(text)!;

/** A new connection from src to this machine's port. */
export function inbound(p: Policy, proto: Proto, src: string, port: number | undefined): Verdict {
  if (proto === "icmp") return p.icmp === "allow" ? { open: true, path: "icmp" } : CLOSED;
  for (const c of p.clients) {
    if (c.protocols.includes(proto) && inRange(port!, c.ports)) return { open: true, path: c.path };
  }
  for (const a of p.admin) {
    if (a.protocols.includes(proto) && inRange(port!, a.ports) && a.from.some((f) => prefixContains(f, addr(src)))) return { open: true, path: a.path };
  }
  return CLOSED;
}

/** A new connection from this machine to dst:port. */
export function outbound(p: Policy, proto: Proto, dst: string, port: number | undefined): Verdict {
  const o = p.outbound;
  if (o.any) return { open: true, path: "outbound" };
  if (proto === "icmp") return p.icmp === "allow" ? { open: true, path: "icmp" } : CLOSED;
  if (port === 53 && (o.dns === "any" || o.dns.some((d) => d.family === addr(dst).family && d.value === addr(dst).value))) {
    return { open: true, path: "outbound.dns" };
  }
  for (const t of o.trackers) {
    const to = t.to.length === 0 || t.to.some((n) => prefixContains(n, addr(dst)));
    if (t.protocols.includes(proto) && t.ports.some((r) => inRange(port!, r)) && to) return { open: true, path: t.path };
  }
  if (o.peers && port! >= 1024) return { open: true, path: "outbound.peers" };
  return CLOSED;
}

/** The forward that a WAN connection to port is sent to, if any. */
export function forwardFor(p: Policy, proto: Proto, port: number | undefined): Forward | undefined {
  if (proto === "icmp" || port === undefined) return undefined;
  return p.forward.find((f) => f.protocols.includes(proto as "tcp" | "udp") && inRange(port, f.ports));
}
