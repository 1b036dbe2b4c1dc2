// Admin services (SSH, the client's Web UI, VNC, …): open to their listed
// sources only, and only in the address family those sources belong to.
import type { Match } from "../ir/match.js";
import type { Rule } from "../ir/ruleset.js";
import type { Policy } from "../policy/types.js";
import { ACCEPT, byFamily, dport, rule, saddr, words, type Contribution } from "./build.js";

export function admin(p: Policy, scope: Match[]): Contribution {
  const input: Rule[] = [];
  for (const a of p.admin) {
    for (const proto of a.protocols) {
      for (const [family, from] of byFamily(a.from)) {
        input.push(rule([...scope, saddr(family, from), dport(proto, [a.ports])], ACCEPT, a.path,
          `admin ${a.name}: ${words.proto(proto)} ${words.ports([a.ports])} from ${words.prefixes(from)}`));
      }
    }
  }
  return { input };
}
