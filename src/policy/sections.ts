// One reader per section of the policy file. Each returns what it could read
// and leaves its complaints in the Reader.
import { isMap, isScalar, type Node } from "yaml";
import { CLIENT_KINDS, type AutoPorts, type AutoSpec, type ClientKind } from "./auto-ports.js";
import { displayValue } from "../errors.js";
import type { Address } from "../net/address.js";
import type { Reader, YamlNode, Entry } from "./reader.js";
import type {
  AdminService, Client, Forward, GatewaySection, HostSection, LogSettings, Outbound, Tracker,
} from "./types.js";
import {
  readAddress, readInterface, readInterfaceAddress, readLogPrefix, readName, readPortList, readPorts, readPrefix,
  readPrefixList, readProtocols, readRate,
} from "./values.js";

export const TOP_KEYS = ["version", "host", "gateway", "clients", "outbound", "admin", "forward", "icmp", "log", "vpn"] as const;

const BOTH: ("tcp" | "udp")[] = ["tcp", "udp"];

/** The value of an entry, or undefined when the key is absent. */
const val = (m: Map<string, Entry>, key: string): YamlNode | undefined => m.get(key)?.node;
const keyOf = (m: Map<string, Entry>, key: string): Node | undefined => m.get(key)?.keyNode;

export function readHost(r: Reader, node: YamlNode, where: Node): HostSection | undefined {
  const m = r.map(node, "host", ["interface", "addresses", "lan", "dhcp"], [], where);
  if (!m) return undefined;
  const iface = m.has("interface") ? readInterface(r, val(m, "interface")!, "host.interface") : undefined;
  const addresses = m.has("addresses")
    ? r.list(val(m, "addresses")!, "host.addresses", keyOf(m, "addresses")).flatMap((n, i) => readInterfaceAddress(r, n, `host.addresses[${i}]`) ?? [])
    : [];
  const lan = m.has("lan") ? readPrefixList(r, val(m, "lan")!, "host.lan") : [];
  const dhcp = m.has("dhcp") ? r.boolean(val(m, "dhcp")!, "host.dhcp", keyOf(m, "dhcp")) ?? false : false;
  return { ...(iface !== undefined && { interface: iface }), addresses, lan, dhcp };
}

export function readGateway(r: Reader, node: YamlNode, where: Node): GatewaySection | undefined {
  const m = r.map(node, "gateway", ["wan", "lan", "lan_network", "lan_network6", "masquerade"], ["wan", "lan", "lan_network"], where);
  if (!m) return undefined;
  const wan = m.has("wan") ? readInterface(r, val(m, "wan")!, "gateway.wan") : undefined;
  const lan = m.has("lan") ? readInterface(r, val(m, "lan")!, "gateway.lan") : undefined;
  if (wan !== undefined && wan === lan) r.error("POLICY_BAD_VALUE", `the WAN and LAN interfaces must differ (both are "${wan}")`, val(m, "lan"));
  const lanNetwork = m.has("lan_network") ? readPrefix(r, val(m, "lan_network")!, "gateway.lan_network", 4) : undefined;
  const lanNetwork6 = m.has("lan_network6") ? readPrefix(r, val(m, "lan_network6")!, "gateway.lan_network6", 6) : undefined;
  const masquerade = m.has("masquerade") ? r.boolean(val(m, "masquerade")!, "gateway.masquerade", keyOf(m, "masquerade")) : true;
  if (wan === undefined || lan === undefined || lanNetwork === undefined || masquerade === undefined) return undefined;
  return { wan, lan, lanNetwork, ...(lanNetwork6 && { lanNetwork6 }), masquerade };
}

export function readClients(r: Reader, node: YamlNode, where: Node): Client[] {
  return r.list(node, "clients", where).flatMap((item, i): Client[] => {
    const path = `clients[${i}]`;
    const m = r.map(item, path, ["name", "ports", "protocols", "lsd"], ["name", "ports"], where);
    if (!m) return [];
    const name = m.has("name") ? readName(r, val(m, "name")!, `${path}.name`) : undefined;
    const auto = m.has("ports") ? readAutoPorts(r, val(m, "ports")!, `${path}.ports`) : undefined;
    const ports = auto ? auto.ports : m.has("ports") && auto !== null ? readPorts(r, val(m, "ports")!, `${path}.ports`) : undefined;
    const protocols = readProtocols(r, val(m, "protocols"), `${path}.protocols`, BOTH);
    const lsd = m.has("lsd") ? r.boolean(val(m, "lsd")!, `${path}.lsd`, keyOf(m, "lsd")) : false;
    if (name === undefined || ports === undefined || lsd === undefined) return [];
    return [{ path, name, ports, protocols, lsd, ...(auto && { auto }) }];
  });
}

/**
 * `ports: auto` or `ports: {from: KIND, user: NAME, config: PATH}`: the port
 * read from the client now. undefined: the ports are written out (read them
 * as usual); null: an auto entry that failed, already reported.
 */
function readAutoPorts(r: Reader, node: YamlNode, path: string): AutoPorts | null | undefined {
  let spec: AutoSpec;
  if (isScalar(node) && node.value === "auto") spec = {};
  else if (isMap(node)) {
    const m = r.map(node, path, ["from", "user", "config"]);
    if (!m) return null;
    const from = m.has("from") ? r.string(val(m, "from")!, `${path}.from`, `one of ${CLIENT_KINDS.join(", ")}`) : undefined;
    if (from !== undefined && !(CLIENT_KINDS as readonly string[]).includes(from)) {
      r.error("POLICY_BAD_VALUE", `${path}.from must be one of ${CLIENT_KINDS.join(", ")}, not ${displayValue(from, 40)}`, val(m, "from"));
      return null;
    }
    const user = m.has("user") ? r.text(val(m, "user")!, `${path}.user`, "a user name or uid") : undefined;
    const config = m.has("config") ? r.string(val(m, "config")!, `${path}.config`, "a path") : undefined;
    if ((m.has("from") && from === undefined) || (m.has("user") && user === undefined) || (m.has("config") && config === undefined)) return null;
    spec = { ...(from && { from: from as ClientKind }), ...(user !== undefined && { user }), ...(config !== undefined && { config }) };
  } else return undefined;
  if (!r.autoPorts) {
    r.error("POLICY_AUTO_PORTS", `${path}: auto needs the BitTorrent client's configuration, which is not read here; write the port itself`, node);
    return null;
  }
  const found = r.autoPorts(spec);
  if (!found.ok) { r.error("POLICY_AUTO_PORTS", displayValue(found.message, 2000), node); return null; }
  r.record(path, node);
  return found.value;
}

export function readAdmin(r: Reader, node: YamlNode, where: Node): AdminService[] {
  return r.list(node, "admin", where).flatMap((item, i): AdminService[] => {
    const path = `admin[${i}]`;
    const m = r.map(item, path, ["name", "port", "protocols", "from"], ["name", "port", "from"], where);
    if (!m) return [];
    const name = m.has("name") ? readName(r, val(m, "name")!, `${path}.name`) : undefined;
    const ports = m.has("port") ? readPorts(r, val(m, "port")!, `${path}.port`) : undefined;
    const protocols = readProtocols(r, val(m, "protocols"), `${path}.protocols`, ["tcp"]);
    const fromItems = m.has("from") ? r.list(val(m, "from")!, `${path}.from`, keyOf(m, "from")) : undefined;
    const from = (fromItems ?? []).flatMap((n, j) => readPrefix(r, n, `${path}.from[${j}]`) ?? []);
    if (fromItems?.length === 0) {
      r.error("POLICY_BAD_VALUE", `"${path}.from" must name at least one source address or network`, val(m, "from"));
    }
    if (name === undefined || ports === undefined || from.length === 0) return [];
    return [{ path, name, ports, protocols, from }];
  });
}

export function readForward(r: Reader, node: YamlNode, where: Node): Forward[] {
  return r.list(node, "forward", where).flatMap((item, i): Forward[] => {
    const path = `forward[${i}]`;
    const m = r.map(item, path, ["host", "host6", "ports", "protocols"], ["host", "ports"], where);
    if (!m) return [];
    const host = m.has("host") ? readAddress(r, val(m, "host")!, `${path}.host`, 4) : undefined;
    const host6 = m.has("host6") ? readAddress(r, val(m, "host6")!, `${path}.host6`, 6) : undefined;
    const ports = m.has("ports") ? readPorts(r, val(m, "ports")!, `${path}.ports`) : undefined;
    const protocols = readProtocols(r, val(m, "protocols"), `${path}.protocols`, BOTH);
    if (host === undefined || ports === undefined) return [];
    return [{ path, host, ...(host6 && { host6 }), ports, protocols }];
  });
}

/** `outbound: any`, or a mapping of what the machine may open. */
export function readOutbound(r: Reader, node: YamlNode, where: Node): Outbound {
  const base: Outbound = { path: "outbound", any: false, implicit: false, peers: false, trackers: [], dns: [] };
  if (node !== null && "value" in node && node.value === "any") {
    r.record("outbound", node);
    return { ...base, any: true };
  }
  const m = r.map(node, "outbound", ["peers", "trackers", "dns"], [], where);
  if (!m) return base;
  const peers = m.has("peers") ? r.boolean(val(m, "peers")!, "outbound.peers", keyOf(m, "peers")) ?? false : false;
  const trackers = m.has("trackers") ? readTrackers(r, val(m, "trackers")!, keyOf(m, "trackers")!) : [];
  let dns: Address[] | "any" = [];
  const dnsNode = val(m, "dns");
  if (dnsNode !== undefined && dnsNode !== null && "value" in dnsNode && dnsNode.value === "any") dns = "any";
  else if (dnsNode !== undefined) {
    dns = r.list(dnsNode, "outbound.dns", keyOf(m, "dns")).flatMap((n, i) => readAddress(r, n, `outbound.dns[${i}]`) ?? []);
  }
  return { ...base, peers, trackers, dns };
}

/** Each tracker entry is a port, a range, or { ports, to, protocols }. */
function readTrackers(r: Reader, node: YamlNode, where: Node): Tracker[] {
  return r.list(node, "outbound.trackers", where).flatMap((item, i): Tracker[] => {
    const path = `outbound.trackers[${i}]`;
    if (item !== null && "items" in item) {
      const m = r.map(item, path, ["ports", "to", "protocols"], ["ports"], where);
      if (!m) return [];
      const ports = m.has("ports") ? readPortList(r, val(m, "ports")!, `${path}.ports`) : [];
      const to = m.has("to") ? readPrefixList(r, val(m, "to")!, `${path}.to`) : [];
      const protocols = readProtocols(r, val(m, "protocols"), `${path}.protocols`, BOTH);
      return ports.length === 0 ? [] : [{ path, ports, protocols, to }];
    }
    const ports = readPorts(r, item, path);
    return ports ? [{ path, ports: [ports], protocols: BOTH, to: [] }] : [];
  });
}

export function readIcmp(r: Reader, node: YamlNode, where: Node): "allow" | "deny" {
  const v = r.string(node, "icmp", '"allow" or "deny"', where);
  if (v === "allow" || v === "deny") return v;
  if (v !== undefined) r.error("POLICY_BAD_VALUE", `icmp must be "allow" or "deny", not "${displayValue(v)}"`, node);
  return "allow";
}

export const DEFAULT_LOG: LogSettings = { prefix: "swarmgate: ", rate: { count: 10, unit: "minute" } };

export function readLog(r: Reader, node: YamlNode, where: Node): LogSettings | null {
  if (node !== null && "value" in node && node.value === false) { r.record("log", node); return null; }
  const m = r.map(node, "log", ["prefix", "rate"], [], where);
  if (!m) return DEFAULT_LOG;
  const prefix = m.has("prefix") ? readLogPrefix(r, val(m, "prefix")!, keyOf(m, "prefix")) ?? DEFAULT_LOG.prefix : DEFAULT_LOG.prefix;
  const rate = m.has("rate") ? readRate(r, val(m, "rate")!, "log.rate") ?? DEFAULT_LOG.rate : DEFAULT_LOG.rate;
  return { prefix, rate };
}
