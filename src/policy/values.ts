// Readers for the policy's value types: ports, protocols, addresses, names.
import type { Address, Family } from "../net/address.js";
import { parsePortRange, type PortRange } from "../net/port.js";
import { parsePrefix, type Prefix } from "../net/prefix.js";
import { describe, label, type Reader, type YamlNode } from "./reader.js";
import type { InterfaceAddress, Protocol, Rate, RateUnit } from "./types.js";

export function readPorts(r: Reader, node: YamlNode, path: string): PortRange | undefined {
  const v = r.scalar(node, path, 'a port (1-65535) or a range "A-B"');
  if (v === undefined) return undefined;
  const parsed = parsePortRange(v);
  if (!parsed.ok) { r.error(parsed.code, parsed.reason, node); return undefined; }
  return parsed.range;
}

export function readPortList(r: Reader, node: YamlNode, path: string): PortRange[] {
  return r.list(node, path).flatMap((item, i) => readPorts(r, item, `${path}[${i}]`) ?? []);
}

const PROTOCOLS: readonly Protocol[] = ["tcp", "udp"];

/** A list of protocols; absent means the given default. */
export function readProtocols(r: Reader, node: YamlNode | undefined, path: string, fallback: Protocol[]): Protocol[] {
  if (node === undefined) return fallback;
  const out: Protocol[] = [];
  const items = r.list(node, path);
  items.forEach((item, i) => {
    const v = r.string(item, `${path}[${i}]`, '"tcp" or "udp"');
    if (v === undefined) return;
    const p = v.toLowerCase() as Protocol;
    if (!PROTOCOLS.includes(p)) r.error("POLICY_BAD_VALUE", `unknown protocol "${v}" (use tcp or udp)`, item);
    else if (!out.includes(p)) out.push(p);
  });
  if (items.length === 0) r.error("POLICY_BAD_VALUE", `${label(path)} must name at least one protocol`, node);
  return out;
}

export function readAddress(r: Reader, node: YamlNode, path: string, family?: Family): Address | undefined {
  const v = r.string(node, path, "an IP address");
  if (v === undefined) return undefined;
  const parsed = parsePrefix(v.trim());
  if (!parsed.ok || v.includes("/")) {
    r.error("POLICY_BAD_ADDRESS", parsed.ok ? `"${v}" is a network; ${label(path)} needs a single address` : parsed.reason, node);
    return undefined;
  }
  if (family !== undefined && parsed.address.family !== family) {
    r.error("POLICY_FAMILY_MISMATCH", `${label(path)} must be an IPv${family} address, not "${v}"`, node);
    return undefined;
  }
  return parsed.address;
}

export function readPrefix(r: Reader, node: YamlNode, path: string, family?: Family): Prefix | undefined {
  const v = r.string(node, path, "an IP address or network (CIDR)");
  if (v === undefined) return undefined;
  const parsed = parsePrefix(v.trim());
  if (!parsed.ok) { r.error("POLICY_BAD_ADDRESS", parsed.reason, node); return undefined; }
  if (family !== undefined && parsed.prefix.family !== family) {
    r.error("POLICY_FAMILY_MISMATCH", `${label(path)} must be an IPv${family} network, not "${v}"`, node);
    return undefined;
  }
  return parsed.prefix;
}

export function readPrefixList(r: Reader, node: YamlNode, path: string): Prefix[] {
  return r.list(node, path).flatMap((item, i) => readPrefix(r, item, `${path}[${i}]`) ?? []);
}

/** "192.168.1.5" or "192.168.1.5/24" (an address and its on-link network). */
export function readInterfaceAddress(r: Reader, node: YamlNode, path: string): InterfaceAddress | undefined {
  const v = r.string(node, path, "an IP address");
  if (v === undefined) return undefined;
  const parsed = parsePrefix(v.trim(), "interface");
  if (!parsed.ok) { r.error("POLICY_BAD_ADDRESS", parsed.reason, node); return undefined; }
  return { address: parsed.address, network: parsed.prefix };
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;

export function readName(r: Reader, node: YamlNode, path: string): string | undefined {
  const v = r.scalar(node, path, "a name");
  if (v === undefined) return undefined;
  const name = String(v);
  if (!NAME.test(name)) {
    r.error("POLICY_BAD_NAME", `"${name}" is not a valid name (letters, digits, "_", "." and "-", at most 32, starting with a letter or digit)`, node);
    return undefined;
  }
  return name;
}

// Linux interface names: at most 15 bytes, no "/", whitespace, quotes or ":".
const IFNAME = /^[A-Za-z0-9_.@+-]{1,15}$/;

export function readInterface(r: Reader, node: YamlNode, path: string): string | undefined {
  const v = r.string(node, path, "an interface name");
  if (v === undefined) return undefined;
  if (!IFNAME.test(v) || v === "." || v === "..") {
    r.error("POLICY_BAD_NAME", `"${v}" is not a Linux interface name (at most 15 of A-Z a-z 0-9 _ . @ + -)`, node);
    return undefined;
  }
  return v;
}

const UNITS: Record<string, RateUnit> = {
  s: "second", sec: "second", second: "second",
  m: "minute", min: "minute", minute: "minute",
  h: "hour", hour: "hour", d: "day", day: "day",
};

export function readRate(r: Reader, node: YamlNode, path: string): Rate | undefined {
  const v = r.scalar(node, path, 'a rate such as "10/minute"');
  if (v === undefined) return undefined;
  const m = /^\s*([0-9]{1,6})\s*\/\s*([a-z]+)\s*$/.exec(String(v));
  const unit = m ? UNITS[m[2]!] : undefined;
  if (!m || !unit || Number(m[1]) < 1) {
    r.error("POLICY_BAD_VALUE", `${describe(node)} is not a rate; write N/second, N/minute, N/hour or N/day with N ≥ 1`, node);
    return undefined;
  }
  return { count: Number(m[1]), unit };
}
