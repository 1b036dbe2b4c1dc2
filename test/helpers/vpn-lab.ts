// A torrent host behind a real WireGuard tunnel, in throwaway namespaces
// (all named sgv-<pid>-<n>-*, none linked to the root namespace, no route out):
//
//   host ──eth0── lan (router) ──── internet ──── vpn (WireGuard server, masquerade, miniupnpd)
//   192.168.50.2  192.168.50.1      100.128.78.2   100.128.77.1
//   2001:db8:50::2                  100.128.77.2
//                 (echo servers in lan and internet: TCP 7001/53, UDP 7002/53)
//     └── sgv…h 10.66.0.2 ═══ WireGuard over host → lan → internet → vpn ═══ sgv…s 10.66.0.1
//
// The router does no NAT, so the internet sees a leak with the host's own
// addresses; what went through the tunnel arrives from 100.128.77.1.
// Routing in the host (`routing`):
//   users    the confined uid's traffic is routed into the tunnel by policy routing
//            (`ip rule uidrange U-U lookup 100`, table 100: default dev sgv…h), everyone
//            else uses eth0. A broken tunnel (route gone) falls back to the main table:
//            the classic leak.
//   machine  wg-quick's full tunnel: `not fwmark 51820 lookup 100`, wireguard-go's own
//            socket marked 51820.
// Both keep `lookup main suppress_prefixlength 0` first, so the LAN stays on eth0.
// The tunnel carries IPv4 only (IPv6 then always takes eth0), or both (tunnel6).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run, runChecked } from "../../src/system/run.js";
import { ProbeAgent, type Target, type User } from "./vpn-agent.js";
import { deleteNamespacesSync, killInside, live, removeStaleLabs } from "./vpn-cleanup.js";

export { removeStaleLabs };
import { installCounters, readCounters, type Counters } from "./vpn-counters.js";
import { startMiniupnpd, stopChild, type Miniupnpd } from "./vpn-miniupnpd.js";
import { latestHandshake, makeKeys, readKey, startWireguardGo, wgName, wgSocket } from "./vpn-wireguard.js";

export const LAB = {
  lan4: "192.168.50.0/24", lan6: "2001:db8:50::/64",
  router4: "192.168.50.1", router6: "2001:db8:50::1",
  host4: "192.168.50.2", host6: "2001:db8:50::2",
  wan4: "100.128.78.1", wan6: "2001:db8:78::1", // the router's outside
  inetWan4: "100.128.78.2", inetWan6: "2001:db8:78::2",
  vpn4: "100.128.77.1", vpn6: "2001:db8:77::1", // the VPN server's outside = the endpoint
  inet4: "100.128.77.2", inet6: "2001:db8:77::2", // the echo servers
  tunServer: "10.66.0.1", tunHost: "10.66.0.2", tunNet: "10.66.0.0/24",
  tunServer6: "fd66::1", tunHost6: "fd66::2", tunNet6: "fd66::/64", // with tunnel6
  port: 51820, table: 100, fwmark: 51820,
  tcpPort: 7001, udpPort: 7002,
} as const;

export type Routing = "users" | "machine";
export type BreakWay = "down" | "killed" | "route" | "endpoint";
export const BREAK_WAYS: readonly BreakWay[] = ["down", "killed", "route", "endpoint"];
export type { Target, User };
export const NOBODY: User = { uid: 65534, gid: 65534 }; // Debian: nobody / nogroup

const PROBE = join(import.meta.dirname, "vpn-probe.mjs");
let counter = 0;

export interface LabOptions {
  routing?: Routing;
  /** The uid routed into the tunnel with routing "users". */
  confined?: User;
  /** Whether the tunnel carries IPv6 too (fd66::/64, masqueraded to the VPN server's outside address). */
  tunnel6?: boolean;
}

export class VpnLab {
  readonly ns: { host: string; lan: string; inet: string; vpn: string };
  /** WireGuard interface names, unique on the machine (wireguard-go's socket is machine-wide). */
  readonly wgHost: string;
  readonly wgServer: string;
  readonly dir = mkdtempSync(join(tmpdir(), "sgv-"));
  routing: Routing;
  readonly confined: User;
  readonly tunnel6: boolean;
  private readonly procs = new Map<string, ChildProcess>();
  private miniupnpd: Miniupnpd | undefined;
  private readonly agents = new Map<string, Promise<ProbeAgent>>();

  constructor(o: LabOptions) {
    const n = counter++;
    const base = `sgv-${process.pid}-${n}`;
    this.ns = { host: `${base}-host`, lan: `${base}-lan`, inet: `${base}-inet`, vpn: `${base}-vpn` };
    this.wgHost = wgName(process.pid, n, "h");
    this.wgServer = wgName(process.pid, n, "s");
    this.routing = o.routing ?? "users";
    this.confined = o.confined ?? NOBODY;
    this.tunnel6 = o.tunnel6 ?? false;
  }

  exec(ns: string, cmd: string, args: string[], input?: string) {
    return run("ip", ["netns", "exec", ns, cmd, ...args], { input, timeout: 20_000 });
  }

  execChecked(ns: string, cmd: string, args: string[], input?: string) {
    return runChecked("ip", ["netns", "exec", ns, cmd, ...args], { input, timeout: 20_000 });
  }

  /** `ip -n NS …` */
  ip(ns: string, ...args: string[]) {
    return runChecked("ip", ["-n", ns, ...args]);
  }

  /** A command in the host namespace as the given user (no supplementary groups), or as root. */
  execAs(who: User | "root", cmd: string, args: string[]) {
    if (who === "root") return this.exec(this.ns.host, cmd, args);
    return this.exec(this.ns.host, "setpriv", [`--reuid=${who.uid}`, `--regid=${who.gid}`, "--clear-groups", cmd, ...args]);
  }

  /** The prober of a user in a namespace (the host unless told), started on first use. */
  private async agent(who: User | "root", ns = this.ns.host): Promise<ProbeAgent> {
    const key = `${ns} ${who === "root" ? "root" : `${who.uid}:${who.gid}`}`;
    let agent = this.agents.get(key);
    if (agent === undefined) {
      agent = ProbeAgent.start(ns, who);
      this.agents.set(key, agent);
      this.procs.set(`agent ${key}`, (await agent).child);
    }
    return agent;
  }

  /** Tries the targets at once from `ns` (the host unless told) as `who`: which answered within ms. */
  async ask(who: User | "root", targets: readonly Target[], ms = 1000, ns = this.ns.host): Promise<Record<string, boolean>> {
    return (await this.agent(who, ns)).ask(ms, targets);
  }

  /**
   * TCP, UDP and DNS (UDP and TCP 53) to the internet's echo servers, over IPv4
   * and IPv6, from the host as `who`: which got an answer within ms.
   */
  async probe(who: User | "root", ms = 1000): Promise<Record<ProbeName, boolean>> {
    return (await this.ask(who, PROBES, ms)) as Record<ProbeName, boolean>;
  }

  /** One TCP connection from the host as `who` to ADDR:PORT (true when it echoed). */
  async connect(who: User | "root", addr: string, port: number, ms = 1200): Promise<boolean> {
    return (await this.ask(who, [{ name: "x", proto: "tcp", addr, port }], ms)).x === true;
  }

  /** Packets seen arriving in the internet namespace (prerouting). */
  internetCounters(): Promise<Counters> { return readCounters(this.ns.inet); }
  /** Packets the router forwarded from the LAN. */
  routerCounters(): Promise<Counters> { return readCounters(this.ns.lan); }

  async setup(): Promise<this> {
    await removeStaleLabs();
    live.add(this);
    try {
      await this.topology();
      await makeKeys(this.dir, ["host", "server"]);
      const sources = { host4: LAB.host4, host6: LAB.host6, vpn4: LAB.vpn4, vpn6: LAB.vpn6, endpointPort: LAB.port };
      await Promise.all([
        this.serve(this.ns.inet, "root", [LAB.tcpPort, 53], [LAB.udpPort, 53], [LAB.inet4, LAB.inet6]),
        this.serve(this.ns.lan, "root", [LAB.tcpPort, 53], [LAB.udpPort, 53], [LAB.router4, LAB.router6]),
        this.startTunnel("server").then(() => this.startTunnel("host")).then(() => this.hostRouting()),
        installCounters(this.ns.inet, sources, "prerouting"),
        installCounters(this.ns.lan, sources, "forward"),
      ]);
      await this.waitHandshake(0);
      await this.warmUp();
    } catch (e) {
      await this.destroy();
      throw e;
    }
    return this;
  }

  /**
   * Pings the internet's echo servers from the host, over each family, until they answer (at most 10
   * tries of 1 s): the first packets through the lab wait for neighbour discovery at every hop, and on
   * a loaded machine that outlasted a probe's 1 s — a test saw IPv6 "blocked" with no firewall at all.
   * A path that never answers is left to the tests, which say what they see.
   */
  private async warmUp(): Promise<void> {
    await Promise.all([LAB.inet4, LAB.inet6].map(async (addr) => {
      for (let i = 0; i < 10; i++) if ((await run("ip", ["netns", "exec", this.ns.host, "ping", "-n", "-q", "-c", "1", "-W", "1", addr])).code === 0) return;
    }));
  }

  /** `ip -n NS -batch -`: one process for many commands (each `ip` costs ~50 ms on a loaded machine). */
  private batch(ns: string, lines: string[]) {
    return runChecked("ip", ["-n", ns, "-batch", "-"], { input: `${lines.join("\n")}\n` });
  }

  private async topology(): Promise<void> {
    const { host, lan, inet, vpn } = this.ns;
    await Promise.all([host, lan, inet, vpn].map((n) => runChecked("ip", ["netns", "add", n])));
    // veth pairs between our own namespaces only: [ns, name, address4, address6] each side
    const links: [string, string, string, string, string, string, string, string][] = [
      [host, "eth0", `${LAB.host4}/24`, `${LAB.host6}/64`, lan, "sgvlan", `${LAB.router4}/24`, `${LAB.router6}/64`],
      [lan, "sgvwan", `${LAB.wan4}/24`, `${LAB.wan6}/64`, inet, "sgvrtr", `${LAB.inetWan4}/24`, `${LAB.inetWan6}/64`],
      [vpn, "sgvout", `${LAB.vpn4}/24`, `${LAB.vpn6}/64`, inet, "sgvvpn", `${LAB.inet4}/24`, `${LAB.inet6}/64`],
    ];
    const cmds = new Map<string, string[]>([host, lan, inet, vpn].map((n) => [n, ["link set lo up"]]));
    for (const [a, ifa, , , b, ifb] of links) cmds.get(a)!.push(`link add ${ifa} type veth peer name ${ifb} netns ${b}`);
    await Promise.all([...cmds].map(([n, lines]) => this.batch(n, lines)));
    cmds.forEach((lines) => lines.splice(0));
    for (const [a, ifa, a4, a6, b, ifb, b4, b6] of links) {
      for (const [n, dev, v4, v6] of [[a, ifa, a4, a6], [b, ifb, b4, b6]] as const) {
        cmds.get(n)!.push(`addr add ${v4} dev ${dev}`, `addr add ${v6} dev ${dev} nodad`, `link set ${dev} up`);
      }
    }
    for (const [n, v4, v6] of [[host, LAB.router4, LAB.router6], [lan, LAB.inetWan4, LAB.inetWan6], [vpn, LAB.inet4, LAB.inet6]]) {
      cmds.get(n!)!.push(`route add default via ${v4}`, `route add default via ${v6}`);
    }
    cmds.get(inet)!.push(`route add ${LAB.lan4} via ${LAB.wan4}`, `route add ${LAB.lan6} via ${LAB.wan6}`);
    const forwarding = ["-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"];
    await Promise.all([
      ...[...cmds].map(([n, lines]) => this.batch(n, lines)),
      ...[lan, inet, vpn].map((n) => this.execChecked(n, "sysctl", forwarding)),
      // replies to the confined user arrive on the tunnel from addresses root would reach via eth0
      this.execChecked(host, "sysctl", ["-qw", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"]),
    ]);
    await this.execChecked(vpn, "nft", ["-f", "-"], `table inet sgv_vpn {
  chain post {
    type nat hook postrouting priority 100; policy accept;
    ip saddr ${LAB.tunNet} oifname "sgvout" masquerade
    ip6 saddr ${LAB.tunNet6} oifname "sgvout" masquerade
  }
}
`);
  }

  /** Echo servers in `ns` as `who`: TCP on every address, UDP on each of udpAddrs (see vpn-probe.mjs). */
  async serve(ns: string, who: User | "root", tcpPorts: number[], udpPorts: number[] = [], udpAddrs: string[] = []): Promise<void> {
    const as = who === "root" ? [] : ["setpriv", `--reuid=${who.uid}`, `--regid=${who.gid}`, "--clear-groups"];
    const child = spawn("ip", ["netns", "exec", ns, ...as, process.execPath, PROBE, "serve", tcpPorts.join(","), udpPorts.join(","), udpAddrs.join(",")], { stdio: ["ignore", "pipe", "pipe"] });
    this.procs.set(`server ${ns} ${tcpPorts.join(",")}`, child);
    await new Promise<void>((resolve, reject) => {
      let out = "";
      const t = setTimeout(() => reject(new Error(`echo server did not start: ${out}`)), 10_000);
      const onData = (d: Buffer) => { out += d; if (out.includes("ready")) { clearTimeout(t); resolve(); } };
      child.stdout!.on("data", onData);
      child.stderr!.on("data", onData);
      child.once("exit", () => { clearTimeout(t); reject(new Error(`echo server exited: ${out}`)); });
    });
  }

  /** Starts wireguard-go (foreground) for one side and configures it with wg. */
  async startTunnel(side: "host" | "server"): Promise<void> {
    const [ns, ifname, other] = side === "host" ? [this.ns.host, this.wgHost, "server"] : [this.ns.vpn, this.wgServer, "host"];
    this.procs.set(`wg-${side}`, await startWireguardGo(ns, ifname));
    const key = (s: string) => join(this.dir, `${s}.key`);
    const peer = readKey(`${key(other)}.pub`);
    const v6 = this.tunnel6;
    const args = side === "host"
      ? ["fwmark", String(LAB.fwmark), "peer", peer, "allowed-ips", v6 ? "0.0.0.0/0,::/0" : "0.0.0.0/0", "endpoint", `${LAB.vpn4}:${LAB.port}`, "persistent-keepalive", "1"]
      : ["listen-port", String(LAB.port), "peer", peer, "allowed-ips", v6 ? `${LAB.tunHost}/32,${LAB.tunHost6}/128` : `${LAB.tunHost}/32`];
    await this.execChecked(ns, "wg", ["set", ifname, "private-key", key(side), ...args]);
    await this.batch(ns, [
      `addr add ${side === "host" ? LAB.tunHost : LAB.tunServer}/24 dev ${ifname}`,
      ...(v6 ? [`addr add ${side === "host" ? LAB.tunHost6 : LAB.tunServer6}/64 dev ${ifname} nodad`] : []),
      `link set ${ifname} up`,
    ]);
  }

  /** The rule that sends traffic into the tunnel's table. */
  private tunnelRule(op: "add" | "del"): string {
    const u = this.confined.uid;
    if (op === "del") return "rule del pref 100";
    return this.routing === "users" ? `rule add pref 100 uidrange ${u}-${u} lookup ${LAB.table}` : `rule add pref 100 not fwmark ${LAB.fwmark} lookup ${LAB.table}`;
  }

  /** The same lines for IPv4 and, when the tunnel carries it, IPv6 (`ip -batch` lines take no -6). */
  private async bothFamilies(lines: string[]): Promise<void> {
    await this.batch(this.ns.host, lines);
    if (this.tunnel6) await runChecked("ip", ["-6", "-n", this.ns.host, "-batch", "-"], { input: `${lines.join("\n")}\n` });
  }

  private async hostRouting(): Promise<void> {
    await this.bothFamilies([
      "rule add pref 90 lookup main suppress_prefixlength 0",
      this.tunnelRule("add"),
      `route add default dev ${this.wgHost} table ${LAB.table}`,
    ]);
  }

  /** Switches the host between routing the confined user and routing everything into the tunnel. */
  async setRouting(routing: Routing): Promise<void> {
    if (routing === this.routing) return;
    this.routing = routing;
    await this.bothFamilies([this.tunnelRule("del"), this.tunnelRule("add")]);
  }

  private tunnelRoute(op: "add" | "del") {
    return this.bothFamilies([`route ${op} default dev ${this.wgHost} table ${LAB.table}`]);
  }

  /** Seconds since the epoch of the host peer's latest handshake (0: none). */
  latestHandshake(): Promise<number> {
    return latestHandshake(this.ns.host, this.wgHost);
  }

  /** Waits for a handshake newer than `since` (seconds since the epoch). */
  async waitHandshake(since: number, ms = 8000): Promise<void> {
    const until = Date.now() + ms;
    while ((await this.latestHandshake()) <= since) {
      if (Date.now() > until) throw new Error(`no WireGuard handshake on ${this.wgHost} within ${ms} ms`);
      await sleep(50);
    }
  }

  /** Breaks the tunnel one way; restore() with the same way mends it. */
  async break(way: BreakWay): Promise<void> {
    if (way === "down") await this.ip(this.ns.host, "link", "set", this.wgHost, "down");
    else if (way === "killed") await stopChild(this.procs.get("wg-host"), "SIGKILL");
    else if (way === "route") await this.tunnelRoute("del");
    else await this.execChecked(this.ns.lan, "nft", ["-f", "-"], `table inet sgv_break {
  chain drop_endpoint { type filter hook forward priority -10; policy accept; ip daddr ${LAB.vpn4} udp dport ${LAB.port} drop; }
}
`);
  }

  async restore(way: BreakWay): Promise<void> {
    const since = Math.floor(Date.now() / 1000) - 1;
    if (way === "down") {
      // wireguard-go keeps its session across down/up: no new handshake to wait for
      await this.ip(this.ns.host, "link", "set", this.wgHost, "up");
      // IPv6 addresses go with the link (keep_addr_on_down is 0); IPv4 ones stay
      if (this.tunnel6) await this.ip(this.ns.host, "addr", "replace", `${LAB.tunHost6}/64`, "dev", this.wgHost, "nodad");
      await this.tunnelRoute("add");
    } else if (way === "killed") {
      await this.startTunnel("host");
      await this.tunnelRoute("add");
      await this.waitHandshake(since);
    } else if (way === "route") {
      await this.tunnelRoute("add");
    } else {
      await this.execChecked(this.ns.lan, "nft", ["delete", "table", "inet", "sgv_break"]);
    }
  }

  /** Debian's miniupnpd on the VPN server, NAT-PMP/PCP on the tunnel address. */
  async startMiniupnpd(): Promise<void> {
    this.miniupnpd = await startMiniupnpd({ ns: this.ns.vpn, dir: this.dir, inside: this.wgServer, outside: "sgvout", clients: LAB.tunNet });
  }

  /** What destroy() does, synchronously, for a process that is exiting. */
  destroySync(): void {
    for (const child of [this.miniupnpd?.child, ...this.procs.values()]) {
      if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
    deleteNamespacesSync(Object.values(this.ns));
    for (const ifname of [this.wgHost, this.wgServer]) rmSync(wgSocket(ifname), { force: true });
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Debian's natpmpc as root in the host, asking the VPN server through the tunnel. */
  natpmpc(args: string[]) {
    return this.exec(this.ns.host, "natpmpc", ["-g", LAB.tunServer, ...args]);
  }

  async destroy(): Promise<void> {
    live.delete(this);
    await stopChild(this.miniupnpd?.child, "SIGTERM");
    for (const child of this.procs.values()) await stopChild(child, "SIGKILL");
    this.procs.clear();
    this.agents.clear();
    for (const n of Object.values(this.ns)) {
      await killInside(n);
      await run("ip", ["netns", "del", n]);
    }
    for (const ifname of [this.wgHost, this.wgServer]) rmSync(wgSocket(ifname), { force: true });
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export type ProbeName = "tcp4" | "udp4" | "dns4" | "dnstcp4" | "tcp6" | "udp6" | "dns6";
const PROBES: Target[] = [
  { name: "tcp4", proto: "tcp", addr: LAB.inet4, port: LAB.tcpPort },
  { name: "udp4", proto: "udp", addr: LAB.inet4, port: LAB.udpPort },
  { name: "dns4", proto: "udp", addr: LAB.inet4, port: 53 },
  { name: "dnstcp4", proto: "tcp", addr: LAB.inet4, port: 53 },
  { name: "tcp6", proto: "tcp", addr: LAB.inet6, port: LAB.tcpPort },
  { name: "udp6", proto: "udp", addr: LAB.inet6, port: LAB.udpPort },
  { name: "dns6", proto: "udp", addr: LAB.inet6, port: 53 },
];

/** Creates and sets up a lab; call destroy() in a finally/afterAll. */
export function createVpnLab(o: LabOptions = {}): Promise<VpnLab> {
  return new VpnLab(o).setup();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
