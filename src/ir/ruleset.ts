// The intermediate representation shared by compiler, emitters, parsers and
// simulator. It knows neither YAML nor any backend's syntax.
import type { Family } from "../net/address.js";
import type { PortRange } from "../net/port.js";
import type { Match } from "./match.js";
import type { Verdict } from "./verdict.js";

/** Why a rule exists, in the policy's words. */
export interface Origin {
  /** Policy path it came from ("admin[0]"), or "" for what every policy implies; for a rule read from another tool, "file:line". */
  path: string;
  /** One line in plain words: "client qbittorrent: inbound peer connections, TCP 6881"; for a rule read from another tool, its comment or its text. */
  intent: string;
  /** A rule read from another tool's ruleset: where it is and what it says there. */
  source?: RuleSource;
}

export interface RuleSource {
  /** The format it was read from. */
  format: "iptables-save" | "ip6tables-save" | "nft-json";
  file: string;
  /** 1-based line in the file (for JSON: of the rule object's start). */
  line: number;
  table: string;
  chain: string;
  /** 1-based position in its chain. */
  number: number;
  /** The rule as the tool writes it. */
  text: string;
  /** nft's handle of the rule (nft -a list ruleset shows it). */
  handle?: number;
  /** The program that wrote it, where recognisable: ufw, firewalld, Docker, fail2ban, libvirt, swarmgate. */
  writer?: string;
}

export interface Rule {
  matches: readonly Match[];
  verdict: Verdict;
  origin: Origin;
}

export type Hook = "prerouting" | "input" | "forward" | "output" | "postrouting";
export type ChainType = "filter" | "nat";

export interface BaseChainSpec {
  type: ChainType;
  hook: Hook;
  /** Netfilter priority: filter 0, dstnat -100, srcnat 100. */
  priority: number;
  policy: "accept" | "drop";
}

export interface Chain {
  name: string;
  /** Present on chains the kernel calls from a hook; absent on jump targets. */
  base?: BaseChainSpec;
  rules: readonly Rule[];
}

export type TableFamily = "inet" | "ip" | "ip6";

/** A named set of ports that rules refer to (PortMatch.set); its elements can change without touching a rule. */
export interface PortSet {
  name: string;
  ranges: readonly PortRange[];
  origin: Origin;
}

export interface Table {
  family: TableFamily;
  name: string;
  chains: readonly Chain[];
  /** Named port sets (nft writes them as sets; iptables keeps their rules in a chain of their own). */
  sets?: readonly PortSet[];
}

export interface Ruleset {
  tables: readonly Table[];
}

export const PRIORITY = { filter: 0, dstnat: -100, srcnat: 100 } as const;

/** Deeply freezes IR so that no stage can change what another stage sees. */
export function freeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) freeze(v);
  }
  return value;
}

/** The address families a rule can apply to, judged by its matches and a DNAT target. */
export function ruleFamilies(rule: Rule): Family[] {
  let families: Family[] = [4, 6];
  for (const m of rule.matches) {
    if (m.kind === "family" || m.kind === "saddr" || m.kind === "daddr" || m.kind === "icmptype") {
      families = families.filter((f) => f === m.family);
    } else if (m.kind === "protocol" && m.protocol !== "tcp" && m.protocol !== "udp") {
      families = families.filter((f) => f === (m.protocol === "icmp" ? 4 : 6));
    }
  }
  if (rule.verdict.kind === "dnat") families = families.filter((f) => f === (rule.verdict as { to: { family: Family } }).to.family);
  return families;
}
