// What a vpn section means for a flow, evaluated from the Policy alone (as
// oracle.ts does for the rest): whose packets are confined, where confined
// packets may still go outside the tunnel, and so which flows are leaks that
// the kill switch must stop.
import { parseAddress, type Family } from "../net/address.js";
import { prefixContains, type Prefix } from "../net/prefix.js";
import type { Policy } from "../policy/types.js";
import type { VpnSection } from "../policy/vpn.js";
import { inbound, outbound, type Proto, type Verdict } from "./oracle.js";

/** Which way a flow leaves or arrives: the host's physical interface or the tunnel. */
export type Way = "physical" | "tunnel";

const FULL: Record<Family, number> = { 4: 32, 6: 128 };
const isHost = (n: Prefix) => n.length === FULL[n.family];
const CLOSED: Verdict = { open: false, path: "" };

/** The networks confined traffic may still reach outside the tunnel: vpn.lan, else the host's LAN, else its own networks. */
export function vpnLanOf(p: Policy, vpn: VpnSection): Prefix[] {
  if (vpn.lan.length) return vpn.lan;
  if (p.host?.lan.length) return p.host.lan;
  return (p.host?.addresses ?? []).map((x) => x.network).filter((n) => !isHost(n));
}

/** Whether what this uid sends is confined (root stands for every unconfined user). */
export function isConfined(vpn: VpnSection, uid: number): boolean {
  return vpn.scope === "machine" || vpn.users.some((u) => u.uid === uid);
}

const isEndpoint = (vpn: VpnSection, dst: string, proto: Proto, port: number | undefined) => {
  const d = parseAddress(dst)!;
  return vpn.endpoints.some((e) => e.address.family === d.family && e.address.value === d.value && e.protocol === proto && e.port === port);
};

/**
 * The kill switch alone, for a confined packet to dst:port: through the tunnel
 * it passes (unless it is IPv6 and the tunnel carries none); outside it, only
 * DNS to a server named one by one in the LAN list, the LAN itself, and the
 * tunnel's endpoints.
 */
export function killSwitchPasses(p: Policy, vpn: VpnSection, dst: string, proto: Proto, port: number | undefined, way: Way): boolean {
  const d = parseAddress(dst)!;
  if (d.family === 6 && !vpn.ipv6) return false;
  if (way === "tunnel") return true;
  const lan = vpnLanOf(p, vpn).filter((n) => prefixContains(n, d));
  if (proto !== "icmp" && port === 53) return lan.some(isHost);
  return lan.length > 0 || isEndpoint(vpn, dst, proto, port);
}

/** A new connection this machine opens as uid, leaving by way. */
export function vpnOutbound(p: Policy, vpn: VpnSection, uid: number, proto: Proto, dst: string, port: number | undefined, way: Way): Verdict & { leak: boolean } {
  if (isConfined(vpn, uid) && !killSwitchPasses(p, vpn, dst, proto, port, way)) return { open: false, path: vpn.path, leak: true };
  if (way === "physical" && isEndpoint(vpn, dst, proto, port)) return { open: true, path: `${vpn.path}.endpoints`, leak: false };
  return { ...outbound(p, proto, dst, port), leak: false };
}

/**
 * A new connection from src to this machine, arriving by way. Behind a VPN the
 * client's ports are open on the tunnel only; the rest of the input rules stay
 * on the physical interface (on every interface when the policy names none).
 * The answer is sent by the client — a confined user — or, with scope machine,
 * by a confined machine: the kill switch judges the reply too, and an answer
 * it must stop is a leak.
 */
export function vpnInbound(p: Policy, vpn: VpnSection, proto: Proto, src: string, port: number | undefined, sport: number | undefined, way: Way): Verdict & { leak?: true } {
  const client = proto !== "icmp" && p.clients.some((c) => c.protocols.includes(proto) && port! >= c.ports.first && port! <= c.ports.last);
  let v = inbound(p, proto, src, port);
  if (client && way === "physical") v = inbound({ ...p, clients: [] }, proto, src, port);
  if (!client && way === "tunnel" && proto !== "icmp" && p.host?.interface !== undefined) v = CLOSED;
  if (!v.open) return v;
  const replyConfined = vpn.scope === "machine" || client;
  if (replyConfined && !killSwitchPasses(p, vpn, src, proto, sport, way)) return { open: false, path: vpn.path, leak: true };
  return v;
}
