// aria2 1.36: aria2.conf, "option=value" lines with the long option names;
// options on the command line win. Defaults as `aria2c --help=#all` states
// them. aria2 listens for peers only while a BitTorrent download is active.
import { join } from "node:path";
import type { ClientSettings, PortRange, ReadResult } from "./types.js";
import { Findings, portRange, shown, wholeNumber } from "./values.js";

const WANTED = new Set(["listen-port", "dht-listen-port", "enable-dht", "enable-dht6", "bt-enable-lpd", "interface", "enable-rpc", "rpc-listen-port", "rpc-listen-all"]);

interface Option { value: string; line?: number }

export function readAria2(text: string, args: readonly string[] = []): ReadResult {
  const found = new Findings();
  const opts = new Map<string, Option>();
  text.split("\n").forEach((raw, i) => {
    const t = raw.replace(/\r$/, "").trim();
    if (t === "" || t.startsWith("#")) return;
    const eq = t.indexOf("=");
    if (eq <= 0) return found.syntax("expected option=value", i + 1, 1);
    const key = t.slice(0, eq).trim();
    if (WANTED.has(key)) opts.set(key, { value: t.slice(eq + 1).trim(), line: i + 1 });
  });
  for (const [key, value] of commandLine(args)) if (WANTED.has(key)) opts.set(key, { value });

  const flag = (key: string, fallback: boolean): boolean => {
    const o = opts.get(key);
    if (!o) return fallback;
    if (o.value === "true" || o.value === "") return true;
    if (o.value === "false") return false;
    found.value(`${key} must be true or false, not ${shown(o.value)}`, o.line);
    return fallback;
  };
  const ports = (key: string): PortRange => {
    const o = opts.get(key);
    const fallback = { from: 6881, to: 6999 };
    if (!o) return fallback;
    const r = portList(o.value);
    if (r === undefined) found.value(`${key} must be ports like 6881-6999 or 6881,6885, not ${shown(o.value)}`, o.line);
    return r ?? fallback;
  };

  const dht = flag("enable-dht", true) || flag("enable-dht6", false);
  const rpcPortOption = opts.get("rpc-listen-port");
  let rpcPort = 6800;
  if (rpcPortOption) {
    const n = wholeNumber(rpcPortOption.value, 1024, 65535);
    if (n === undefined) found.value(`rpc-listen-port must be a port from 1024 to 65535, not ${shown(rpcPortOption.value)}`, rpcPortOption.line);
    else rpcPort = n;
  }
  const listen = ports("listen-port");
  const iface = opts.get("interface")?.value.trim();
  const isAddress = iface !== undefined && (/^[\d.]+$/.test(iface) || iface.includes(":"));
  const settings: ClientSettings = {
    ports: listen,
    // aria2 tries the ports of the range in a random order at each start.
    random: listen.from !== listen.to,
    protocols: ["tcp"],
    dht,
    lsd: flag("bt-enable-lpd", false),
    natpmp: false,
    bind: iface ? (isAddress ? { interface: null, addresses: [iface] } : { interface: iface, addresses: [] }) : { interface: null, addresses: [] },
    webui: flag("enable-rpc", false) ? { port: rpcPort, address: flag("rpc-listen-all", false) ? "*" : "localhost" } : null,
    ...(dht ? { dhtPorts: ports("dht-listen-port") } : {}),
  };
  return { settings, problems: found.list };
}

/** "6881-6999", "6881,6885,6890-6899": the span from the lowest to the highest port. */
function portList(value: string): PortRange | undefined {
  const parts = value.split(",").map((p) => portRange(p));
  if (parts.length === 0 || parts.some((p) => p === undefined)) return undefined;
  const ranges = parts as PortRange[];
  return { from: Math.min(...ranges.map((r) => r.from)), to: Math.max(...ranges.map((r) => r.to)) };
}

/** Long options of an aria2c command line: "--name=value", "--name value", or a bare "--flag" (true). */
function commandLine(args: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith("--")) continue;
    const eq = a.indexOf("=");
    if (eq > 0) out.push([a.slice(2, eq), a.slice(eq + 1)]);
    else if (WANTED.has(a.slice(2)) && i + 1 < args.length && !args[i + 1]!.startsWith("-") && !/^(enable|bt-enable|rpc-listen-all)/.test(a.slice(2))) out.push([a.slice(2), args[++i]!]);
    else out.push([a.slice(2), "true"]);
  }
  return out;
}

/** Which aria2.conf a running aria2c reads: --conf-path, none with --no-conf, else ~/.aria2/aria2.conf or $XDG_CONFIG_HOME/aria2/aria2.conf. */
export function aria2ConfigOf(args: readonly string[], home: string, configHome: string, exists: (p: string) => boolean): string | null {
  if (args.includes("--no-conf") || args.includes("--no-conf=true")) return null;
  const explicit = commandLine(args).find(([k]) => k === "conf-path");
  if (explicit) return explicit[1];
  const legacy = join(home, ".aria2", "aria2.conf");
  return exists(legacy) ? legacy : join(configHome, "aria2", "aria2.conf");
}
