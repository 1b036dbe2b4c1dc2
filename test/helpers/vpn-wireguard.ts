// wireguard-go and wg for the VPN lab. wireguard-go keeps its control socket
// at /var/run/wireguard/<ifname>.sock for the whole machine, whatever the
// namespace, so every interface name is unique on the machine; on Linux it
// runs only with WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { run, runChecked } from "../../src/system/run.js";

const WG_ENV = { WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD: "1" };

/** A WireGuard interface name from the creating pid (so a later run can clean up after a dead one); ≤ 15 characters. */
export const wgName = (pid: number, n: number, side: "h" | "s") => `sgv${pid}x${n}${side}`;

export const wgSocket = (ifname: string) => `/var/run/wireguard/${ifname}.sock`;

export const readKey = (path: string) => readFileSync(path, "utf8").trim();

/** Writes <dir>/<name>.key (mode 600) and <name>.key.pub for each name. */
export async function makeKeys(dir: string, names: string[]): Promise<void> {
  for (const name of names) {
    const key = join(dir, `${name}.key`);
    writeFileSync(key, (await runChecked("wg", ["genkey"])).stdout, { mode: 0o600 });
    writeFileSync(`${key}.pub`, (await runChecked("wg", ["pubkey"], { input: readKey(key) })).stdout);
  }
}

/** Starts wireguard-go in the foreground (its pid is the child's) and waits for its control socket. */
export async function startWireguardGo(ns: string, ifname: string): Promise<ChildProcess> {
  rmSync(wgSocket(ifname), { force: true }); // a SIGKILLed one leaves it behind
  const child = spawn("ip", ["netns", "exec", ns, "wireguard-go", "-f", ifname], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...WG_ENV } });
  let log = "";
  child.stdout!.on("data", (d) => { log += d; });
  child.stderr!.on("data", (d) => { log += d; });
  for (let i = 0; !existsSync(wgSocket(ifname)); i++) {
    if (i > 250 || child.exitCode !== null) {
      child.kill("SIGKILL");
      throw new Error(`wireguard-go ${ifname} did not start: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return child;
}

/** Seconds since the epoch of the latest handshake of the interface's (first) peer; 0: none. */
export async function latestHandshake(ns: string, ifname: string): Promise<number> {
  const r = await run("ip", ["netns", "exec", ns, "wg", "show", ifname, "latest-handshakes"]);
  return Number(r.stdout.trim().split(/\s+/)[1] ?? 0);
}
