// What `swarmgate init` reads off the machine as it is: the interface of the
// default route and its addresses, the other interfaces (a gateway's LAN),
// the DNS servers this machine asks, the SSH sessions that must survive the
// first apply, and the BitTorrent clients. Read only; each fact keeps where it
// came from, for the comment beside it in the policy.
import { readFileSync } from "node:fs";
import { detectClients, type ClientReport, type Problem } from "../clients/index.js";
import { parseAddress, formatAddress, type Address, type Family } from "../net/address.js";
import { sshSessions, type Session } from "../system/lockout.js";
import { run } from "../system/run.js";

export interface InterfaceAddress { address: Address; prefixLength: number }
export interface Interface { name: string; addresses: InterfaceAddress[] }

export interface Facts {
  /** The interface of the default route (IPv4 first, else IPv6). */
  uplink?: Interface;
  /** Every other interface with a global address: candidates for a gateway's LAN. */
  others: Interface[];
  dns: { servers: Address[]; source: string };
  sessions: Session[];
  clients: ClientReport[];
  problems: Problem[];
}

interface IpAddr { ifname: string; addr_info?: { family: string; local: string; prefixlen: number; scope: string }[] }

async function ipJson<T>(args: string[]): Promise<T | undefined> {
  const r = await run("ip", ["-j", ...args]).catch(() => undefined);
  if (!r || r.code !== 0) return undefined;
  try { return JSON.parse(r.stdout) as T; } catch { return undefined; }
}

export async function readInterfaces(): Promise<Interface[]> {
  const list = (await ipJson<IpAddr[]>(["addr", "show"])) ?? [];
  return list.filter((i) => i.ifname !== "lo").map((i) => ({
    name: i.ifname,
    addresses: (i.addr_info ?? []).flatMap((a) => {
      const address = a.scope === "global" ? parseAddress(a.local) : undefined;
      return address ? [{ address, prefixLength: a.prefixlen }] : [];
    }),
  })).filter((i) => i.addresses.length > 0);
}

export async function defaultRouteInterface(): Promise<string | undefined> {
  for (const family of ["-4", "-6"]) {
    const routes = await ipJson<{ dev?: string }[]>([family, "route", "show", "default"]);
    if (routes?.[0]?.dev) return routes[0].dev;
  }
  return undefined;
}

/** Nameservers of a resolv.conf text, loopback ones left out (a local stub forwards to the real ones). */
export function nameservers(text: string): Address[] {
  const out: Address[] = [];
  for (const line of text.split("\n")) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    const a = m ? parseAddress(m[1]!.replace(/%.*$/, "")) : undefined;
    if (a && !isLoopback(a) && !out.some((o) => o.family === a.family && o.value === a.value)) out.push(a);
  }
  return out;
}

const isLoopback = (a: Address): boolean => (a.family === 4 ? a.value >> 24n === 127n : a.value === 1n);

/** resolv.conf, or systemd-resolved's list of upstream servers when resolv.conf points at its local stub. */
export function dnsServers(): Facts["dns"] {
  for (const file of ["/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"]) {
    let text: string;
    try { text = readFileSync(file, "utf8"); } catch { continue; }
    const servers = nameservers(text);
    if (servers.length) return { servers, source: file };
  }
  return { servers: [], source: "" };
}

export async function readFacts(options: { root?: string; interface?: string }): Promise<Facts> {
  const [interfaces, route, sessions] = await Promise.all([readInterfaces(), defaultRouteInterface(), sshSessions()]);
  const name = options.interface ?? route;
  const detection = detectClients(options.root === undefined ? {} : { root: options.root });
  return {
    ...(name !== undefined && { uplink: interfaces.find((i) => i.name === name) ?? { name, addresses: [] } }),
    others: interfaces.filter((i) => i.name !== name),
    dns: dnsServers(),
    sessions,
    clients: detection.clients,
    problems: detection.problems,
  };
}

export const addressText = (a: InterfaceAddress): string => `${formatAddress(a.address)}/${a.prefixLength}`;
export const familyOf = (a: InterfaceAddress): Family => a.address.family;
