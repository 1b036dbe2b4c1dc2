// Deluge 2: <config dir>/core.conf and web.conf, each two JSON objects one after
// the other (a {"file", "format"} header, then the settings). Keys and
// defaults as in deluge 2.0's core/preferencesmanager.py and the web UI's.
import { join } from "node:path";
import { Keys, parseObject, type JsonObject } from "./json.js";
import type { ClientSettings, PortRange, ReadResult, WebUi } from "./types.js";
import { Findings, option, position, wholeNumber } from "./values.js";

/** Where deluged draws a random port from when random_port is on and none is saved yet (randrange(49152, 65525)). */
export const DELUGE_RANDOM_RANGE: PortRange = { from: 49152, to: 65524 };

export interface DelugeSettings extends ClientSettings {
  /** deluged's own RPC port, which the GTK and console clients connect to. */
  daemon: WebUi;
}

export function readDeluge(core: string, web?: string, args: readonly string[] = []): ReadResult & { settings: DelugeSettings | null } {
  const found = new Findings();
  const obj = settingsObject(core, found);
  if (obj === undefined) return { settings: null, problems: found.list };
  const k = new Keys(core, obj.value, found, obj.start);

  const randomPort = k.bool(["random_port"], true);
  const saved = k.raw("listen_random_port");
  let ports: PortRange;
  let random = false;
  if (randomPort) {
    // Drawn once, then saved in listen_random_port and reused at every start.
    const n = typeof saved === "number" && Number.isInteger(saved) && saved > 0 && saved <= 65535 ? saved : undefined;
    if (n !== undefined) ports = { from: n, to: n };
    else [ports, random] = [DELUGE_RANDOM_RANGE, true];
  } else {
    ports = listenPorts(k, found);
  }
  const iface = k.str(["listen_interface"], "").trim();
  const isAddress = /^[\d.]+$/.test(iface) || iface.includes(":");
  const outgoing = k.str(["outgoing_interface"], "").trim();
  const allowRemote = k.bool(["allow_remote"], false);
  const cliDaemon = option(args, "--port", "-p");
  const daemonPort = cliDaemon !== undefined && wholeNumber(cliDaemon, 1, 65535) !== undefined ? Number(cliDaemon) : k.int(["daemon_port"], 1, 65535, 58846);

  const settings: DelugeSettings = {
    ports, random,
    protocols: ["tcp", "udp"],
    dht: k.bool(["dht"], true),
    lsd: k.bool(["lsd"], true),
    // Either protocol maps the port on the router.
    natpmp: k.bool(["natpmp"], true) || k.bool(["upnp"], true),
    // With no listen_interface deluged listens on "0.0.0.0": IPv4 only.
    bind: {
      ...(iface === "" ? { interface: null, addresses: ["0.0.0.0"] } : isAddress ? { interface: null, addresses: [iface] } : { interface: iface, addresses: [] }),
      ...(outgoing ? { outgoing } : {}),
    },
    webui: web === undefined ? null : webUi(web, found),
    daemon: { port: daemonPort, address: allowRemote ? "0.0.0.0" : "127.0.0.1" },
  };
  return { settings, problems: found.list };
}

function listenPorts(k: Keys, found: Findings): PortRange {
  const v = k.raw("listen_ports");
  if (v === undefined) return { from: 6881, to: 6891 };
  if (Array.isArray(v) && v.length === 2 && v.every((p) => Number.isInteger(p) && p >= 0 && p <= 65535) && v[0] <= v[1]) {
    const range = { from: v[0] as number, to: v[1] as number };
    if (range.from !== range.to) {
      // deluge 2.0.x joins one listen address per port without a separator, so
      // libtorrent gets an address it cannot parse and listens on no port at all.
      found.value(`listen_ports is a range (${range.from}-${range.to}): deluged 2.0 then listens on no peer port at all; make both numbers the same`, k.line("listen_ports"));
    }
    return range;
  }
  found.value("listen_ports must be two port numbers [from, to]; deluged's default [6881, 6891] is assumed", k.line("listen_ports"));
  return { from: 6881, to: 6891 };
}

function webUi(text: string, found: Findings): WebUi | null {
  const obj = settingsObject(text, found);
  if (obj === undefined) return null;
  const k = new Keys(text, obj.value, found, obj.start);
  return { port: k.int(["port"], 1, 65535, 8112), address: k.str(["interface"], "0.0.0.0") || "0.0.0.0" };
}

/** The settings object: the second of two, or the only one (deluge 1.x files). */
function settingsObject(text: string, found: Findings): { value: JsonObject; start: number } | undefined {
  if (text.trim() === "") return { value: {}, start: 0 };
  const spans = objectSpans(text);
  if (spans.length > 2) {
    const { line, column } = position(text, spans[2]![0]);
    found.syntax("more than two JSON objects", line, column);
    return undefined;
  }
  const end = spans.length > 0 ? spans[spans.length - 1]![1] : 0;
  const rest = text.slice(end).search(/\S/);
  if (spans.length === 0 || rest >= 0) {
    // Something other than a whole object follows: let the JSON grammar say where it goes wrong.
    const at = end + Math.max(0, rest);
    const before = found.list.length;
    if (parseObject(text, found, at) !== undefined || found.list.length === before) {
      const { line, column } = position(text, at);
      found.syntax("expected two JSON objects { … }{ … }", line, column);
    }
    return undefined;
  }
  const [start, stop] = spans[spans.length - 1]!;
  const value = parseObject(text, found, start, stop);
  return value === undefined ? undefined : { value, start };
}

/** [start, end) of each top-level {…} in text, by brace depth outside strings; stops at the first stray character. */
function objectSpans(text: string): [number, number][] {
  const spans: [number, number][] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') { if (depth === 0) return spans; inString = true; }
    else if (c === "{") { if (depth++ === 0) start = i; }
    else if (c === "}") {
      if (depth === 0) return spans;
      if (--depth === 0) spans.push([start, i + 1]);
    } else if (depth === 0 && !/\s/.test(c)) return spans;
  }
  return spans;
}

/** Where a running deluged keeps core.conf: -c/--config, else the user's. */
export function delugeConfigDirOf(args: readonly string[], configHome: string): string {
  return option(args, "--config", "-c") ?? join(configHome, "deluge");
}
