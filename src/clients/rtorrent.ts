// rTorrent 0.9: ~/.rtorrent.rc, "command = value" lines, in the old names
// (port_range) or the new (network.port_range.set); "-o command=value" on the
// command line runs after the file. Defaults as rtorrent 0.9.8 runs with an
// empty rc: ports 6881-6999 picked at random at each start, DHT off (port 6881).
import type { ClientSettings, ReadResult, WebUi } from "./types.js";
import { Findings, portRange, shown, wholeNumber } from "./values.js";

const SETTINGS: Record<string, string> = {
  port_range: "network.port_range.set", "network.port_range.set": "network.port_range.set",
  port_random: "network.port_random.set", "network.port_random.set": "network.port_random.set",
  port_open: "network.port_open.set", "network.port_open.set": "network.port_open.set",
  dht: "dht.mode.set", "dht.mode.set": "dht.mode.set",
  dht_port: "dht.port.set", "dht.port.set": "dht.port.set",
  bind: "network.bind_address.set", "network.bind_address.set": "network.bind_address.set",
  scgi_port: "network.scgi.open_port", "network.scgi.open_port": "network.scgi.open_port",
  import: "import", try_import: "try_import",
};

export interface RtorrentSource {
  text: string;
  /** The text of a file named by import/try_import (already resolved), or undefined when there is none. */
  include?: (path: string) => string | undefined;
  /** The process's "-o" options, which rtorrent runs after the file. */
  args?: readonly string[];
}

interface Command { name: string; value: string; line?: number; origin: "file" | "args" }

export function readRtorrent(src: RtorrentSource): ReadResult {
  const found = new Findings();
  const commands: Command[] = [];
  collect(src.text, "file", found, commands, src.include, 0);
  for (const o of commandLineOptions(src.args ?? [])) collect(o, "args", found, commands, src.include, 0);

  const last = (name: string) => commands.filter((c) => c.name === name).pop();
  let ports = { from: 6881, to: 6999 };
  const range = last("network.port_range.set");
  if (range) {
    const r = portRange(range.value);
    if (r) ports = r;
    else found.value(`port_range must be "FROM-TO", not ${shown(range.value)}`, range.line);
  }
  const random = yesNo(last("network.port_random.set"), true, found) && ports.from !== ports.to;
  const open = yesNo(last("network.port_open.set"), true, found);
  const mode = last("dht.mode.set");
  const modeValue = mode?.value.toLowerCase() ?? "off";
  if (!["disable", "off", "auto", "on"].includes(modeValue)) found.value(`dht must be disable, off, auto or on, not ${shown(mode!.value)}`, mode?.line);
  const dht = modeValue === "auto" || modeValue === "on";
  const dhtPortCommand = last("dht.port.set");
  let dhtPort = 6881;
  if (dhtPortCommand) {
    const n = wholeNumber(dhtPortCommand.value, 1, 65535);
    if (n === undefined) found.value(`dht_port must be a port number, not ${shown(dhtPortCommand.value)}`, dhtPortCommand.line);
    else dhtPort = n;
  }
  const bind = last("network.bind_address.set")?.value.trim();

  const settings: ClientSettings = {
    ports, random,
    // Peers over TCP only; DHT has its own UDP port.
    protocols: open ? ["tcp"] : [],
    dht, lsd: false, natpmp: false,
    bind: { interface: null, addresses: bind ? [bind] : [] },
    webui: scgi(last("network.scgi.open_port"), found),
    ...(dht ? { dhtPorts: { from: dhtPort, to: dhtPort } } : {}),
  };
  return { settings, problems: found.list };
}

function collect(text: string, origin: Command["origin"], found: Findings, out: Command[], include: RtorrentSource["include"], depth: number): void {
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!.replace(/\r$/, "");
    const first = i;
    // A trailing backslash continues the command on the next line.
    while (line.endsWith("\\") && i + 1 < lines.length) line = line.slice(0, -1) + lines[++i]!.replace(/\r$/, "");
    const t = line.trim();
    if (t === "" || t.startsWith("#")) continue;
    const eq = t.indexOf("=");
    if (eq < 0) {
      if (origin === "file") found.syntax("expected command = value", first + 1, 1);
      continue;
    }
    const name = SETTINGS[t.slice(0, eq).trim()];
    if (name === undefined) continue;
    const value = unquote(t.slice(eq + 1).trim());
    if ((name === "import" || name === "try_import") && include && depth < 4) {
      const text2 = include(value);
      if (text2 !== undefined) collect(text2, origin, found, out, include, depth + 1);
      continue;
    }
    out.push({ name, value, line: origin === "file" && depth === 0 ? first + 1 : undefined, origin });
  }
}

function unquote(v: string): string {
  return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v;
}

function yesNo(c: Command | undefined, fallback: boolean, found: Findings): boolean {
  if (!c) return fallback;
  const v = c.value.trim().toLowerCase();
  if (["yes", "true", "1"].includes(v)) return true;
  if (["no", "false", "0"].includes(v)) return false;
  found.value(`${shown(c.value)} is neither yes nor no`, c.line);
  return fallback;
}

function scgi(c: Command | undefined, found: Findings): WebUi | null {
  if (!c) return null;
  const m = /^(.*):(\d{1,5})$/.exec(c.value.trim());
  const port = m ? wholeNumber(m[2]!, 1, 65535) : undefined;
  if (!m || port === undefined) {
    found.value(`scgi_port must be HOST:PORT, not ${shown(c.value)}`, c.line);
    return null;
  }
  return { port, address: m[1] || "*" };
}

/** The "-o" options of a command line: "-o a=1" or "-o a=1,b=2". */
export function commandLineOptions(args: readonly string[]): string[] {
  const out: string[] = [];
  args.forEach((a, i) => {
    if (a !== "-o" || i + 1 >= args.length) return;
    const v = args[i + 1]!;
    const parts = v.split(",");
    out.push(...(parts.every((p) => p.includes("=")) ? parts : [v]));
  });
  return out;
}

/** Whether rtorrent skips ~/.rtorrent.rc (-n). */
export const skipsRc = (args: readonly string[]): boolean => args.includes("-n");
