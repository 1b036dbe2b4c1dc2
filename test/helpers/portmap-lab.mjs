// A throwaway NAT-PMP/PCP world for the real-miniupnpd tests and the bench:
// three network namespaces (all named sgp-*), none linked to the root one and
// none with a route out:
//
//   client 192.168.77.2 ── 192.168.77.1 gateway 100.128.77.1 ── 100.128.77.2 peer
//                          (miniupnpd, listening inside)
//
// miniupnpd refuses a private external address, hence 100.128.77.0/24 (public
// range, not 100.64/10). Its nftables build adds rules to chains that must
// already exist in `table inet filter`; they are created here with the hooks
// that jump to them. Plain JS so that bench/portmap.mjs can share it.

import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";

export const INSIDE = "192.168.77.1";
export const CLIENT = "192.168.77.2";
export const EXTERNAL = "100.128.77.1";
export const PEER = "100.128.77.2";
const DRIVER = join(dirname(fileURLToPath(import.meta.url)), "portmap-driver.mjs");

export function run(cmd, args, input) {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin.end(input);
  });
}

async function must(cmd, args, input) {
  const r = await run(cmd, args, input);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr.trim()}`);
  return r.stdout;
}

const CHAINS = `table inet filter {
  chain miniupnpd { }
  chain prerouting_miniupnpd { }
  chain postrouting_miniupnpd { }
  chain forward { type filter hook forward priority 0; policy accept; jump miniupnpd; }
  chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }
  chain postrouting { type nat hook postrouting priority 100; policy accept; jump postrouting_miniupnpd; }
}
`;

/** Creates the three namespaces; call destroy() in a finally/afterAll. */
export async function createWorld(tag) {
  const ns = { gw: `sgp-${tag}-gw`, cl: `sgp-${tag}-cl`, out: `sgp-${tag}-out` };
  const dir = mkdtempSync(join(tmpdir(), "sgp-"));
  const world = new World(ns, dir);
  try {
    for (const n of Object.values(ns)) {
      await run("ip", ["netns", "del", n]); // a leftover of a killed run
      await must("ip", ["netns", "add", n]);
      await must("ip", ["-n", n, "link", "set", "lo", "up"]);
    }
    await must("ip", ["-n", ns.gw, "link", "add", "sgpin", "type", "veth", "peer", "name", "sgpcl", "netns", ns.cl]);
    await must("ip", ["-n", ns.gw, "link", "add", "sgpout", "type", "veth", "peer", "name", "sgppeer", "netns", ns.out]);
    const addr = [
      [ns.gw, "sgpin", `${INSIDE}/24`],
      [ns.cl, "sgpcl", `${CLIENT}/24`],
      [ns.gw, "sgpout", `${EXTERNAL}/24`],
      [ns.out, "sgppeer", `${PEER}/24`],
    ];
    for (const [n, dev, a] of addr) {
      await must("ip", ["-n", n, "addr", "add", a, "dev", dev]);
      await must("ip", ["-n", n, "link", "set", dev, "up"]);
    }
    await must("ip", ["-n", ns.cl, "route", "add", "default", "via", INSIDE]);
    await must("ip", ["netns", "exec", ns.gw, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    await must("ip", ["netns", "exec", ns.gw, "nft", "-f", "-"], CHAINS);
  } catch (err) {
    await world.destroy();
    throw err;
  }
  return world;
}

class World {
  constructor(ns, dir) {
    this.ns = ns;
    this.dir = dir;
    this.daemon = undefined;
    this.log = "";
    this.drivers = new Set();
  }

  /** Writes the config and starts miniupnpd in the foreground (-d) in the gateway namespace. */
  async startMiniupnpd(extra = []) {
    const conf = join(this.dir, "miniupnpd.conf");
    writeFileSync(
      conf,
      [
        "ext_ifname=sgpout",
        "listening_ip=sgpin",
        "enable_natpmp=yes", // NAT-PMP and PCP both (one socket, told apart by the version byte)
        "enable_upnp=no",
        "secure_mode=yes",
        "system_uptime=no", // epoch counts from daemon start
        `lease_file=${join(this.dir, "leases")}`,
        "allow 1024-65535 192.168.77.0/24 1024-65535",
        "deny 0-65535 0.0.0.0/0 0-65535",
        ...extra,
        "",
      ].join("\n"),
    );
    const child = spawn("ip", ["netns", "exec", this.ns.gw, "miniupnpd", "-f", conf, "-d", "-P", join(this.dir, "pid")], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.daemon = child;
    const ready = new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`miniupnpd did not start:\n${this.log}`)), 5000);
      const onData = (d) => {
        this.log += d;
        if (this.log.includes("Listening for NAT-PMP/PCP traffic")) {
          clearTimeout(t);
          resolve();
        }
      };
      child.stdout.on("data", onData);
      child.stderr.on("data", onData);
      child.once("exit", () => reject(new Error(`miniupnpd exited:\n${this.log}`)));
    });
    await ready;
    return child.pid;
  }

  /** SIGTERM and wait for the exit (miniupnpd keeps its rules and lease file). */
  async stopMiniupnpd() {
    const child = this.daemon;
    this.daemon = undefined;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
    if (child.exitCode === null) child.kill("SIGKILL");
  }

  /** Runs Debian's natpmpc in the client namespace and reads what it printed. */
  async natpmpc(args) {
    const r = await run("ip", ["netns", "exec", this.ns.cl, "natpmpc", "-g", INSIDE, ...args]);
    const m = /Mapped public port (\d+) protocol (\w+) to local port (\d+) liftime (\d+)/.exec(r.stdout);
    return {
      code: r.code,
      stdout: r.stdout,
      externalAddress: /Public IP address : (\S+)/.exec(r.stdout)?.[1],
      epoch: Number(/epoch = (\d+)/.exec(r.stdout)?.[1]),
      mapping: m && { externalPort: Number(m[1]), protocol: m[2], internalPort: Number(m[3]), lifetime: Number(m[4]) },
    };
  }

  async nftJson(ns = this.ns.gw) {
    return JSON.parse(await must("ip", ["netns", "exec", ns, "nft", "-j", "list", "ruleset"])).nftables;
  }

  /** The DNATs miniupnpd put in prerouting_miniupnpd: [{protocol, port, to, toPort}]. */
  async dnats() {
    const out = [];
    for (const item of await this.nftJson()) {
      const rule = item.rule;
      if (rule === undefined || rule.chain !== "prerouting_miniupnpd") continue;
      let protocol;
      let port;
      let to;
      let toPort;
      for (const e of rule.expr) {
        const left = e.match?.left?.payload;
        if (left?.base === "nh" && left.offset === 72 && left.len === 8) protocol = { 17: "udp", 6: "tcp" }[e.match.right];
        if (left?.field === "dport") port = e.match.right;
        if (e.dnat) [to, toPort] = [e.dnat.addr, e.dnat.port];
      }
      out.push({ protocol, port, to, toPort });
    }
    return out;
  }

  /** Counts requests reaching the gateway's port 5351 and, when `drop`, drops its replies (own table). */
  async setDrop(drop) {
    await run("ip", ["netns", "exec", this.ns.gw, "nft", "delete", "table", "inet", "sgp_drop"]);
    if (!drop) return;
    await must(
      "ip",
      ["netns", "exec", this.ns.gw, "nft", "-f", "-"],
      `table inet sgp_drop {
  chain in { type filter hook input priority 0; udp dport 5351 counter; }
  chain out { type filter hook output priority 0; udp sport 5351 counter drop; }
}
`,
    );
  }

  /** [requests seen, replies dropped] while the drop table exists. */
  async dropCounters() {
    const counters = [];
    for (const item of await this.nftJson()) {
      if (item.rule?.table !== "sgp_drop") continue;
      for (const e of item.rule.expr) if (e.counter) counters.push(e.counter.packets);
    }
    return counters;
  }

  /** Starts a PortMapper (from dist/) in the client namespace; events arrive as they happen. */
  startMapper(options) {
    const child = spawn("ip", ["netns", "exec", this.ns.cl, process.execPath, DRIVER, JSON.stringify(options)], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    const driver = new Driver(child);
    this.drivers.add(driver);
    child.once("exit", () => this.drivers.delete(driver));
    return driver;
  }

  async destroy() {
    for (const d of this.drivers) d.kill();
    await this.stopMiniupnpd();
    for (const n of Object.values(this.ns)) await run("ip", ["netns", "del", n]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

class Driver {
  constructor(child) {
    this.child = child;
    this.pid = child.pid;
    this.events = [];
    this.stderr = "";
    this.waiters = [];
    child.stderr.on("data", (d) => (this.stderr += d));
    createInterface({ input: child.stdout }).on("line", (line) => {
      const msg = JSON.parse(line);
      this.events.push(msg);
      for (const w of [...this.waiters]) w();
    });
  }

  /** Resolves with the first message (from index `from`) that matches, or rejects after ms. */
  waitFor(pred, ms = 10_000, from = 0) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = this.events.slice(from).find(pred);
        if (hit === undefined) return false;
        this.waiters = this.waiters.filter((w) => w !== check);
        clearTimeout(t);
        resolve(hit);
        return true;
      };
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check);
        reject(new Error(`timed out; messages: ${JSON.stringify(this.events.slice(from))}; stderr: ${this.stderr}`));
      }, ms);
      if (!check()) this.waiters.push(check);
    });
  }

  async state() {
    const from = this.events.length;
    this.child.stdin.write("state\n");
    return (await this.waitFor((m) => m.state !== undefined, 5000, from)).state;
  }

  async stop() {
    const from = this.events.length;
    this.child.stdin.write("stop\n");
    await this.waitFor((m) => m.exit === true, 10_000, from);
  }

  kill() {
    if (this.child.exitCode === null) this.child.kill("SIGKILL");
  }
}
