// `swarmgate clients` as a library call: every BitTorrent client config below
// root, the clients running in this network namespace matched to their
// configs, and what each would use and does use.
import { existsSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { identity, inRoot, readConfig, resolveInRoot } from "./files.js";
import { homeCandidates, homes, readPasswd, SERVICE_PLACES, type Candidate, type User } from "./homes.js";
import { expandHome, processConfig } from "./process-config.js";
import { ephemeralRange, findClientProcesses, type ClientProcess } from "./processes.js";
import { readClientConfig } from "./read.js";
import { readSockets, type Socket } from "./sockets.js";
import { CLIENT_KINDS, type ClientKind, type ClientReport, type ClientSettings, type ListeningSocket, type Problem } from "./types.js";

export * from "./types.js";
export { readClientConfig } from "./read.js";

export interface DetectOptions {
  /** Read configs and /etc/passwd below this directory (default /). */
  root?: string;
  /** Where proc(5) is mounted (default /proc); processes and sockets are this network namespace's. */
  proc?: string;
}

export interface Detection { clients: ClientReport[]; problems: Problem[] }

interface Entry {
  kind: ClientKind;
  /** The config as reported: below --root as this machine sees it, or as a running client names it; null: none. */
  file: string | null;
  /** Where this process reads the config itself. */
  readAs: string | null;
  id: string | undefined;
  user: string | null;
  /** The home the config's "~" means, in the config's own view. */
  home: string | undefined;
  /** Where to read a file the config (or the client's command line) names. */
  where: (path: string) => string[];
  process?: ClientProcess;
}

export function detectClients(opts: DetectOptions = {}): Detection {
  const root = resolve(opts.root ?? "/");
  const proc = opts.proc ?? "/proc";
  const users = readPasswd(root);
  const problems: Problem[] = [];
  const entries: Entry[] = [];
  const seen = new Set<string>();
  const add = (e: Entry): Entry | undefined => {
    if (e.id !== undefined) {
      if (seen.has(e.id)) return undefined;
      seen.add(e.id);
    }
    entries.push(e);
    return e;
  };

  for (const home of homes(root, users)) {
    for (const c of preferred(root, homeCandidates(root, home))) addCandidate(root, c, home.path, add);
  }
  for (const c of SERVICE_PLACES) addCandidate(root, { ...c, user: ownerName(root, c, users) }, undefined, add);

  const processes = findClientProcesses(proc);
  const hostUsers = root === "/" ? users : readPasswd("/");
  for (const p of processes) {
    const place = processConfig(p, hostUsers, (path) => existsOrBroken(processView(p, path)));
    const user = hostUsers.find((u) => u.uid === p.uid)?.name ?? (p.uid >= 0 ? String(p.uid) : null);
    const view = (path: string) => processView(p, path);
    const id = place.config === null ? undefined : identity(view(place.config));
    const known = id === undefined ? undefined : entries.find((e) => e.id === id && e.kind === p.kind && !e.process);
    if (known) {
      const inRootView = known.where;
      Object.assign(known, { process: p, user, where: (path: string) => [...inRootView(path), view(path)] });
    } else {
      add({ kind: p.kind, file: place.config, readAs: place.config === null ? null : view(place.config), id, user, home: place.home, where: (path) => [view(path)], process: p });
    }
  }

  const sockets = processes.length > 0 ? readSockets(proc) : new Map<number, Socket>();
  const ephemeral = ephemeralRange(proc);
  const clients: ClientReport[] = [];
  for (const e of entries) {
    const report = readEntry(e, sockets, ephemeral, problems);
    if (report) clients.push(report);
  }
  const order = (k: ClientKind) => CLIENT_KINDS.indexOf(k);
  const key = (c: ClientReport) => c.config ?? "";
  clients.sort((a, b) => order(a.kind) - order(b.kind) || (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  // One shape and a stable order for every problem, whoever found it.
  const tidy = problems.map(({ code, kind, file, line, column, message }) => ({ code, kind, file, line, column, message }))
    .sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : (a.line ?? 0) - (b.line ?? 0)));
  return { clients, problems: tidy };
}

/** rTorrent and aria2 read one file per home: the first of their two places that exists (rtorrent ~/.config first, aria2 ~/.aria2 first). */
function preferred(root: string, list: Candidate[]): Candidate[] {
  const exists = (c: Candidate) => existsSync(inRoot(root, c.path));
  return list.filter((c, i) => {
    const earlier = list.slice(0, i).find((o) => o.kind === c.kind && (c.kind === "rtorrent" || c.kind === "aria2"));
    return !(earlier && exists(earlier));
  });
}

function addCandidate(root: string, c: Candidate, home: string | undefined, add: (e: Entry) => Entry | undefined): void {
  const file = resolveInRoot(root, inRoot(root, c.path));
  // A missing file is no client; an unreadable one is a problem reported when it is read.
  if (!existsOrBroken(file)) return;
  add({ kind: c.kind, file: inRoot(root, c.path), readAs: file, id: identity(file), user: c.user, home, where: (path) => [resolveInRoot(root, inRoot(root, path))] });
}

/** A path as a running client names it, where this process can read it: through /proc/<pid>/root when it may. */
function processView(p: ClientProcess, path: string): string {
  const through = join(p.rootDir, path);
  return existsOrBroken(through) || !existsOrBroken(path) ? through : path;
}

function existsOrBroken(file: string): boolean {
  try {
    statSync(file);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== "ENOENT" && (e as NodeJS.ErrnoException).code !== "ENOTDIR";
  }
}

/** The service's user as Debian names it when passwd has it, else the file's owner. */
function ownerName(root: string, c: Candidate, users: readonly User[]): string | null {
  if (users.some((u) => u.name === c.user)) return c.user;
  try {
    const uid = statSync(resolveInRoot(root, inRoot(root, c.path))).uid;
    return users.find((u) => u.uid === uid)?.name ?? c.user;
  } catch {
    return c.user;
  }
}

function readEntry(e: Entry, sockets: Map<number, Socket>, ephemeral: ClientSettings["ports"] | undefined, problems: Problem[]): ClientReport | undefined {
  const read = (file: string, shownAs: string): string | undefined => {
    const r = readConfig(file);
    if ("problem" in r) problems.push({ kind: e.kind, ...r.problem, file: shownAs });
    return "text" in r ? r.text : undefined;
  };
  /** The text of a file the config names, or undefined when it is not there. */
  const named = (path: string): string | undefined => {
    const hit = e.where(path).find(existsOrBroken);
    return hit === undefined ? undefined : read(hit, path);
  };
  let text: string | undefined = "";
  if (e.file !== null && e.readAs !== null) {
    const path = e.readAs;
    // qBittorrent saves by writing qBittorrent_new.conf, deleting qBittorrent.conf and renaming.
    const saving = e.kind === "qbittorrent" ? join(dirname(path), "qBittorrent_new.conf") : undefined;
    if (existsOrBroken(path)) text = read(path, e.file);
    else if (saving !== undefined && existsOrBroken(saving)) text = read(saving, e.file);
    // else: a running client whose file does not exist (yet) runs on its defaults.
  }
  if (text === undefined) return undefined;
  const home = e.home ?? "/";
  const cwd = e.process?.cwd ?? home;
  const result = readClientConfig(e.kind, text, {
    args: e.process?.args,
    ephemeral,
    web: e.kind === "deluge" && e.readAs !== null ? webConf(join(dirname(e.readAs), "web.conf"), (f) => read(f, join(dirname(e.file!), "web.conf"))) : undefined,
    include: (path) => named(resolve(cwd, expandHome(path, home))),
  });
  for (const p of result.problems) problems.push({ kind: e.kind, file: e.file ?? "(command line)", ...p });
  if (!result.settings) return undefined;
  const listening = e.process ? socketsOf(e.process, sockets) : [];
  return report(e, result.settings, listening);
}

function webConf(file: string, read: (f: string) => string | undefined): string | undefined {
  return existsOrBroken(file) ? read(file) : undefined;
}

function socketsOf(p: ClientProcess, sockets: Map<number, Socket>): ListeningSocket[] {
  const out: ListeningSocket[] = [];
  for (const inode of p.socketInodes) {
    const s = sockets.get(inode);
    if (s) out.push({ protocol: s.protocol, address: s.address, port: s.port, pid: p.pid });
  }
  // Plain comparisons: localeCompare would load ICU's collator, tens of milliseconds at a cold start.
  const cmp = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
  return out.sort((a, b) => cmp(a.protocol, b.protocol) || a.port - b.port || cmp(a.address, b.address));
}

function report(e: Entry, s: ClientSettings & { daemon?: ClientReport["daemon"] }, listening: ListeningSocket[]): ClientReport {
  return {
    kind: e.kind, config: e.file, user: e.user,
    ports: observedPort(s, listening) ?? s.ports,
    random: s.random, protocols: s.protocols, dht: s.dht, lsd: s.lsd, natpmp: s.natpmp, bind: s.bind, webui: s.webui,
    ...(s.dhtPorts ? { dhtPorts: s.dhtPorts } : {}),
    ...(s.daemon ? { daemon: s.daemon } : {}),
    listening,
  };
}

/**
 * While a client runs, the port it listens on is the one it uses (the file is
 * a hint: a random draw, a port changed in the Web UI and not yet saved, a
 * command-line override): the one peer port in the configured range, else the
 * one port that is no control port. Several (qBittorrent with port 0 listens
 * on a new port per address): the configured range stands.
 */
function observedPort(s: ClientSettings & { daemon?: ClientReport["daemon"] }, listening: ListeningSocket[]): ClientSettings["ports"] | undefined {
  const control = new Set<number>([s.webui?.port ?? -1, s.daemon?.port ?? -1, ...(s.lsd ? [LSD_PORT] : [])]);
  const protocol = s.protocols.includes("tcp") ? "tcp" : "udp";
  const peer = listening.filter((l) => l.protocol === protocol && !control.has(l.port));
  const inRange = new Set(peer.filter((l) => l.port >= s.ports.from && l.port <= s.ports.to).map((l) => l.port));
  const any = new Set(peer.map((l) => l.port));
  const port = inRange.size === 1 ? [...inRange][0]! : inRange.size === 0 && any.size === 1 ? [...any][0]! : undefined;
  return port === undefined ? undefined : { from: port, to: port };
}

/** Local Service Discovery's multicast port (BEP 14). */
const LSD_PORT = 6771;
