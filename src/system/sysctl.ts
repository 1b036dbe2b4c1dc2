// Kernel settings swarmgate manages, read from /proc/sys and written with the
// sysctl tool (of the network namespace this process runs in). Each setting
// has a safe value: a change towards it is made before the ruleset changes,
// a change away from it after, so that a machine never routes without the
// forward filter that goes with routing, not even for a moment.
import { existsSync, readFileSync } from "node:fs";
import { userError } from "../errors.js";
import type { Policy } from "../policy/types.js";
import { run } from "./run.js";

/** Every setting swarmgate may change, with its safe value. */
export const MANAGED: Readonly<Record<string, string>> = {
  "net.ipv4.tcp_syncookies": "1",
  "net.ipv4.icmp_echo_ignore_broadcasts": "1",
  "net.ipv6.icmp.echo_ignore_multicast": "1",
  "net.ipv4.ip_forward": "0",
  "net.ipv6.conf.all.forwarding": "0",
};

const path = (key: string) => `/proc/sys/${key.replace(/\./g, "/")}`;

/** What a policy wants: SYN cookies and ignored broadcast/multicast echoes always; forwarding on a gateway only. */
export function settingsFor(policy: Policy): Record<string, string> {
  const s: Record<string, string> = {
    "net.ipv4.tcp_syncookies": "1",
    "net.ipv4.icmp_echo_ignore_broadcasts": "1",
    "net.ipv6.icmp.echo_ignore_multicast": "1",
  };
  if (policy.role === "gateway") {
    s["net.ipv4.ip_forward"] = "1";
    s["net.ipv6.conf.all.forwarding"] = "1";
  }
  return s;
}

/** The managed settings this kernel has, with their values now. */
export function readSettings(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of Object.keys(MANAGED)) {
    if (!existsSync(path(key))) continue; // a kernel without IPv6, say
    try { out[key] = readFileSync(path(key), "utf8").trim(); } catch { /* unreadable: not managed here */ }
  }
  return out;
}

export async function writeSetting(key: string, value: string): Promise<void> {
  if (!/^[a-z0-9_.]+$/.test(key) || !/^\d+$/.test(value)) throw new Error(`bad kernel setting ${key}=${value}`);
  const r = await run("sysctl", ["-q", "-w", `${key}=${value}`]);
  if (r.code !== 0) throw userError("LOAD_FAILED", `sysctl could not set ${key}=${value}: ${r.stderr.trim() || `exit status ${r.code}`}`);
}

/** Whether going from `from` to `to` moves a setting towards its safe value. */
export function towardsSafe(key: string, to: string): boolean {
  return MANAGED[key] === to;
}
