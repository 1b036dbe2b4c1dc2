// Policy values that are copied into generated rulesets as text: names (in rule
// comments), interface names, the log prefix and the log rate. Each is held to
// what every backend loads with the same meaning; nft, iptables-restore and
// the simulator must never disagree about one of them.
import type { Node } from "yaml";
import { displayValue } from "../errors.js";
import { describe, type Reader, type YamlNode } from "./reader.js";
import type { Rate, RateUnit } from "./types.js";

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;

export function readName(r: Reader, node: YamlNode, path: string): string | undefined {
  // As written: `name: 007` is the name "007", not the number 7.
  const name = r.text(node, path, "a name");
  if (name === undefined) return undefined;
  if (!NAME.test(name)) {
    r.error("POLICY_BAD_NAME", `"${displayValue(name)}" is not a valid name (letters, digits, "_", "." and "-", at most 32, starting with a letter or digit)`, node);
    return undefined;
  }
  return name;
}

/**
 * One interface, by its literal name. The kernel allows 1-15 bytes without "/",
 * ":" or white space (dev_valid_name), but the backends read some of the rest
 * differently: iptables takes a trailing "+" as a wildcard, nft a trailing "*",
 * and nft expands "$" inside a quoted string. So: letters, digits, "_", "." and
 * "-" only, which every backend and the simulator read as the same one name.
 */
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

export function readInterface(r: Reader, node: YamlNode, path: string): string | undefined {
  const v = r.string(node, path, "an interface name");
  if (v === undefined) return undefined;
  if (!IFNAME.test(v) || v === "." || v === "..") {
    r.error("POLICY_BAD_NAME", `"${displayValue(v)}" is not a Linux interface name (1-15 of A-Z a-z 0-9 _ . -)${interfaceHint(v)}`, node);
    return undefined;
  }
  return v;
}

function interfaceHint(v: string): string {
  if (/[+*]/.test(v)) return "; wildcards are not supported: name one interface exactly";
  if (v.includes("@")) return '; in "ip link" output the part from "@" on names the peer, not the interface';
  if (v.includes(":")) return '; "eth0:1" is an address label, not an interface: use "eth0"';
  if (Buffer.byteLength(v) > 15) return "; interface names are at most 15 bytes";
  return "";
}

/**
 * The kernel's LOG target keeps at most 29 characters of prefix; quotes and
 * backslashes would end or escape the quoted string in both backends, nft
 * expands "$name" inside it (then fails with "unknown identifier"), and "`"
 * and "'" are kept out in case a shell ever meets the text.
 */
const LOG_PREFIX = /^[\x20-\x7e]{1,29}$/;
const LOG_FORBIDDEN = /["\\$`']/;

export function readLogPrefix(r: Reader, node: YamlNode, where?: Node): string | undefined {
  const p = r.string(node, "log.prefix", "a text", where);
  if (p === undefined) return undefined;
  const bad = LOG_FORBIDDEN.exec(p)?.[0];
  if (!LOG_PREFIX.test(p) || bad !== undefined) {
    const why = bad !== undefined ? ` ("${bad}" is not allowed)` : "";
    r.error("POLICY_BAD_VALUE", `log prefix "${displayValue(p, 40)}" must be 1-29 printable ASCII characters without quotes, backslashes, "$" or "\`"${why}`, node);
    return undefined;
  }
  return p;
}

const UNITS: Record<string, RateUnit> = {
  s: "second", sec: "second", second: "second",
  m: "minute", min: "minute", minute: "minute",
  h: "hour", hour: "hour", d: "day", day: "day",
};

/**
 * Bounds that every backend loads (tried against iptables-nft, iptables-legacy
 * and nft 1.0). iptables' limit match stores the period in 1/10000 s
 * (iptables-extensions(8), "limit"), so iptables-restore refuses more than
 * 10000/second ("Rate too fast"). The kernel's xt_limit (iptables-legacy) then
 * multiplies by the burst of 5 (compile/base.ts) in 32 bits: 1/day and 3/day
 * overflow there ("Overflow, try lower"), so a daily rate starts at 4.
 */
const RATE_BOUNDS: Record<RateUnit, { min: number; max: number }> = {
  second: { min: 1, max: 10_000 },
  minute: { min: 1, max: 600_000 },
  hour: { min: 1, max: 999_999 },
  day: { min: 4, max: 999_999 },
};

export function readRate(r: Reader, node: YamlNode, path: string): Rate | undefined {
  const v = r.text(node, path, 'a rate such as "10/minute"');
  if (v === undefined) return undefined;
  const m = /^\s*([1-9][0-9]*)\s*\/\s*([a-z]+)\s*$/.exec(v);
  const unit = m ? UNITS[m[2]!] : undefined;
  if (!m || !unit) {
    r.error("POLICY_BAD_VALUE", `${describe(node)} is not a rate; write N/second, N/minute, N/hour or N/day with N ≥ 1`, node);
    return undefined;
  }
  const count = m[1]!.length > 9 ? Infinity : Number(m[1]);
  const { min, max } = RATE_BOUNDS[unit];
  if (count < min || count > max) {
    const shown = `${displayValue(m[1]!, 12)}/${unit}`;
    r.error("POLICY_BAD_VALUE", count > max
      ? `log rate ${shown} is faster than iptables can limit; the most is ${max}/${unit}`
      : `log rate ${shown} overflows iptables' limit match; the least is ${min}/${unit} (or use N/hour)`, node);
    return undefined;
  }
  return { count, unit };
}
