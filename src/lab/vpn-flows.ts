// The flows of a host behind a VPN: peers knock on the client's port through
// the tunnel (open) and through the physical interface (closed); every user
// that matters — each confined user, and root — opens connections out of each
// interface, and the kill switch must stop the confined ones outside the
// tunnel ("leak flows"), while leaving the LAN, the tunnel's endpoint and the
// unconfined users alone. Expectations come from the policy (vpn-oracle.ts).
import { formatAddress, type Family } from "../net/address.js";
import type { Policy } from "../policy/types.js";
import type { VpnSection } from "../policy/vpn.js";
import { adminFlows, edges, FAMILIES, label, OTHER_PORTS, outboundTargets, PROTOS, STATELESS, type FlowList } from "./flows.js";
import type { Proto } from "./oracle.js";
import type { AddressBook } from "./topology.js";
import { vpnInbound, vpnOutbound, type Way } from "./vpn-oracle.js";

const WAYS: Way[] = ["physical", "tunnel"];
const hostPort = (addr: string, port?: number) => (port === undefined ? addr : addr.includes(":") ? `[${addr}]:${port}` : `${addr}:${port}`);
const what = (proto: Proto, dst: string, port?: number) => (proto === "icmp" ? `ping ${dst}` : `${proto.toUpperCase()} ${hostPort(dst, port)}`);

/** Who opens connections: each confined user, and root, unconfined with scope users and confined with scope machine. */
function actors(vpn: VpnSection): { uid: number; name: string }[] {
  if (vpn.scope === "machine") return [{ uid: 0, name: "root (scope machine)" }];
  const users = vpn.users.map((u) => ({ uid: u.uid, name: u.uid === 0 ? "root" : `user ${u.name}` }));
  return users.some((u) => u.uid === 0) ? users : [...users, { uid: 0, name: "root" }];
}

export function vpnHostFlows(p: Policy, vpn: VpnSection, book: AddressBook, list: FlowList): void {
  const t = book.tunnel!;
  for (const f of FAMILIES) {
    inboundFlows(p, vpn, book, list, f);
    adminFlows(p, book, list, f, book.firewall[f], "host", undefined, (proto, src, port) => vpnInbound(p, vpn, proto, src, port, undefined, "physical"));
    for (const [proto, sport, port] of STATELESS) {
      const src = book.scanner[f];
      list.add({ what: `scanner from port ${sport} → ${label(proto, port)} via ${t.physical} (IPv${f})`, from: "scanner", bind: src, to: book.firewall[f], proto, port, sport, arriveAt: "host", via: t.physical },
        vpnInbound(p, vpn, proto, src, port, sport, "physical"));
    }
    for (const actor of actors(vpn)) {
      for (const way of WAYS) outboundFlows(p, vpn, book, list, f, actor, way);
    }
  }
}

function inboundFlows(p: Policy, vpn: VpnSection, book: AddressBook, list: FlowList, f: Family): void {
  const t = book.tunnel!;
  const peer = book.peer[f];
  for (const way of WAYS) {
    const via = way === "physical" ? t.physical : t.interface;
    const from = way === "physical" ? "internet" : "tunnel";
    const to = way === "physical" ? book.firewall[f] : t.firewall[f];
    const fromPeer = (text: string, proto: Proto, port?: number) => {
      const v = vpnInbound(p, vpn, proto, peer, port, undefined, way);
      const what = v.leak ? `leak: ${text} via ${via} (IPv${f}, the answer)` : `${text} via ${via} (IPv${f})`;
      list.add({ what, from, bind: peer, to, proto, port, arriveAt: "host", via, ...(v.leak && { leak: true }) }, v);
    };
    for (const c of p.clients) {
      const e = edges(c.ports);
      for (const proto of PROTOS) {
        for (const port of e.inside) fromPeer(`peer → client ${c.name}, ${label(proto, port)}`, proto, port);
        for (const port of e.outside) fromPeer(`peer → next to client ${c.name}, ${label(proto, port)}`, proto, port);
      }
    }
    for (const [proto, port] of OTHER_PORTS) fromPeer(`peer → ${label(proto, port)}`, proto, port);
    fromPeer("peer → ping", "icmp");
  }
}

function outboundFlows(p: Policy, vpn: VpnSection, book: AddressBook, list: FlowList, f: Family, actor: { uid: number; name: string }, way: Way): void {
  const t = book.tunnel!;
  const via = way === "physical" ? t.physical : t.interface;
  const bind = way === "physical" ? book.firewall[f] : t.firewall[f];
  const arriveAt = way === "physical" ? "internet" : "tunnel";
  const targets = outboundTargets(p, book, f)
    // Raw sockets (ping) are root's; an unprivileged user's probes are TCP and UDP.
    .filter((x) => x.proto !== "icmp" || actor.uid === 0);
  if (way === "physical") {
    for (const e of vpn.endpoints.filter((x) => x.address.family === f)) targets.push({ what: "the tunnel's endpoint", dst: formatAddress(e.address), proto: e.protocol, port: e.port });
    const lan = t.lan[f];
    if (lan) for (const proto of PROTOS) targets.push({ what: "the LAN", dst: lan, proto, port: 51413 });
  }
  const uid = actor.uid === 0 ? {} : { uid: actor.uid };
  for (const x of targets) {
    const v = vpnOutbound(p, vpn, actor.uid, x.proto, x.dst, x.port, way);
    list.add({ what: `${v.leak ? "leak: " : ""}${actor.name} ${what(x.proto, x.dst, x.port)} via ${via} (${x.what.replace(/ \((.+)\)$/, ", $1")})`, from: "host", bind, to: x.dst, proto: x.proto, port: x.port,
      arriveAt, via, user: actor.name, ...uid, ...(v.leak && { leak: true }) }, v);
  }
}
