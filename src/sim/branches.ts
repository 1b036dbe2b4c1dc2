// Verdicts of rulesets read from other tools, which can test what no single
// packet decides (a rate per source, a mark set elsewhere, a socket's owner,
// a module swarmgate does not know). Such a condition is never guessed: the
// packet is run once for every way the conditions it meets can fall, and
// when the runs disagree the verdict is "depends", with the conditions and
// the rules that hold them.
import type { LimitMatch, UnknownMatch } from "../ir/match.js";
import type { Rule } from "../ir/ruleset.js";
import type { CompiledRuleset } from "./compiled.js";
import type { Environment } from "./environment.js";
import type { Packet } from "./packet.js";
import { simulate, type SimResult, type SimulateOptions, type SimVerdict } from "./simulate.js";

/** More runs than this for one packet and the answer says it stopped looking. */
export const MAX_BRANCHES = 64;

export interface Assumption { condition: UnknownMatch; rule: Rule | undefined; holds: boolean }
export interface Branch { assumed: Assumption[]; result: SimResult }

export interface BranchedResult {
  /** The verdict every run agrees on, or "depends". */
  verdict: SimVerdict | "depends";
  /** Every run, the first with every condition holding. */
  branches: Branch[];
  /** The conditions met on the way, each once, in the order first met. */
  conditions: { condition: UnknownMatch; rule: Rule | undefined }[];
  /** More ways than MAX_BRANCHES: the verdicts are those of the runs made. */
  truncated: boolean;
}

const owners = new WeakMap<CompiledRuleset, Map<UnknownMatch, Rule>>();

/** The rule each unknown condition belongs to, found once per ruleset. */
function ownerOf(c: CompiledRuleset): Map<UnknownMatch, Rule> {
  let map = owners.get(c);
  if (!map) {
    map = new Map();
    for (const t of c.ruleset.tables) for (const ch of t.chains) for (const r of ch.rules) {
      for (const m of r.matches) if (m.kind === "unknown") map.set(m, r);
    }
    owners.set(c, map);
  }
  return map;
}

export interface BranchOptions extends SimulateOptions {
  /**
   * "branch": a rate limit is one more condition that may fall either way (a
   * differential test sends bursts that exceed some); by default a limit is
   * never exceeded, as a verdict is about one packet.
   */
  limits?: "not exceeded" | "branch";
}

/** The condition a rate limit stands for when limits branch: one per limit match, the same object every time. */
const limitConditions = new WeakMap<LimitMatch, UnknownMatch>();
const limitCondition = (m: LimitMatch): UnknownMatch => {
  let u = limitConditions.get(m);
  if (!u) { u = { kind: "unknown", text: `limit rate ${m.count}/${m.unit} burst ${m.burst} not exceeded` }; limitConditions.set(m, u); }
  return u;
};

export function simulateAll(c: CompiledRuleset, packet: Packet, env: Environment, options: BranchOptions = {}): BranchedResult {
  const owner = ownerOf(c);
  const branches: Branch[] = [];
  // Depth first over the conditions in the order a run meets them: the choices for the first ones are fixed, the rest hold.
  let fixed: boolean[] = [];
  for (;;) {
    const assumed: Assumption[] = [];
    const assume = (m: UnknownMatch): boolean => {
      const seen = assumed.find((a) => a.condition === m);
      if (seen) return seen.holds;
      const holds = assumed.length < fixed.length ? fixed[assumed.length]! : true;
      assumed.push({ condition: m, rule: owner.get(m), holds });
      return holds;
    };
    const assumeLimit = options.limits === "branch" ? (m: LimitMatch) => assume(limitCondition(m)) : undefined;
    branches.push({ assumed, result: simulate(c, packet, env, { ...options, assume, ...(assumeLimit && { assumeLimit }) }) });
    let last = assumed.length - 1;
    while (last >= 0 && !assumed[last]!.holds) last--;
    if (last < 0 || branches.length >= MAX_BRANCHES) {
      const verdicts = new Set(branches.map((b) => b.result.verdict));
      const conditions = new Map<UnknownMatch, Rule | undefined>();
      for (const b of branches) for (const a of b.assumed) if (!conditions.has(a.condition)) conditions.set(a.condition, a.rule);
      return {
        verdict: verdicts.size === 1 ? branches[0]!.result.verdict : "depends",
        branches,
        conditions: [...conditions].map(([condition, rule]) => ({ condition, rule })),
        truncated: last >= 0,
      };
    }
    fixed = [...assumed.slice(0, last).map((a) => a.holds), false];
  }
}
