// qBittorrent 4.x: <config dir>/qBittorrent.conf (QSettings INI). Key names and
// defaults as in qBittorrent 4.5's session and preferences code. The legacy
// [Preferences] keys count as 4.5's upgrade step treats them: a file whose
// [Meta] MigrationVersion is below 2 has them copied over the new keys at
// start (whether or not the new key exists); from version 2 on they are ignored.
import { join } from "node:path";
import { parseQtIni, type IniValue } from "./ini.js";
import type { ClientSettings, PortRange, ReadResult } from "./types.js";
import { Findings, option, shown, wholeNumber } from "./values.js";

export interface QbittorrentContext {
  /** The process's command line after the program name, when it runs. */
  args?: readonly string[];
  /** net.ipv4.ip_local_port_range: where a port 0 (a new port at every start) comes from. */
  ephemeral?: PortRange;
}

/** qBittorrent with no Session\Port draws one from this range at its first start, then saves it. */
export const QBT_FIRST_START_RANGE: PortRange = { from: 1024, to: 65535 };

export function readQbittorrent(text: string, ctx: QbittorrentContext = {}): ReadResult {
  const found = new Findings();
  const ini = parseQtIni(text, found);
  const migration = wholeNumber(ini.get("Meta/MigrationVersion")?.value ?? "0", 0, 1000) ?? 0;
  const get = (key: string, legacy?: string): IniValue | undefined =>
    (legacy !== undefined && migration < 2 ? ini.get(legacy) : undefined) ?? ini.get(key);
  const flag = (key: string, legacy: string | undefined, fallback: boolean): boolean => {
    const v = get(key, legacy);
    if (v === undefined) return fallback;
    if (/^true$/i.test(v.value)) return true;
    if (/^false$/i.test(v.value)) return false;
    found.value(`${key.split("/").pop()} must be true or false, not ${shown(v.value)}; qBittorrent uses its default (${fallback})`, v.line);
    return fallback;
  };

  let port = portSetting(get("BitTorrent/Session/Port", "Preferences/Connection/PortRangeMin"), found);
  // Before migration 1, "use a random port" was a key of its own; the upgrade turns it into port 0.
  if (migration < 1 && /^true$/i.test(ini.get("BitTorrent/Session/UseRandomPort")?.value ?? "")) port = 0;
  const cliPort = option(ctx.args, "--torrenting-port");
  if (cliPort !== undefined && wholeNumber(cliPort, 1, 65535) !== undefined) port = Number(cliPort);
  let ports: PortRange;
  let random: boolean;
  if (port === undefined) [ports, random] = [QBT_FIRST_START_RANGE, true];
  else if (port === 0) [ports, random] = [ctx.ephemeral ?? { from: 32768, to: 60999 }, true];
  else [ports, random] = [{ from: port, to: port }, false];

  const dht = flag("BitTorrent/Session/DHTEnabled", "Preferences/Bittorrent/DHT", true);
  const lsd = flag("BitTorrent/Session/LSDEnabled", "Preferences/Bittorrent/LSD", true);
  const natpmp = flag("Network/PortForwardingEnabled", "Preferences/Connection/UPnP", true);
  const transport = btProtocol(get("BitTorrent/Session/BTProtocol"), found);
  // DHT runs on the peer port's UDP socket (libtorrent), so UDP is open whenever DHT is on.
  const protocols: ("tcp" | "udp")[] = [];
  if (transport !== "UTP") protocols.push("tcp");
  if (transport !== "TCP" || dht) protocols.push("udp");

  const iface = get("BitTorrent/Session/Interface", "Preferences/Connection/Interface")?.value ?? "";
  const address = get("BitTorrent/Session/InterfaceAddress", "Preferences/Connection/InterfaceAddress")?.value ?? "";
  let webPort = portSetting(get("Preferences/WebUI/Port"), found) || 8080;
  const cliWeb = option(ctx.args, "--webui-port");
  if (cliWeb !== undefined && wholeNumber(cliWeb, 1, 65535) !== undefined) webPort = Number(cliWeb);
  const webAddress = get("Preferences/WebUI/Address")?.value.trim() || "*";

  const settings: ClientSettings = {
    ports, random, protocols, dht, lsd, natpmp,
    bind: { interface: iface.trim() || null, addresses: address.trim() ? [address.trim()] : [] },
    webui: { port: webPort, address: webAddress },
  };
  return { settings, problems: found.list };
}

function portSetting(v: IniValue | undefined, found: Findings): number | undefined {
  if (v === undefined) return undefined;
  const n = wholeNumber(v.value, -1, 65535);
  if (n === undefined) {
    found.value(`a port must be a whole number from 0 to 65535, not ${shown(v.value)}`, v.line);
    return undefined;
  }
  return n < 0 ? undefined : n;
}

/** 4.5 reads only BTProtocol; the older uTPEnabled key is no longer consulted. */
function btProtocol(v: IniValue | undefined, found: Findings): "Both" | "TCP" | "UTP" {
  if (v === undefined) return "Both";
  const known = ["Both", "TCP", "UTP"] as const;
  const hit = known.find((k) => k === v.value.trim()) ?? (wholeNumber(v.value, 0, 2) !== undefined ? known[Number(v.value)] : undefined);
  if (hit === undefined) found.value(`Session\\BTProtocol must be Both, TCP or UTP, not ${shown(v.value)}`, v.line);
  return hit ?? "Both";
}

/** Where a running qBittorrent keeps its config: --profile and --configuration, else the user's. */
export function qbittorrentConfigOf(args: readonly string[], configHome: string): string {
  const profile = option(args, "--profile");
  const name = option(args, "--configuration");
  const dir = `qBittorrent${name ? `_${name}` : ""}`;
  return profile ? join(profile, dir, "config", "qBittorrent.conf") : join(configHome, dir, "qBittorrent.conf");
}
