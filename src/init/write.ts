// A starter policy from the facts of the machine (facts.ts): every value
// carries a comment saying where it came from, and what could not be used is
// said in a comment too, never silently dropped. Pure: the same facts always
// give the same text.
import { userError } from "../errors.js";
import { formatAddress, type Address } from "../net/address.js";
import { formatPrefix, type Prefix } from "../net/prefix.js";
import type { ClientReport } from "../clients/index.js";
import { FIXED_PORT_SETTING } from "../policy/auto-ports.js";
import { addressText, type Facts, type Interface } from "./facts.js";

const NAMES = { qbittorrent: "qBittorrent", transmission: "Transmission", deluge: "Deluge", rtorrent: "rTorrent", aria2: "aria2" } as const;

export interface InitOptions { gateway?: boolean; lan?: string; date?: string }

/** A YAML line with its comment aligned at column 44. */
const line = (text: string, comment?: string): string => (comment ? `${text.padEnd(43)} # ${comment.replace(/\n/g, " ")}` : text);
/** Values in flow lists: IPv6 ones quoted (a colon would end a plain scalar in some places). */
const q = (v: string): string => (v.includes(":") ? `"${v}"` : v);
const list = (vs: readonly string[]): string => `[${vs.map(q).join(", ")}]`;

const network = (a: { address: Address; prefixLength: number }): Prefix => {
  const bits = a.address.family === 4 ? 32 : 128;
  const mask = ((1n << BigInt(a.prefixLength)) - 1n) << BigInt(bits - a.prefixLength);
  return { family: a.address.family, network: a.address.value & mask, length: a.prefixLength };
};
const isPrivate4 = (a: Address): boolean => {
  const v = Number(a.value);
  return v >>> 24 === 10 || (v >>> 20) === 0xac1 || (v >>> 16) === 0xc0a8;
};
/** The networks an interface is on (not a /32 or /128 of its own). */
const lanOf = (i: Interface): Prefix[] => i.addresses.filter((a) => a.prefixLength < (a.address.family === 4 ? 32 : 128)).map(network);

/** A name for a client entry that is valid and unique: its kind, and its user when several share it. */
function clientName(c: ClientReport, all: readonly ClientReport[], used: Set<string>): string {
  let name = all.filter((o) => o.kind === c.kind).length > 1 && c.user ? `${c.kind}-${c.user}` : c.kind;
  name = name.replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 28);
  for (let n = 2; used.has(name); n++) name = `${name.replace(/-\d+$/, "")}-${n}`;
  used.add(name);
  return name;
}

/** The port a client uses now: the one it listens on, else its configured one unless that changes at each start. */
function portOf(c: ClientReport): { ports: string; how: string } | undefined {
  const peer = [...new Set(c.listening.filter((l) => l.protocol === "tcp" && l.port >= c.ports.from && l.port <= c.ports.to).map((l) => l.port))];
  if (peer.length === 1) return { ports: String(peer[0]), how: "listening now" };
  if (c.random) return undefined;
  return { ports: c.ports.from === c.ports.to ? String(c.ports.from) : `"${c.ports.from}-${c.ports.to}"`, how: c.listening.length ? "from its config" : "from its config (not running now)" };
}

export function starterPolicy(facts: Facts, options: InitOptions = {}): string {
  const up = facts.uplink;
  if (!up) throw userError("INIT_NO_ROUTE", "this machine has no default route, so the interface peers arrive on is unknown: give it with --interface");
  const out: string[] = [
    `# Written by swarmgate init${options.date ? ` on ${options.date}` : ""} from this machine as it was then.`,
    "# Read it, then: swarmgate check FILE; sudo swarmgate rehearse FILE; sudo swarmgate apply FILE --confirm 60",
    "version: 1",
  ];
  const lan = lanOf(up);
  let lanForAdmin = lan;
  if (options.gateway) {
    const candidates = facts.others.filter((i) => i.addresses.some((a) => a.address.family === 4 && isPrivate4(a.address) && a.prefixLength < 32));
    const inside = options.lan ? facts.others.find((i) => i.name === options.lan) : candidates.length === 1 ? candidates[0] : undefined;
    if (!inside) {
      throw userError("INIT_NO_LAN", options.lan
        ? `--lan ${options.lan}: no such interface with an address here (${facts.others.map((i) => i.name).join(", ") || "none"})`
        : `--gateway needs the LAN interface: ${candidates.length ? `several have a private IPv4 network (${candidates.map((i) => i.name).join(", ")}); choose one with --lan` : "no interface other than the uplink has a private IPv4 network"}`);
    }
    const v4 = inside.addresses.find((a) => a.address.family === 4 && a.prefixLength < 32)!;
    const v6 = inside.addresses.find((a) => a.address.family === 6 && a.prefixLength < 128);
    lanForAdmin = lanOf(inside);
    out.push("gateway:",
      line(`  wan: ${up.name}`, "the default route's interface"),
      line(`  lan: ${inside.name}`, options.lan ? "--lan" : "the interface with a private IPv4 network"),
      line(`  lan_network: ${formatPrefix(network(v4))}`, `${inside.name}'s address ${addressText(v4)}`),
      ...(v6 ? [line(`  lan_network6: ${q(formatPrefix(network(v6)))}`, `${inside.name}'s address ${addressText(v6)}`)] : []),
      line("  masquerade: true", "the LAN's IPv4 connections leave with the WAN address"),
      "# forward:                                  # each LAN host's own peer ports, e.g.",
      "#   - {host: 192.168.1.3, ports: 6890-6899}",
    );
  } else {
    if (up.addresses.length === 0) throw userError("INIT_NO_ADDRESS", `${up.name} has no global address: give another interface with --interface`);
    out.push("host:",
      line(`  interface: ${up.name}`, "the default route's interface"),
      line(`  addresses: ${list(up.addresses.map(addressText))}`, `${up.name}'s global addresses (ip addr); the prefix length gives the LAN`),
    );
  }

  // Clients: the port in use, LSD as configured; one port never in two entries.
  const used = new Set<string>();
  const taken: [number, number][] = [];
  const entries: string[] = [];
  const notes: string[] = [];
  const webuis: { name: string; port: number; address: string; kind: string }[] = [];
  for (const c of facts.clients) {
    const where = `${NAMES[c.kind]}, ${c.config ?? "no config file"}${c.user ? `, user ${c.user}` : ""}`;
    const port = portOf(c);
    if (!port) { notes.push(`# ${where}: picks a random port at each start and is not running, so it is left out. Fix its port (${FIXED_PORT_SETTING[c.kind]}) and run init again, or add it with ports: auto and run swarmgate follow.`); continue; }
    const [from, to] = port.ports.replace(/"/g, "").split("-").map(Number) as [number, number?];
    const range: [number, number] = [from, to ?? from];
    const clash = taken.find(([a, b]) => range[0] <= b && a <= range[1]);
    if (clash) { notes.push(`# ${where}: port ${port.ports} is already the port of another client above; left out.`); continue; }
    taken.push(range);
    const name = clientName(c, facts.clients, used);
    entries.push(line(`  - name: ${name}`, where),
      line(`    ports: ${port.ports}`, `${port.how}${c.random ? `; it picks a new port at each start (${FIXED_PORT_SETTING[c.kind]}), or use ports: auto with swarmgate follow` : ""}`));
    const protocols = c.protocols.length === 1 ? c.protocols : undefined;
    if (protocols) entries.push(line(`    protocols: ${list(protocols)}`, protocols[0] === "tcp" ? "uTP is off in its config" : "TCP is off in its config"));
    if (c.lsd) entries.push(line("    lsd: true", "Local Service Discovery is on in its config"));
    if (c.webui) webuis.push({ name, ...c.webui, kind: NAMES[c.kind] });
  }
  if (entries.length) out.push("clients:", ...entries);
  else out.push("# clients: none found (swarmgate clients shows where it looked); add one:", "#   - {name: qbittorrent, ports: 6881}");
  out.push(...notes);

  out.push("outbound:",
    line("  peers: true", "TCP and UDP to any port 1024-65535"),
    line("  trackers: [80, 443, 6969]", "HTTP, HTTPS and UDP trackers"),
    facts.dns.servers.length
      ? line(`  dns: ${list(facts.dns.servers.map(formatAddress))}`, `the nameservers of ${facts.dns.source}`)
      : line("  dns: any", "no nameserver found in /etc/resolv.conf: DNS to any address"));

  // Admin: the SSH sessions open now (so the first apply keeps them), and each Web UI to the LAN only.
  const admin: string[] = [];
  const bySshPort = new Map<number, Set<string>>();
  for (const s of facts.sessions) {
    const set = bySshPort.get(s.serverPort) ?? new Set<string>();
    set.add(formatAddress(s.client));
    bySshPort.set(s.serverPort, set);
  }
  for (const [port, from] of bySshPort) {
    admin.push(line(`  - name: ssh${port === 22 ? "" : `-${port}`}`, "the SSH sessions open while init ran, so that applying this keeps them"),
      `    port: ${port}`, line(`    from: ${list([...from])}`, "their sources"));
  }
  if (bySshPort.size === 0) notes.push("# No SSH session was open: add an admin entry for SSH before applying this over the network.");
  for (const w of webuis) {
    if (/^(127\.|::1$|localhost$)/.test(w.address)) { admin.push(`  # ${w.kind}'s Web UI/RPC listens on ${w.address} only: nothing to open`); continue; }
    if (taken.some(([a, b]) => w.port >= a && w.port <= b)) continue;
    if (lanForAdmin.length === 0) { admin.push(`  # ${w.kind}'s Web UI/RPC on port ${w.port}: this machine has no LAN prefix to open it to; add its sources`); continue; }
    admin.push(line(`  - name: ${w.name}-webui`, `${w.kind}'s Web UI/RPC port from its config`), `    port: ${w.port}`,
      line(`    from: ${list(lanForAdmin.map(formatPrefix))}`, "the LAN only"));
  }
  if (admin.some((l) => l.startsWith("  - "))) out.push("admin:", ...admin);
  else out.push(...admin.map((l) => `#${l.slice(1)}`));
  if (bySshPort.size === 0) out.push(notes.pop()!);
  out.push(line("icmp: allow", "echo requests rate-limited; ICMP errors and neighbour discovery always"), "log:", '  prefix: "swarmgate: "', "  rate: 10/minute");
  return `${out.join("\n")}\n`;
}
