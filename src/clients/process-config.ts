// Which config file a running client reads, from its command line, its
// environment and its user's home, as each client decides it.
import { isAbsolute, join, resolve } from "node:path";
import { aria2ConfigOf } from "./aria2.js";
import { delugeConfigDirOf } from "./deluge.js";
import type { User } from "./homes.js";
import type { ClientProcess } from "./processes.js";
import { qbittorrentConfigOf } from "./qbittorrent.js";
import { commandLineOptions, skipsRc } from "./rtorrent.js";
import { transmissionConfigOf } from "./transmission.js";

export interface ProcessPlace { config: string | null; home: string; cwd: string }

/** exists: whether a path, as the process names it, exists. */
export function processConfig(p: ClientProcess, users: readonly User[], exists: (path: string) => boolean): ProcessPlace {
  const home = p.env.get("HOME") ?? users.find((u) => u.uid === p.uid)?.home ?? "/";
  const cwd = p.cwd ?? home;
  const abs = (path: string) => (isAbsolute(path) ? path : resolve(cwd, path));
  const configHome = abs(p.env.get("XDG_CONFIG_HOME") || join(home, ".config"));
  let config: string | null;
  switch (p.kind) {
    case "qbittorrent": {
      // Every option may also come from a QBT_<NAME> variable; the command line wins.
      const args = [...fromEnv(p.env, "QBT_PROFILE", "--profile"), ...fromEnv(p.env, "QBT_CONFIGURATION", "--configuration"), ...p.args];
      config = qbittorrentConfigOf(args.map((a) => (a.startsWith("--profile=") ? `--profile=${abs(a.slice(10))}` : a)), configHome);
      break;
    }
    case "transmission":
      config = p.program === "transmission-daemon"
        ? transmissionConfigOf(p.args, p.env, configHome)
        : join(configHome, "transmission", "settings.json");
      break;
    case "deluge":
      config = join(delugeConfigDirOf(p.args, configHome), "core.conf");
      break;
    case "rtorrent": {
      const firstImport = commandLineOptions(p.args).map((o) => /^\s*(?:try_)?import\s*=\s*"?([^"]*)"?\s*$/.exec(o)?.[1]).find((v) => v !== undefined);
      config = !skipsRc(p.args) ? rtorrentRc(p.env.get("XDG_CONFIG_HOME"), home, exists) : firstImport !== undefined ? expandHome(firstImport, home) : null;
      break;
    }
    case "aria2":
      config = aria2ConfigOf(p.args, home, configHome, exists);
      break;
  }
  return { config: config === null ? null : abs(config), home, cwd };
}

/** rtorrent 0.9.8: $XDG_CONFIG_HOME/rtorrent/rtorrent.rc (an absolute one) or ~/.config/rtorrent/rtorrent.rc when it exists, else ~/.rtorrent.rc. */
function rtorrentRc(xdg: string | undefined, home: string, exists: (path: string) => boolean): string {
  const modern = xdg?.startsWith("/") ? join(xdg, "rtorrent", "rtorrent.rc") : join(home, ".config", "rtorrent", "rtorrent.rc");
  return exists(modern) ? modern : join(home, ".rtorrent.rc");
}

function fromEnv(env: ReadonlyMap<string, string>, name: string, option: string): string[] {
  const v = env.get(name);
  return v === undefined || v === "" ? [] : [`${option}=${v}`];
}

export function expandHome(path: string, home: string): string {
  return path === "~" ? home : path.startsWith("~/") ? join(home, path.slice(2)) : path;
}
