// Drops what no honest peer sends: TCP flag combinations no real stack
// produces, new TCP connections that do not start with SYN, and packets on the
// outside that claim to come from this machine or from loopback.
import type { TcpFlag } from "../ir/match.js";
import type { Rule } from "../ir/ruleset.js";
import { builtinPrefix, type Prefix } from "../net/prefix.js";
import { byFamily, DROP, rule, saddr, type Contribution } from "./build.js";
import type { Match } from "../ir/match.js";

const BOGUS_FLAGS: { mask: TcpFlag[]; equal: TcpFlag[]; what: string }[] = [
  { mask: ["fin", "syn"], equal: ["fin", "syn"], what: "SYN and FIN together" },
  { mask: ["syn", "rst"], equal: ["syn", "rst"], what: "SYN and RST together" },
  { mask: ["fin", "rst"], equal: ["fin", "rst"], what: "FIN and RST together" },
  { mask: ["fin", "syn", "rst", "psh", "ack", "urg"], equal: [], what: "no flags at all (null scan)" },
  { mask: ["fin", "psh", "urg"], equal: ["fin", "psh", "urg"], what: "FIN, PSH and URG (xmas scan)" },
];

export function tcpHardening(): Rule[] {
  const bogus = BOGUS_FLAGS.map((f) => rule(
    [{ kind: "protocol", protocol: "tcp" }, { kind: "tcpflags", mask: f.mask, equal: f.equal, negate: false }],
    DROP, "", `hardening: drop TCP packets with ${f.what}`,
  ));
  const newNotSyn = rule(
    [{ kind: "protocol", protocol: "tcp" }, { kind: "ctstate", states: ["new"] },
      { kind: "tcpflags", mask: ["fin", "syn", "rst", "ack"], equal: ["syn"], negate: true }],
    DROP, "", "hardening: drop new TCP connections that do not start with SYN",
  );
  return [...bogus, newNotSyn];
}

const LOOPBACK: Prefix[] = [builtinPrefix("127.0.0.0/8"), builtinPrefix("::1")];

/** Spoofed sources arriving on `scope` (the outside), plus any extra networks that live inside. */
export function antiSpoofing(scope: Match, inside: { prefixes: Prefix[]; what: string } | undefined): Rule[] {
  const rules = byFamily(LOOPBACK).map(([family, prefixes]) =>
    rule([scope, saddr(family, prefixes)], DROP, "", `hardening: drop packets from outside that claim a loopback source`));
  rules.push(rule([scope, { kind: "localaddr", field: "saddr" }], DROP, "",
    "hardening: drop packets from outside that claim to come from this machine"));
  if (inside) {
    for (const [family, prefixes] of byFamily(inside.prefixes)) {
      rules.push(rule([scope, saddr(family, prefixes)], DROP, "", `hardening: drop packets from outside that claim a source in ${inside.what}`));
    }
  }
  return rules;
}

/** A host's input hardening; a gateway adds its LAN to the spoofed sources (compile/index.ts). */
export function hardening(scope: Match): Contribution {
  return { input: [...tcpHardening(), ...antiSpoofing(scope, undefined)] };
}
