// Small helpers that more than one backend needs, and the one place where text
// that came from the user (file names, names, log prefixes, interface names)
// is made safe for the syntax it is written into. The policy loader validates
// these values too; the emitters do not rely on it (defence in depth).
import { displayValue, userError } from "../errors.js";
import type { L4Protocol, Match } from "../ir/match.js";
import type { Origin } from "../ir/ruleset.js";

/** The protocol that a port, flag or ICMP-type match in the rule already implies. */
export function protocolOf(matches: readonly Match[]): L4Protocol | undefined {
  for (const m of matches) {
    if (m.kind === "protocol") return m.protocol;
    if (m.kind === "dport" || m.kind === "sport") return m.protocol;
    if (m.kind === "tcpflags") return "tcp";
    if (m.kind === "icmptype") return m.family === 4 ? "icmp" : "icmpv6";
  }
  return undefined;
}

/** True when another match of the rule implies this protocol match. */
export function impliedProtocol(matches: readonly Match[], m: Match & { kind: "protocol" }): boolean {
  return matches.some((o) => o !== m && o.kind !== "protocol" && protocolOf([o]) === m.protocol);
}

// C0 and C1 controls, DEL, and the Unicode line and paragraph separators: a
// newline ends a `#` comment (the next line is a command to nft, sh and
// iptables-restore) and ends a rule line in iptables-restore input.
const CONTROL = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/gu;

/** Text for a `#` comment line: control characters written as visible \xNN escapes. */
export function commentText(text: string): string {
  return text.replace(CONTROL, (c) => {
    const code = c.codePointAt(0)!;
    return code > 0xff ? `\\u${code.toString(16)}` : `\\x${code.toString(16).padStart(2, "0")}`;
  });
}

/**
 * Text inside a double-quoted string of nft or iptables-restore input. nft has
 * no escape for `"` (a backslash is literal) and iptables-restore treats `\`
 * as an escape, so both become `'`; control characters become `?`.
 */
export function quotedText(text: string): string {
  return text.replace(/["\\]/g, "'").replace(CONTROL, "?");
}

/** Cuts text to at most maxBytes of UTF-8, marking the cut with "...". */
export function cutBytes(text: string, maxBytes: number, mark = "..."): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  let cut = [...text];
  while (cut.length > 0 && Buffer.byteLength(`${cut.join("")}${mark}`) > maxBytes) cut = cut.slice(0, -1);
  return `${cut.join("")}${mark}`;
}

/**
 * The rule comment: the intent, then the policy path in brackets. nft limits comments to
 * 128 bytes, iptables to 256; names come from the user, so we cut on bytes, not characters.
 */
export function ruleComment(origin: Origin, maxBytes: number): string {
  return cutBytes(quotedText(origin.path ? `${origin.intent} [${origin.path}]` : origin.intent), maxBytes);
}

export const nftComment = (o: Origin): string => ruleComment(o, 128);
export const iptablesComment = (o: Origin): string => ruleComment(o, 256);

/**
 * nft expands `$name` inside a log prefix (variables in log prefixes, nft ≥ 1.0),
 * so `$` is dropped as well; nft takes at most 127 bytes.
 */
export const nftLogPrefix = (prefix: string): string => cutBytes(quotedText(prefix).replace(/\$/g, "?"), 127, "");

/** The kernel's LOG target takes at most 29 bytes of prefix (iptables-extensions(8), "LOG"). */
export const iptablesLogPrefix = (prefix: string): string => cutBytes(quotedText(prefix), 29, "");

// Linux interface names (at most 15 bytes). Unlike free text, a name cannot be
// changed to make it safe without matching another interface, so anything else
// (`*`, which nft reads as a wildcard, quotes, spaces) is refused.
const IFNAME = /^[A-Za-z0-9_.@+-]{1,15}$/;

export function interfaceName(name: string): string {
  if (!IFNAME.test(name) || name === "." || name === "..") {
    throw userError("POLICY_BAD_NAME", `"${displayValue(name)}" is not a Linux interface name (at most 15 of A-Z a-z 0-9 _ . @ + -)`);
  }
  return name;
}

/** Table and chain names come from the compiler, not the user; the script writes them unquoted, so check. */
export function identifier(name: string): string {
  if (!/^[A-Za-z][A-Za-z0-9_-]{0,63}$/.test(name)) throw new Error(`not an identifier: ${JSON.stringify(name)}`);
  return name;
}

/** A uid as a number in range, never a name: a name would be looked up on whichever machine loads the file. */
export function checkedUid(uid: number): number {
  if (!Number.isInteger(uid) || uid < 0 || uid > 4294967294) throw new Error(`not a uid: ${uid}`);
  return uid;
}
