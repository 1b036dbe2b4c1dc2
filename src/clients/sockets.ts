// The sockets of this network namespace from /proc/net/{tcp,tcp6,udp,udp6}
// (proc(5)): TCP sockets that listen and UDP sockets bound with no peer,
// keyed by inode so a process's fds can claim them. Cheaper than running ss.
import { readFileSync } from "node:fs";
import { join } from "node:path";

export interface Socket { protocol: "tcp" | "udp"; address: string; port: number; inode: number }

const TCP_LISTEN = "0A";

const TABLES = [["tcp", "tcp"], ["tcp6", "tcp"], ["udp", "udp"], ["udp6", "udp"]] as const;

/**
 * The sockets of the namespace, of both protocols or of one. Reading TCP's
 * tables costs about 1 ms of kernel time each on a large machine (the kernel
 * walks its whole connection hash to print them), UDP's a few microseconds:
 * a frequent poll can read UDP alone.
 */
export function readSockets(proc = "/proc", only?: "tcp" | "udp"): Map<number, Socket> {
  const out = new Map<number, Socket>();
  for (const [file, protocol] of TABLES.filter(([, p]) => !only || p === only)) {
    let text: string;
    try {
      text = readFileSync(join(proc, "net", file), "utf8");
    } catch {
      continue; // no IPv6, or /proc/net not mounted
    }
    for (const s of parseProcNet(text, protocol)) out.set(s.inode, s);
  }
  return out;
}

/** The listening (TCP) or unconnected (UDP) sockets of one /proc/net table. */
export function parseProcNet(text: string, protocol: "tcp" | "udp"): Socket[] {
  const out: Socket[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const [local, remote, state, inode] = [f[1]!, f[2]!, f[3]!, Number(f[9])];
    if (protocol === "tcp" && state !== TCP_LISTEN) continue;
    if (protocol === "udp" && !/^0+:0000$/.test(remote)) continue;
    const [hex, portHex] = local.split(":");
    if (!hex || !portHex || !inode) continue;
    out.push({ protocol, address: decodeAddress(hex), port: parseInt(portHex, 16), inode });
  }
  return out;
}

/** The kernel prints each 32-bit word of the address in host (little-endian) byte order. */
export function decodeAddress(hex: string): string {
  const bytes: number[] = [];
  for (let w = 0; w < hex.length; w += 8) {
    const word = hex.slice(w, w + 8);
    for (let b = 6; b >= 0; b -= 2) bytes.push(parseInt(word.slice(b, b + 2), 16));
  }
  if (bytes.length === 4) return bytes.join(".");
  // An IPv4-mapped address (::ffff:a.b.c.d) reads better as such.
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return `::ffff:${bytes.slice(12).join(".")}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return compressV6(groups);
}

function compressV6(groups: string[]): string {
  // The longest run of two or more zero groups becomes "::" (RFC 5952).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== "0") { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  if (best < 0) return groups.join(":");
  return `${groups.slice(0, best).join(":")}::${groups.slice(best + bestLen).join(":")}`;
}
