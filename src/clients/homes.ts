// Where client configs live: every home of <root>/etc/passwd, every directory
// under <root>/home, and the places Debian's system services use.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { readConfig, inRoot } from "./files.js";
import type { ClientKind } from "./types.js";

export interface User { name: string; uid: number; home: string }

/** The users of a passwd file's text; lines that are not passwd entries are skipped. */
export function parsePasswd(text: string): User[] {
  const users: User[] = [];
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length < 7 || f[0] === "" || !/^\d+$/.test(f[2]!)) continue;
    users.push({ name: f[0]!, uid: Number(f[2]), home: f[5]! });
  }
  return users;
}

export function readPasswd(root: string): User[] {
  const r = readConfig(inRoot(root, "/etc/passwd"));
  return "text" in r ? parsePasswd(r.text) : [];
}

export interface Home { user: string; path: string /* inside root */ }

const isDir = (p: string): boolean => {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
};

/** Each home once: passwd's (that exist) and every directory under /home. */
export function homes(root: string, users: readonly User[]): Home[] {
  const out = new Map<string, Home>();
  for (const u of users) {
    if (u.home === "" || u.home === "/" || out.has(u.home)) continue;
    if (isDir(inRoot(root, u.home))) out.set(u.home, { user: u.name, path: u.home });
  }
  let names: string[] = [];
  try {
    names = readdirSync(inRoot(root, "/home"));
  } catch { /* no /home */ }
  for (const name of names.sort()) {
    const path = `/home/${name}`;
    if (out.has(path) || !isDir(inRoot(root, path))) continue;
    // Not in passwd: the directory's owner, unless that is root (then its name says more).
    let owner: string | undefined;
    try {
      const uid = statSync(inRoot(root, path)).uid;
      owner = uid === 0 ? undefined : users.find((u) => u.uid === uid)?.name;
    } catch { /* gone meanwhile */ }
    out.set(path, { user: users.find((u) => u.name === name)?.name ?? owner ?? name, path });
  }
  return [...out.values()];
}

export interface Candidate { kind: ClientKind; path: string /* inside root */; user: string | null }

/** The config files a client of each kind would read in a home, in the order the client prefers them (see preferred() in index.ts). */
export function homeCandidates(root: string, home: Home): Candidate[] {
  const at = (kind: ClientKind, ...parts: string[]): Candidate => ({ kind, path: join(home.path, ...parts), user: home.user });
  const list: Candidate[] = [at("qbittorrent", ".config", "qBittorrent", "qBittorrent.conf")];
  // qbittorrent --configuration=NAME keeps its settings in ~/.config/qBittorrent_NAME.
  let entries: string[] = [];
  try {
    entries = readdirSync(inRoot(root, join(home.path, ".config")));
  } catch { /* no ~/.config */ }
  for (const e of entries.sort()) if (e.startsWith("qBittorrent_")) list.push(at("qbittorrent", ".config", e, "qBittorrent.conf"));
  list.push(
    at("transmission", ".config", "transmission-daemon", "settings.json"),
    at("transmission", ".config", "transmission", "settings.json"),
    at("deluge", ".config", "deluge", "core.conf"),
    // rtorrent 0.9.8 reads ~/.config/rtorrent/rtorrent.rc when it exists, else ~/.rtorrent.rc.
    at("rtorrent", ".config", "rtorrent", "rtorrent.rc"),
    at("rtorrent", ".rtorrent.rc"),
    at("aria2", ".aria2", "aria2.conf"),
    at("aria2", ".config", "aria2", "aria2.conf"),
  );
  return list;
}

/** Debian's (and common) system-service places, with the service user when passwd does not say otherwise. */
export const SERVICE_PLACES: readonly Candidate[] = [
  { kind: "transmission", path: "/var/lib/transmission-daemon/.config/transmission-daemon/settings.json", user: "debian-transmission" },
  { kind: "transmission", path: "/etc/transmission-daemon/settings.json", user: "debian-transmission" },
  { kind: "deluge", path: "/var/lib/deluged/config/core.conf", user: "debian-deluged" },
  { kind: "qbittorrent", path: "/var/lib/qbittorrent/.config/qBittorrent/qBittorrent.conf", user: "qbittorrent" },
  { kind: "qbittorrent", path: "/var/lib/qbittorrent-nox/.config/qBittorrent/qBittorrent.conf", user: "qbittorrent-nox" },
];
