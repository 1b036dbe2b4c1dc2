// The validated policy: plain data, every value already parsed and checked.
// `path` fields ("clients[0]") tie each part back to the file for messages
// and for the origin of every rule compiled from it.
import type { AutoPorts } from "./auto-ports.js";
import type { VpnSection } from "./vpn.js";
import type { Address } from "../net/address.js";
import type { PortRange } from "../net/port.js";
import type { Prefix } from "../net/prefix.js";

export type Protocol = "tcp" | "udp";
export type Role = "host" | "gateway";
export type RateUnit = "second" | "minute" | "hour" | "day";

export interface Position {
  line: number;
  column: number;
}

export interface PolicySource {
  file: string;
  text: string;
  /** Position of every node by policy path ("admin[1].from[0]"). */
  positions: ReadonlyMap<string, Position>;
}

export interface Policy {
  version: 1;
  role: Role;
  source: PolicySource;
  host?: HostSection;
  gateway?: GatewaySection;
  clients: Client[];
  outbound: Outbound;
  admin: AdminService[];
  forward: Forward[];
  icmp: "allow" | "deny";
  log: LogSettings | null;
  /** Host policies: traffic confined to a VPN tunnel (a kill switch), and the provider's port forwarding. */
  vpn?: VpnSection;
}

export interface InterfaceAddress {
  address: Address;
  /** The on-link network when written as "192.168.1.5/24", else the address alone. */
  network: Prefix;
}

export interface HostSection {
  interface?: string;
  addresses: InterfaceAddress[];
  /** Networks counted as the LAN (Local Service Discovery sources). */
  lan: Prefix[];
  dhcp: boolean;
}

export interface GatewaySection {
  wan: string;
  lan: string;
  lanNetwork: Prefix;
  lanNetwork6?: Prefix;
  masquerade: boolean;
}

export interface Client {
  path: string;
  name: string;
  ports: PortRange;
  protocols: Protocol[];
  lsd: boolean;
  /** `ports: auto`: the port was read from the client when the policy was loaded, and may move (swarmgate follow). */
  auto?: AutoPorts;
}

export interface Tracker {
  path: string;
  ports: PortRange[];
  protocols: Protocol[];
  /** Destinations; empty means any address. */
  to: Prefix[];
}

export interface Outbound {
  path: string;
  /** Every new outbound connection allowed ("outbound: any", or a gateway without an outbound section). */
  any: boolean;
  /** True when the policy file has no outbound section. */
  implicit: boolean;
  peers: boolean;
  trackers: Tracker[];
  /** DNS servers; "any" allows DNS to every address. */
  dns: Address[] | "any";
}

export interface AdminService {
  path: string;
  name: string;
  ports: PortRange;
  protocols: Protocol[];
  from: Prefix[];
}

export interface Forward {
  path: string;
  host: Address;
  host6?: Address;
  ports: PortRange;
  protocols: Protocol[];
}

export interface Rate {
  count: number;
  unit: RateUnit;
}

export interface LogSettings {
  prefix: string;
  rate: Rate;
}
