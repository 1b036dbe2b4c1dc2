// Debian's miniupnpd (nftables build) as the VPN server's NAT-PMP/PCP gateway
// in the VPN lab. What it needs (see field-notes.md and portmap-lab.mjs): a
// public-range external address, and its chains already present in
// `table inet filter` with hooks that jump to them.
import { spawn, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runChecked } from "../../src/system/run.js";

const CHAINS = `table inet filter {
  chain miniupnpd { }
  chain prerouting_miniupnpd { }
  chain postrouting_miniupnpd { }
  chain forward { type filter hook forward priority 0; policy accept; jump miniupnpd; }
  chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }
  chain postrouting { type nat hook postrouting priority 100; policy accept; jump postrouting_miniupnpd; }
}
`;

export interface MiniupnpdOptions {
  ns: string;
  dir: string;
  /** The interface it listens on (the server's WireGuard interface). */
  inside: string;
  /** The interface with the public-range address. */
  outside: string;
  /** The network allowed to map (the tunnel's). */
  clients: string;
}

export interface Miniupnpd { child: ChildProcess; log: () => string }

export async function startMiniupnpd(o: MiniupnpdOptions): Promise<Miniupnpd> {
  await runChecked("ip", ["netns", "exec", o.ns, "nft", "-f", "-"], { input: CHAINS });
  const conf = join(o.dir, "miniupnpd.conf");
  writeFileSync(conf, [
    `ext_ifname=${o.outside}`,
    `listening_ip=${o.inside}`,
    "enable_natpmp=yes",
    "enable_upnp=no",
    "secure_mode=yes",
    "system_uptime=no",
    `lease_file=${join(o.dir, "leases")}`,
    `allow 1024-65535 ${o.clients} 1024-65535`,
    "deny 0-65535 0.0.0.0/0 0-65535",
    "",
  ].join("\n"));
  const child = spawn("ip", ["netns", "exec", o.ns, "miniupnpd", "-f", conf, "-d", "-P", join(o.dir, "miniupnpd.pid")], { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`miniupnpd did not start:\n${log}`)), 5000);
    const onData = (d: Buffer) => {
      log += d;
      if (log.includes("Listening for NAT-PMP/PCP traffic")) { clearTimeout(t); resolve(); }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", () => { clearTimeout(t); reject(new Error(`miniupnpd exited:\n${log}`)); });
  });
  return { child, log: () => log };
}

/** Sends the signal and waits (at most 3 s, then SIGKILL) for the exit. */
export async function stopChild(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill(signal);
  await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
  if (child.exitCode === null && child.signalCode === null) {
    child.kill("SIGKILL");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 1000))]);
  }
}
