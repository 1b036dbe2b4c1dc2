// The BitTorrent clients running in this network namespace, from /proc: what
// kind each is (by its executable, or its script for deluged), its command
// line, environment, user and the socket inodes it holds.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { basename, join } from "node:path";
import type { ClientKind } from "./types.js";

export interface ClientProcess {
  pid: number;
  kind: ClientKind;
  program: string;
  /** The command line after the program (after the script for deluged). */
  args: string[];
  env: Map<string, string>;
  uid: number;
  cwd: string | undefined;
  /** /proc/<pid>/root: the process's own view of the file system (a container's, say). */
  rootDir: string;
  socketInodes: number[];
}

const PROGRAMS: Record<string, ClientKind> = {
  "qbittorrent-nox": "qbittorrent", qbittorrent: "qbittorrent",
  "transmission-daemon": "transmission", "transmission-gtk": "transmission", "transmission-qt": "transmission",
  deluged: "deluge", rtorrent: "rtorrent", aria2c: "aria2",
};

// /proc/<pid>/comm is cut to 15 bytes; rtorrent renames its main thread "rtorrent main".
const COMMS = new Set(["qbittorrent-nox", "qbittorrent", "transmission-da", "transmission-gt", "transmission-qt", "deluged", "rtorrent", "rtorrent main", "aria2c"]);

const read = (p: string): string | undefined => {
  try {
    return readFileSync(p, "utf8");
  } catch {
    return undefined;
  }
};
const link = (p: string): string | undefined => {
  try {
    return readlinkSync(p);
  } catch {
    return undefined;
  }
};

export function findClientProcesses(proc = "/proc"): ClientProcess[] {
  const ownNet = link(join(proc, "self", "ns", "net"));
  const out: ClientProcess[] = [];
  let pids: string[];
  try {
    pids = readdirSync(proc).filter((n) => /^\d+$/.test(n));
  } catch {
    return out;
  }
  for (const pid of pids) {
    const dir = join(proc, pid);
    const comm = read(join(dir, "comm"))?.trimEnd();
    if (comm === undefined || !COMMS.has(comm)) continue;
    // Another network namespace's client listens on sockets we do not see.
    if (ownNet !== undefined && link(join(dir, "ns", "net")) !== ownNet) continue;
    const argv = (read(join(dir, "cmdline")) ?? "").split("\0").filter((a, i, all) => a !== "" || i < all.length - 1);
    const identified = identify(link(join(dir, "exe")), argv);
    if (!identified) continue;
    const env = new Map<string, string>();
    for (const kv of (read(join(dir, "environ")) ?? "").split("\0")) {
      const eq = kv.indexOf("=");
      if (eq > 0) env.set(kv.slice(0, eq), kv.slice(eq + 1));
    }
    const uid = Number(/^Uid:\s+(\d+)/m.exec(read(join(dir, "status")) ?? "")?.[1] ?? -1);
    out.push({ pid: Number(pid), ...identified, env, uid, cwd: link(join(dir, "cwd")), rootDir: join(dir, "root"), socketInodes: socketInodes(dir) });
  }
  return out.sort((a, b) => a.pid - b.pid);
}

function identify(exe: string | undefined, argv: string[]): { kind: ClientKind; program: string; args: string[] } | undefined {
  const name = basename((exe ?? "").replace(/ \(deleted\)$/, ""));
  const kind = PROGRAMS[name];
  if (kind) return { kind, program: name, args: argv.slice(1) };
  // deluged is a Python script: python3 /usr/bin/deluged ARGS
  if (/^python/.test(name) || name === "") {
    const script = argv.findIndex((a, i) => i > 0 && basename(a) === "deluged");
    if (script > 0) return { kind: "deluge", program: "deluged", args: argv.slice(script + 1) };
    if (basename(argv[0] ?? "") === "deluged") return { kind: "deluge", program: "deluged", args: argv.slice(1) };
  }
  return undefined;
}

function socketInodes(dir: string): number[] {
  let fds: string[];
  try {
    fds = readdirSync(join(dir, "fd"));
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const fd of fds) {
    const m = /^socket:\[(\d+)\]$/.exec(link(join(dir, "fd", fd)) ?? "");
    if (m) out.push(Number(m[1]));
  }
  return out;
}

/** net.ipv4.ip_local_port_range of this namespace: where a port-0 listener's port comes from. */
export function ephemeralRange(proc = "/proc"): { from: number; to: number } | undefined {
  const m = /^(\d+)\s+(\d+)/.exec(read(join(proc, "sys", "net", "ipv4", "ip_local_port_range")) ?? "");
  return m ? { from: Number(m[1]), to: Number(m[2]) } : undefined;
}
