// When the nft emitter writes alike rules as one rule with a set or a map, and
// when it must not (src/backend/nft-fold.ts). That the folded text means what
// the rules mean is proven against the kernel by the differential and
// rehearsal tests on test/scenarios/many-alike.yaml; these tests pin down the
// decisions: the threshold, the order rules may not be moved across, and the
// sets and maps the kernel would refuse or read differently.
import { describe, expect, test } from "vitest";
import { emitNftRule, emitNftTable } from "../src/backend/nft.js";
import { FOLD_AT } from "../src/backend/nft-fold.js";
import type { Match } from "../src/ir/match.js";
import type { Rule } from "../src/ir/ruleset.js";
import type { Verdict } from "../src/ir/verdict.js";
import { parseAddress } from "../src/net/address.js";
import { builtinPrefix } from "../src/net/prefix.js";
import { withNetns } from "../src/system/netns.js";

const dport = (protocol: "tcp" | "udp", first: number, last = first): Match => ({ kind: "dport", protocol, ranges: [{ first, last }] });
const daddr = (text: string): Match => ({ kind: "daddr", family: text.includes(":") ? 6 : 4, prefixes: [builtinPrefix(text)] });
const rule = (path: string, matches: Match[], verdict: Verdict = { kind: "accept" }): Rule => ({ matches, verdict, origin: { path, intent: `rule ${path}` } });
const dnat = (to: string): Verdict => ({ kind: "dnat", to: parseAddress(to)! });

/** The rule lines of one filter chain as the emitter writes them. */
function lines(rules: Rule[]): string[] {
  const text = emitNftTable({ family: "inet", name: "t", chains: [{ name: "c", base: { type: "filter", hook: "input", priority: 0, policy: "drop" }, rules }] });
  return text.split("\n").slice(3, -2).map((l) => l.trim());
}

/** n clients, TCP and UDP rules alternating as the compiler writes them. */
const clients = (n: number): Rule[] => Array.from({ length: n }, (_, i) => [
  rule(`clients[${i}]`, [dport("tcp", 20000 + 4 * i)]),
  rule(`clients[${i}]`, [dport("udp", 20000 + 4 * i)]),
]).flat();

describe("folding alike rules", () => {
  test("fewer than FOLD_AT alike rules are written one by one, in their order", () => {
    const rules = clients(FOLD_AT - 1);
    expect(lines(rules)).toEqual(rules.map(emitNftRule));
  });

  test("TCP and UDP rules of FOLD_AT clients become one rule each, where the first one was", () => {
    const first = rule("first", [daddr("192.0.2.1"), dport("tcp", 22)]);
    const out = lines([first, ...clients(FOLD_AT), rule("last", [], { kind: "drop" })]);
    expect(out).toHaveLength(4);
    expect(out[0]).toBe(emitNftRule(first));
    expect(out[1]).toMatch(/^tcp dport \{ 20000, 20004, .*, 20060 \} counter accept comment "16 alike rules in one set \(clients\[0\]…clients\[15\]\), the first: rule clients\[0\]"$/);
    expect(out[2]).toMatch(/^udp dport \{ 20000, 20004, .*, 20060 \} counter accept /);
    expect(out[3]).toMatch(/^counter drop /);
  });

  test("no rule is moved past a rule that could match the same packet with another verdict", () => {
    // The drop for client 12's TCP port comes before client 12's accept: folding would let it in.
    const rules = clients(FOLD_AT);
    rules.splice(FOLD_AT, 0, rule("blocked", [dport("tcp", 20000 + 4 * 12)], { kind: "drop" }));
    expect(lines(rules)).toEqual(rules.map(emitNftRule));
  });

  test("a rule of another protocol or family in between does not stop the fold", () => {
    const rules = clients(FOLD_AT);
    rules.splice(3, 0, rule("v6 only", [{ kind: "family", family: 6 }, { kind: "protocol", protocol: "icmpv6" }], { kind: "drop" }));
    expect(lines(rules)).toHaveLength(3);
  });

  test("DNAT rules with different targets become a map, with the keys tested before the counter", () => {
    const rules = Array.from({ length: FOLD_AT }, (_, i) => rule(`forward[${i}]`, [dport("tcp", 30000 + 2 * i, 30001 + 2 * i)], dnat(`10.0.0.${i + 2}`)));
    const [line] = lines(rules);
    expect(line).toMatch(/^tcp dport \{ 30000-30001, .* \} counter dnat ip to tcp dport map \{ 30000-30001 : 10\.0\.0\.2, 30002-30003 : 10\.0\.0\.3, .* \} comment /);
  });

  test("DNAT rules whose keys overlap stay rules: the first match decides, a map could not say which", () => {
    const rules = Array.from({ length: FOLD_AT }, (_, i) => rule(`forward[${i}]`, [dport("tcp", 30000 + i, 30005 + i)], dnat(`10.0.0.${i + 2}`)));
    expect(lines(rules)).toEqual(rules.map(emitNftRule));
  });

  test("a concatenation whose elements would overlap stays rules (the kernel refuses it)", () => {
    const rules = Array.from({ length: FOLD_AT }, (_, i) => rule(`forward[${i}]`, [daddr(i === 0 ? "10.0.0.0/24" : `10.0.0.${i}`), dport("udp", 30000 + i)]));
    rules.push(rule("overlap", [daddr("10.0.0.1"), dport("udp", 30001, 30009)]));
    expect(lines(rules)).toEqual(rules.map(emitNftRule));
  });

  test("rules differing in more than two places, or in a match that is not a set, stay rules", () => {
    const three = Array.from({ length: FOLD_AT }, (_, i) => rule(`r${i}`, [daddr(`10.0.1.${i}`), { kind: "saddr", family: 4, prefixes: [builtinPrefix(`10.0.2.${i}`)] }, dport("tcp", 100 + i)]));
    expect(lines(three)).toEqual(three.map(emitNftRule));
    const ifaces = Array.from({ length: FOLD_AT }, (_, i) => rule(`r${i}`, [{ kind: "iifname", name: `eth${i}`, negate: false }, dport("tcp", 100 + i)]));
    expect(lines(ifaces)).toEqual(ifaces.map(emitNftRule));
  });

  test("jumps and log rules are never folded (a jump that returns would run again)", () => {
    const jumps = Array.from({ length: FOLD_AT }, (_, i) => rule(`r${i}`, [dport("tcp", 100 + i)], { kind: "jump", chain: "other" }));
    expect(lines(jumps)).toEqual(jumps.map(emitNftRule));
  });

  test("the kernel loads every folded form, and lists the set, the concatenation and the map", async () => {
    const forwards = Array.from({ length: FOLD_AT }, (_, i) => rule(`forward[${i}]`, [daddr(`10.0.0.${i + 2}`), dport("tcp", 30000 + 2 * i, 30001 + 2 * i)]));
    const maps = Array.from({ length: FOLD_AT }, (_, i) => rule(`forward[${i}]`, [{ kind: "localaddr", field: "daddr" }, dport("udp", 30000 + 2 * i)], dnat(`2001:db8::${i + 2}`)));
    const table = emitNftTable({ family: "inet", name: "fold_test", chains: [
      { name: "input", base: { type: "filter", hook: "forward", priority: 0, policy: "drop" }, rules: [...clients(FOLD_AT), ...forwards] },
      { name: "prerouting", base: { type: "nat", hook: "prerouting", priority: -100, policy: "accept" }, rules: maps },
    ] });
    const listed = await withNetns(1, async (ns) => {
      await ns.execChecked("nft", ["-f", "-"], { input: `${table}\n` });
      return (await ns.execChecked("nft", ["list", "table", "inet", "fold_test"])).stdout;
    });
    expect(listed).toMatch(/tcp dport \{ 20000, 20004,/);
    expect(listed).toMatch(/ip daddr \. tcp dport \{ 10\.0\.0\.2 \. 30000-30001, /);
    expect(listed).toMatch(/dnat ip6 to udp dport map \{ 30000 : 2001:db8::2, /);
    expect(listed.match(/counter packets/g)).toHaveLength(4);
  });
});
