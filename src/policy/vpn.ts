// The `vpn:` section: which traffic must leave only through the tunnel
// (a kill switch), where the tunnel's endpoints are, and how the client's
// port is forwarded by the VPN provider. Users are named by name or uid; a
// name is looked up in the machine's /etc/passwd when the policy is loaded,
// and written into the ruleset as a number, so that the ruleset means the
// same thing wherever it is loaded.
import { readFileSync } from "node:fs";
import type { Node } from "yaml";
import { displayValue } from "../errors.js";
import { parseAddress, type Address } from "../net/address.js";
import type { Reader, YamlNode, Entry } from "./reader.js";
import { readInterface } from "./text-values.js";
import { readAddress, readPrefixList } from "./values.js";

export interface VpnEndpoint { address: Address; port: number; protocol: "udp" | "tcp" }
export interface VpnUser { name: string; uid: number }

export interface VpnSection {
  path: string;
  /** The tunnel interface (wg0, tun0). */
  interface: string;
  endpoints: VpnEndpoint[];
  /** users: only these users' traffic is confined; machine: everything but loopback, the LAN and the endpoints. */
  scope: "users" | "machine";
  users: VpnUser[];
  /** Whether the tunnel carries IPv6; without it, confined IPv6 is dropped everywhere. */
  ipv6: boolean;
  /** Networks confined traffic may still reach outside the tunnel. */
  lan: import("../net/prefix.js").Prefix[];
  portForwarding?: { protocol: "natpmp" | "pcp" | "auto"; gateway?: Address };
}

/** Users by name, from a passwd(5) text; the machine's /etc/passwd unless a test gives one. */
export type UserLookup = (name: string) => number | undefined;

export function passwdLookup(text?: string): UserLookup {
  let users: Map<string, number> | undefined;
  return (name) => {
    if (!users) {
      users = new Map();
      let t = text;
      if (t === undefined) { try { t = readFileSync("/etc/passwd", "utf8"); } catch { t = ""; } }
      for (const line of t.split("\n")) {
        const f = line.split(":");
        if (f.length >= 3 && /^\d+$/.test(f[2]!)) users.set(f[0]!, Number(f[2]));
      }
    }
    return users.get(name);
  };
}

const ENDPOINT = /^(?:\[([^\]]+)\]|([^:/[\]]+)):(\d{1,5})(?:\/(udp|tcp))?$/;

function readEndpoint(r: Reader, node: YamlNode, path: string): VpnEndpoint | undefined {
  const v = r.string(node, path, 'an endpoint "ADDRESS:PORT/PROTO" (IPv6 in brackets)');
  if (v === undefined) return undefined;
  const m = ENDPOINT.exec(v);
  const address = m ? parseAddress(m[1] ?? m[2]!) : undefined;
  const port = m ? Number(m[3]) : 0;
  if (!m || !address || (m[1] !== undefined && address.family !== 6) || port < 1 || port > 65535) {
    r.error("POLICY_BAD_VALUE", `${path} must be ADDRESS:PORT/PROTO, e.g. "198.51.100.10:51820/udp" or "[2001:db8::10]:51820/udp", not ${displayValue(v, 80)}`, node);
    return undefined;
  }
  return { address, port, protocol: (m[4] as "udp" | "tcp" | undefined) ?? "udp" };
}

export function readVpn(r: Reader, node: YamlNode, where: Node, users: UserLookup): VpnSection | undefined {
  const keys = ["interface", "endpoints", "users", "scope", "ipv6", "lan", "port_forwarding"];
  const m = r.map(node, "vpn", keys, ["interface", "endpoints"], where);
  if (!m) return undefined;
  const val = (k: string): YamlNode | undefined => (m.get(k) as Entry | undefined)?.node;
  const iface = m.has("interface") ? readInterface(r, val("interface")!, "vpn.interface") : undefined;
  const endpoints = m.has("endpoints") ? r.list(val("endpoints")!, "vpn.endpoints").flatMap((n, i) => readEndpoint(r, n, `vpn.endpoints[${i}]`) ?? []) : [];
  if (m.has("endpoints") && endpoints.length === 0 && r.list(val("endpoints")!, "vpn.endpoints").length === 0) {
    r.error("POLICY_BAD_VALUE", "vpn.endpoints needs at least one endpoint: the tunnel must be able to come up", val("endpoints"));
  }
  const scopeText = m.has("scope") ? r.string(val("scope")!, "vpn.scope", '"users" or "machine"') : "users";
  if (scopeText !== undefined && scopeText !== "users" && scopeText !== "machine") r.error("POLICY_BAD_VALUE", `vpn.scope must be "users" or "machine", not ${displayValue(scopeText, 40)}`, val("scope"));
  const scope = scopeText === "machine" ? "machine" : "users";
  const confined: VpnUser[] = [];
  if (m.has("users")) {
    r.list(val("users")!, "vpn.users").forEach((n, i) => {
      const text = r.text(n, `vpn.users[${i}]`, "a user name or uid");
      if (text === undefined) return;
      const uid = /^\d{1,10}$/.test(text) ? Number(text) : users(text);
      if (uid === undefined || uid > 4294967294) { r.error("POLICY_BAD_VALUE", `vpn.users[${i}]: no user ${displayValue(text, 40)} in /etc/passwd (give a user name of this machine, or a uid)`, n); return; }
      if (!confined.some((u) => u.uid === uid)) confined.push({ name: text, uid });
    });
  }
  if (scope === "users" && confined.length === 0 && scopeText !== undefined) {
    r.error("POLICY_MISSING_KEY", 'vpn.users is needed with scope "users" (the BitTorrent client\'s user, e.g. debian-transmission); or say scope: machine', m.has("users") ? val("users") : where);
  }
  const ipv6 = m.has("ipv6") ? r.boolean(val("ipv6")!, "vpn.ipv6") : false;
  const lan = m.has("lan") ? readPrefixList(r, val("lan")!, "vpn.lan") : undefined;
  let portForwarding: VpnSection["portForwarding"];
  if (m.has("port_forwarding")) {
    const pf = r.map(val("port_forwarding")!, "vpn.port_forwarding", ["protocol", "gateway"], ["protocol"]);
    const protocol = pf?.has("protocol") ? r.string((pf.get("protocol") as Entry).node, "vpn.port_forwarding.protocol", "natpmp, pcp or auto") : undefined;
    if (protocol !== undefined && !["natpmp", "pcp", "auto"].includes(protocol)) r.error("POLICY_BAD_VALUE", `vpn.port_forwarding.protocol must be natpmp, pcp or auto, not ${displayValue(protocol, 40)}`, (pf!.get("protocol") as Entry).node);
    const gateway = pf?.has("gateway") ? readAddress(r, (pf.get("gateway") as Entry).node, "vpn.port_forwarding.gateway") : undefined;
    if (protocol === "natpmp" || protocol === "pcp" || protocol === "auto") portForwarding = { protocol, ...(gateway && { gateway }) };
  }
  if (iface === undefined || ipv6 === undefined) return undefined;
  return { path: "vpn", interface: iface, endpoints, scope, users: confined, ipv6, lan: lan ?? [], ...(portForwarding && { portForwarding }) };
}
