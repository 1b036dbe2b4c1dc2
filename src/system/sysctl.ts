// Kernel settings a policy implies, read and written through /proc/sys (of
// the network namespace this process runs in).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import type { Policy } from "../policy/types.js";

const path = (key: string) => `/proc/sys/${key.replace(/\./g, "/")}`;

/** TCP SYN cookies and ignored broadcast/multicast echoes always; forwarding on a gateway, both families. */
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
  // Settings this kernel does not have are left out rather than failing the apply.
  return Object.fromEntries(Object.entries(s).filter(([k]) => existsSync(path(k))));
}

export function readSysctl(key: string): string | undefined {
  try { return readFileSync(path(key), "utf8").trim(); } catch { return undefined; }
}

export function writeSysctl(key: string, value: string): boolean {
  try { writeFileSync(path(key), `${value}\n`); return true; } catch { return false; }
}
