// Transmission: <config dir>/settings.json. Keys and defaults as
// `transmission-daemon --dump-settings` prints them (3.00); Transmission 4.1
// writes the same settings in snake_case, which win when both are present.
// Command-line options of transmission-daemon override the file.
import { join } from "node:path";
import { Keys, parseObject } from "./json.js";
import type { ClientSettings, ReadResult } from "./types.js";
import { Findings, option, wholeNumber } from "./values.js";

const both = (kebab: string): string[] => [kebab.replace(/-/g, "_"), kebab];

export function readTransmission(text: string, args: readonly string[] = []): ReadResult {
  const found = new Findings();
  // transmission-daemon treats an empty settings.json as no settings at all.
  const obj = text.trim() === "" ? {} : parseObject(text, found);
  if (obj === undefined) return { settings: null, problems: found.list };
  const k = new Keys(text, obj, found);

  let port = k.int(both("peer-port"), 0, 65535, 51413);
  const cliPort = option(args, "--peerport", "-P");
  if (cliPort !== undefined && wholeNumber(cliPort, 1, 65535) !== undefined) port = Number(cliPort);
  const random = k.bool(both("peer-port-random-on-start"), false);
  let low = k.int(both("peer-port-random-low"), 0, 65535, 49152);
  let high = k.int(both("peer-port-random-high"), 0, 65535, 65535);
  if (low > high) [low, high] = [high, low];

  const dht = switched(args, "-o", "--dht", "-O", "--no-dht") ?? k.bool(both("dht-enabled"), true);
  const lsd = switched(args, "-y", "--lpd", "-Y", "--no-lpd") ?? k.bool(both("lpd-enabled"), false);
  const natpmp = switched(args, "-m", "--portmap", "-M", "--no-portmap") ?? k.bool(both("port-forwarding-enabled"), true);
  const utp = k.bool(both("utp-enabled"), true);
  const v4 = option(args, "--bind-address-ipv4", "-i") ?? k.str(both("bind-address-ipv4"), "0.0.0.0");
  const v6 = option(args, "--bind-address-ipv6", "-I") ?? k.str(both("bind-address-ipv6"), "::");
  const rpcEnabled = k.bool(both("rpc-enabled"), true);
  let rpcPort = k.int(both("rpc-port"), 1, 65535, 9091);
  const cliRpc = option(args, "--port", "-p");
  if (cliRpc !== undefined && wholeNumber(cliRpc, 1, 65535) !== undefined) rpcPort = Number(cliRpc);
  const rpcAddress = option(args, "--rpc-bind-address", "-r") ?? k.str(both("rpc-bind-address"), "0.0.0.0");

  const settings: ClientSettings = {
    ports: random ? { from: low, to: high } : { from: port, to: port },
    random,
    // DHT and uTP both use UDP on the peer port.
    protocols: utp || dht ? ["tcp", "udp"] : ["tcp"],
    dht, lsd, natpmp,
    bind: { interface: null, addresses: [v4, v6] },
    webui: rpcEnabled ? { port: rpcPort, address: rpcAddress } : null,
  };
  return { settings, problems: found.list };
}

/** An on/off option pair; the last one given wins. */
function switched(args: readonly string[], on: string, onLong: string, off: string, offLong: string): boolean | undefined {
  let result: boolean | undefined;
  for (const a of args) {
    if (a === on || a === onLong) result = true;
    if (a === off || a === offLong) result = false;
  }
  return result;
}

/** Where a running transmission-daemon keeps its settings: -g, $TRANSMISSION_HOME, else the user's. */
export function transmissionConfigOf(args: readonly string[], env: ReadonlyMap<string, string>, configHome: string): string {
  const dir = option(args, "--config-dir", "-g") ?? env.get("TRANSMISSION_HOME") ?? join(configHome, "transmission-daemon");
  return join(dir, "settings.json");
}
