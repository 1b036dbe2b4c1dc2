// Readers for the policy's value types: ports, protocols, addresses, names.
// Every value that reaches a generated ruleset is checked against what every
// backend accepts, so that `check` refuses what no backend could load; every
// value echoed in a message goes through displayValue.
import { displayValue } from "../errors.js";
import { embeddedIpv4, formatAddress, type Address, type Family } from "../net/address.js";
import { parsePortRange, type PortRange } from "../net/port.js";
import { parsePrefix, type Prefix, type PrefixParse } from "../net/prefix.js";
import { label, type Reader, type YamlNode } from "./reader.js";
import type { InterfaceAddress, Protocol } from "./types.js";

export { readInterface, readLogPrefix, readName, readRate } from "./text-values.js";

export function readPorts(r: Reader, node: YamlNode, path: string): PortRange | undefined {
  // The text as written: YAML would turn 0x1A, 1e3 or 6881.0 into a plausible port.
  const v = r.text(node, path, 'a port (1-65535) or a range "A-B"');
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
    if (!PROTOCOLS.includes(p)) r.error("POLICY_BAD_VALUE", `unknown protocol "${displayValue(v)}" (use tcp or udp)`, item);
    else if (!out.includes(p)) out.push(p);
  });
  if (items.length === 0) r.error("POLICY_BAD_VALUE", `${label(path)} must name at least one protocol`, node);
  return out;
}

/** A parsed address or prefix, or undefined after reporting (IPv4-mapped IPv6 included). */
function parseChecked(r: Reader, node: YamlNode, text: string, hostBits: "reject" | "interface"): (PrefixParse & { ok: true }) | undefined {
  const written = text.trim();
  const parsed = parsePrefix(written, hostBits);
  if (!parsed.ok) { r.error("POLICY_BAD_ADDRESS", parsed.reason, node); return undefined; }
  const v4 = parsed.prefix.length >= 96 ? embeddedIpv4(parsed.address) : undefined;
  if (v4 !== undefined) {
    const slash = written.includes("/") ? `/${parsed.prefix.length - 96}` : "";
    r.error("POLICY_BAD_ADDRESS",
      `"${displayValue(written)}" is an IPv4 address written as IPv6, which no IPv4 packet matches; write the IPv4 address ${formatAddress(v4)}${slash} instead`,
      node);
    return undefined;
  }
  return parsed;
}

export function readAddress(r: Reader, node: YamlNode, path: string, family?: Family): Address | undefined {
  const v = r.string(node, path, "an IP address");
  if (v === undefined) return undefined;
  const parsed = parseChecked(r, node, v, "reject");
  if (!parsed) return undefined;
  if (v.includes("/")) {
    r.error("POLICY_BAD_ADDRESS", `"${displayValue(v)}" is a network; ${label(path)} needs a single address`, node);
    return undefined;
  }
  if (family !== undefined && parsed.address.family !== family) {
    r.error("POLICY_FAMILY_MISMATCH", `${label(path)} must be an IPv${family} address, not "${displayValue(v)}"`, node);
    return undefined;
  }
  return parsed.address;
}

export function readPrefix(r: Reader, node: YamlNode, path: string, family?: Family): Prefix | undefined {
  const v = r.string(node, path, "an IP address or network (CIDR)");
  if (v === undefined) return undefined;
  const parsed = parseChecked(r, node, v, "reject");
  if (!parsed) return undefined;
  if (family !== undefined && parsed.prefix.family !== family) {
    r.error("POLICY_FAMILY_MISMATCH", `${label(path)} must be an IPv${family} network, not "${displayValue(v)}"`, node);
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
  const parsed = parseChecked(r, node, v, "interface");
  if (!parsed) return undefined;
  return { address: parsed.address, network: parsed.prefix };
}
