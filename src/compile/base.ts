// What every chain starts and ends with: loopback, connection tracking, and a
// rate-limited log line before the chain's default drop.
import type { Rule } from "../ir/ruleset.js";
import type { LogSettings } from "../policy/types.js";
import { ACCEPT, DROP, iif, oif, rule } from "./build.js";

export function conntrackHead(): Rule[] {
  return [
    rule([{ kind: "ctstate", states: ["invalid"] }], DROP, "", "connection tracking: drop invalid packets"),
    rule([{ kind: "ctstate", states: ["established", "related"] }], ACCEPT, "",
      "connection tracking: replies and related traffic of allowed connections"),
  ];
}

export function loopbackIn(): Rule {
  return rule([iif("lo")], ACCEPT, "", "loopback traffic of this machine");
}

export function loopbackOut(): Rule {
  return rule([oif("lo")], ACCEPT, "", "loopback traffic of this machine");
}

export function logTail(log: LogSettings | null, what: string): Rule[] {
  if (!log) return [];
  return [rule(
    [{ kind: "limit", count: log.rate.count, unit: log.rate.unit, burst: 5 }],
    { kind: "log", prefix: log.prefix }, "log", `log ${what} before dropping it (at most ${log.rate.count}/${log.rate.unit})`,
  )];
}
