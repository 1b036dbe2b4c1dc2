// A rehearsal that cannot fail proves nothing. Each test here rehearses a
// ruleset with one plausible compiler bug planted in it, and the rehearsal
// must catch it with the flows the bug breaks.
import { join } from "node:path";
import { expect, test } from "vitest";
import { compile } from "../src/compile/index.js";
import type { Match } from "../src/ir/match.js";
import type { Chain, Rule, Ruleset } from "../src/ir/ruleset.js";
import { rehearse } from "../src/lab/rehearse.js";
import { loadPolicy } from "../src/policy/load.js";

const ROOT = join(import.meta.dirname, "..");

function mutate(ruleset: Ruleset, chain: string, fn: (rules: Rule[]) => Rule[]): Ruleset {
  return { tables: ruleset.tables.map((t) => ({ ...t, chains: t.chains.map((c): Chain => (c.name === chain ? { ...c, rules: fn([...c.rules]) } : c)) })) };
}

const mapMatches = (rule: Rule, fn: (m: Match) => Match): Rule => ({ ...rule, matches: rule.matches.map(fn) });

async function failedFlows(file: string, bug: (r: Ruleset) => Ruleset): Promise<string[]> {
  const policy = loadPolicy(join(ROOT, file));
  const result = await rehearse(policy, { backend: "nft", ruleset: bug(compile(policy)) });
  expect(result.ok).toBe(false);
  return result.flows.filter((f) => !f.ok).map((f) => f.what);
}

test("a swapped source and destination in the admin rules", async () => {
  const failed = await failedFlows("test/scenarios/swapped-direction.yaml", (r) => mutate(r, "input", (rules) => rules.map((rule) =>
    rule.origin.path.startsWith("admin") ? mapMatches(rule, (m) => (m.kind === "saddr" ? { ...m, kind: "daddr" } : m)) : rule)));
  expect(failed).toContain("admin1 192.0.2.10 → admin ssh, TCP 22");
});

test("a missing IPv6 rule for the client", async () => {
  const failed = await failedFlows("examples/standalone.yaml", (r) => mutate(r, "input", (rules) => rules.map((rule) =>
    rule.origin.path.startsWith("clients") ? { ...rule, matches: [{ kind: "family", family: 4 }, ...rule.matches] } : rule)));
  expect(failed).toEqual(expect.arrayContaining(["peer → client qbittorrent, TCP 6881 (IPv6)", "peer → client qbittorrent, UDP 6881 (IPv6)"]));
  expect(failed.every((f) => f.includes("IPv6"))).toBe(true);
});

test("a stateless return-traffic rule", async () => {
  const failed = await failedFlows("test/scenarios/stateless-return.yaml", (r) => mutate(r, "input", (rules) => [
    ...rules.slice(0, -1),
    { matches: [{ kind: "sport", protocol: "udp", ranges: [{ first: 53, last: 53 }] }], verdict: { kind: "accept" }, origin: { path: "", intent: "planted: DNS replies" } },
    { matches: [{ kind: "sport", protocol: "tcp", ranges: [{ first: 80, last: 80 }] }], verdict: { kind: "accept" }, origin: { path: "", intent: "planted: HTTP replies" } },
    ...rules.slice(-1),
  ]));
  expect(failed).toEqual(expect.arrayContaining(["scanner from port 53 → UDP 40001 (IPv4)", "scanner from port 80 → TCP 40002 (IPv6)"]));
});

test("a forward rule in the wrong direction (-s LANHOST)", async () => {
  const failed = await failedFlows("examples/gateway.yaml", (r) => mutate(r, "forward", (rules) => rules.map((rule) =>
    rule.origin.path.startsWith("forward") ? mapMatches(rule, (m) => (m.kind === "daddr" ? { ...m, kind: "saddr" } : m)) : rule)));
  expect(failed).toEqual(expect.arrayContaining(["peer → WAN TCP 6890 (forward to 192.168.1.3)", "peer → WAN TCP 6909 (forward to 192.168.1.4)"]));
});

test("a forward rule that does not require DNAT lets peers reach a LAN host directly", async () => {
  const failed = await failedFlows("test/scenarios/forward-direction.yaml", (r) => mutate(r, "forward", (rules) => rules.map((rule) =>
    ({ ...rule, matches: rule.matches.filter((m) => m.kind !== "ctdnat") }))));
  expect(failed).toContain("peer → lan1 192.168.1.3 directly, TCP 6890");
});

test("a missing masquerade rule", async () => {
  const failed = await failedFlows("examples/gateway.yaml", (r) => mutate(r, "postrouting", () => []));
  expect(failed).toEqual(expect.arrayContaining([expect.stringMatching(/^LAN 192\.168\.1\.\d+ → peer, TCP 443 \(IPv4, masqueraded\)$/)]));
});
