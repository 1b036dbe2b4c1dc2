// The linear-memory line diff that replaces status's LCS table: every script
// replays both sides, and it is as short as the LCS says it can be.
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { diffLines } from "../src/system/line-diff.js";

/** The length of a longest common subsequence, by the textbook table (small inputs only). */
function lcsLength(a: string[], b: string[]): number {
  const row = new Array<number>(b.length + 1).fill(0);
  for (const x of a) {
    let diag = 0;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j]!;
      row[j] = x === b[j - 1] ? diag + 1 : Math.max(row[j]!, row[j - 1]!);
      diag = up;
    }
  }
  return row[b.length]!;
}

const lines = fc.array(fc.constantFrom("a", "b", "c", "d", "table inet swarmgate {", "}", ""), { maxLength: 40 });

describe("diffLines", () => {
  test("the script replays from (kept and removed) and to (kept and added), with the fewest changes", () => {
    fc.assert(fc.property(lines, lines, (to, from) => {
      const d = diffLines(to, from);
      expect(d.script.filter((s) => s.op !== "+").map((s) => s.line)).toEqual(from);
      expect(d.script.filter((s) => s.op !== "-").map((s) => s.line)).toEqual(to);
      expect(d.script.filter((s) => s.op === " ").length).toBe(lcsLength(from, to));
      expect(d.added).toEqual(d.script.filter((s) => s.op === "+").map((s) => s.line));
      expect(d.removed).toEqual(d.script.filter((s) => s.op === "-").map((s) => s.line));
    }), { numRuns: 500 });
  });

  test("edge cases: empty sides, equal sides, a replaced line", () => {
    expect(diffLines([], [])).toEqual({ added: [], removed: [], script: [] });
    expect(diffLines(["x"], [])).toEqual({ added: ["x"], removed: [], script: [{ op: "+", line: "x" }] });
    expect(diffLines([], ["x"])).toEqual({ added: [], removed: ["x"], script: [{ op: "-", line: "x" }] });
    expect(diffLines(["a", "b"], ["a", "b"]).script.map((s) => s.op)).toEqual([" ", " "]);
    expect(diffLines(["a", "new", "c"], ["a", "old", "c"]).script).toEqual([
      { op: " ", line: "a" }, { op: "+", line: "new" }, { op: "-", line: "old" }, { op: " ", line: "c" },
    ]);
  });

  test("a large ruleset with a few changed rules: the few changes, nothing else", () => {
    const from = Array.from({ length: 20_000 }, (_, i) => `rule ${i}`);
    const to = from.map((l, i) => (i % 5000 === 17 ? `${l} changed` : l));
    const d = diffLines(to, from);
    expect(d.added).toEqual(["rule 17 changed", "rule 5017 changed", "rule 10017 changed", "rule 15017 changed"]);
    expect(d.removed).toEqual(["rule 17", "rule 5017", "rule 10017", "rule 15017"]);
  });
});
