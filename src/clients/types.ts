// What `swarmgate clients` reports. The JSON names here are public: renaming
// one breaks every script that reads `clients --json`.
import type { ErrorCode } from "../errors.js";

export type ClientKind = "qbittorrent" | "transmission" | "deluge" | "rtorrent" | "aria2";
export const CLIENT_KINDS: readonly ClientKind[] = ["qbittorrent", "transmission", "deluge", "rtorrent", "aria2"];

export interface PortRange { from: number; to: number }

/** Where the client binds its peer sockets. No interface and no addresses: every address. */
export interface Bind {
  interface: string | null;
  addresses: string[];
  /** Deluge's outgoing_interface, when set: the interface its outgoing peer connections leave by. */
  outgoing?: string;
}

/** A control interface (Web UI, RPC, SCGI): its TCP port and the address it binds ("*" every address). */
export interface WebUi { port: number; address: string }

/** A socket of the client's process in this network namespace. */
export interface ListeningSocket { protocol: "tcp" | "udp"; address: string; port: number; pid: number }

/** What a client's own config (and command line) says, with the client's defaults applied. */
export interface ClientSettings {
  /** The peer port, or the range it picks one from at start. */
  ports: PortRange;
  /** True when the port can differ at the next start. */
  random: boolean;
  protocols: ("tcp" | "udp")[];
  dht: boolean;
  lsd: boolean;
  /** The client maps its port on the router itself (UPnP or NAT-PMP). */
  natpmp: boolean;
  bind: Bind;
  webui: WebUi | null;
  /** DHT's own UDP ports, for clients that do not run DHT on the peer port (rTorrent, aria2). */
  dhtPorts?: PortRange;
}

export interface ClientReport extends ClientSettings {
  kind: ClientKind;
  /** null: the client runs with no config file (rtorrent -n, aria2c --no-conf). */
  config: string | null;
  user: string | null;
  /** Deluge only: deluged's own RPC port, which its GTK and console clients connect to. */
  daemon?: WebUi;
  listening: ListeningSocket[];
}

export type ProblemCode = Extract<ErrorCode, `CLIENT_CONFIG_${string}`>;

export interface Problem {
  code: ProblemCode;
  kind: ClientKind;
  file: string;
  line?: number;
  column?: number;
  message: string;
}

/** A reader's answer: the settings (null when the text cannot be used at all) and what was wrong. */
export interface ReadResult {
  settings: ClientSettings | null;
  problems: Omit<Problem, "kind" | "file">[];
}
