// Checks that need the whole policy: names, ports and forwards that contradict
// each other. Every finding points at the later of the two places involved.
import { formatAddress } from "../net/address.js";
import { formatPortRange, type PortRange } from "../net/port.js";
import { formatPrefix, prefixContains } from "../net/prefix.js";
import type { Reader } from "./reader.js";
import type { Policy, Protocol } from "./types.js";

type Draft = Omit<Policy, "source">;

export function checkPolicy(r: Reader, p: Draft): void {
  uniqueNames(r, p.clients, "client");
  uniqueNames(r, p.admin, "admin service");
  portConflicts(r, p);
  forwards(r, p);
}

function uniqueNames(r: Reader, items: { name: string; path: string }[], what: string): void {
  const seen = new Map<string, string>();
  for (const item of items) {
    const first = seen.get(item.name);
    if (first !== undefined) {
      r.error("POLICY_DUPLICATE_NAME", `${what} name "${item.name}" is already used by ${first}`, r.positions.get(`${item.path}.name`));
    } else seen.set(item.name, item.path);
  }
}

interface Opening { path: string; what: string; ports: PortRange; protocols: Protocol[]; portKey: string }

const common = (a: Protocol[], b: Protocol[]): Protocol[] => a.filter((p) => b.includes(p));

/**
 * Pairs of items whose port ranges overlap on a shared protocol, found by a
 * sweep over the ranges sorted by start (n log n: policies with thousands of
 * admin entries stay fast). Each pair is (earlier in the file, later).
 */
function overlaps<T extends { ports: PortRange; protocols: Protocol[] }>(items: T[]): [T, T, Protocol][] {
  const found = new Map<T, [T, T, Protocol]>();
  for (const proto of ["tcp", "udp"] as const) {
    const order = items.map((item, index) => ({ item, index })).filter((x) => x.item.protocols.includes(proto))
      .sort((a, b) => a.item.ports.first - b.item.ports.first || a.index - b.index);
    let widest: { item: T; index: number } | undefined;
    for (const x of order) {
      if (widest && widest.item.ports.last >= x.item.ports.first) {
        const [earlier, later] = widest.index < x.index ? [widest.item, x.item] : [x.item, widest.item];
        if (!found.has(later)) found.set(later, [earlier, later, proto]);
      }
      if (!widest || x.item.ports.last > widest.item.ports.last) widest = x;
    }
  }
  return [...found.values()].sort((a, b) => items.indexOf(a[1]) - items.indexOf(b[1]));
}

/** A port can belong to one client or one admin service, not two. */
function portConflicts(r: Reader, p: Draft): void {
  const openings: Opening[] = [
    ...p.clients.map((c) => ({ path: c.path, what: `client "${c.name}"`, ports: c.ports, protocols: c.protocols, portKey: "ports" })),
    ...p.admin.map((a) => ({ path: a.path, what: `admin service "${a.name}"`, ports: a.ports, protocols: a.protocols, portKey: "port" })),
  ];
  for (const [earlier, later] of overlaps(openings)) {
    const shared = common(earlier.protocols, later.protocols);
    r.error(
      "POLICY_PORT_CONFLICT",
      `${later.what} port ${formatPortRange(later.ports)} (${shared.join("/")}) overlaps ${earlier.what} port ${formatPortRange(earlier.ports)}`,
      r.positions.get(`${later.path}.${later.portKey}`),
    );
  }
}

function forwards(r: Reader, p: Draft): void {
  const gw = p.gateway;
  p.forward.forEach((f) => {
    if (gw && !prefixContains(gw.lanNetwork, f.host)) {
      r.error("POLICY_FORWARD_OUTSIDE_LAN",
        `forward host ${formatAddress(f.host)} is outside the LAN network ${formatPrefix(gw.lanNetwork)}`,
        r.positions.get(`${f.path}.host`));
    }
    if (gw?.lanNetwork6 && f.host6 && !prefixContains(gw.lanNetwork6, f.host6)) {
      r.error("POLICY_FORWARD_OUTSIDE_LAN",
        `forward host6 ${formatAddress(f.host6)} is outside the LAN network ${formatPrefix(gw.lanNetwork6)}`,
        r.positions.get(`${f.path}.host6`));
    }
  });
  for (const [earlier, later] of overlaps(p.forward)) {
    const shared = common(earlier.protocols, later.protocols);
    r.error("POLICY_FORWARD_OVERLAP",
      `forwarded ports ${formatPortRange(later.ports)} (${shared.join("/")}) overlap ports ${formatPortRange(earlier.ports)} already forwarded to ${formatAddress(earlier.host)} (${earlier.path}); each LAN host needs its own range`,
      r.positions.get(`${later.path}.ports`));
  }
}
