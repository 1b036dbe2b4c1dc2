// The port index against its definition: for any items and any port, lookup
// holds exactly the items whose scope admits the port, in their order; split
// holds the same items as one shared port-independent array plus the port's own.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { buildPortIndex, type PortScope } from "../src/sim/port-index.js";

const range = fc.tuple(fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 0, max: 300 }))
  .map(([first, width]) => ({ first, last: Math.min(65535, first + width) }));
const scope: fc.Arbitrary<PortScope> = fc.oneof(fc.constant("any" as const), fc.constant("none" as const), fc.array(range, { minLength: 1, maxLength: 3 }));
const admits = (s: PortScope, port: number) => s === "any" || (s !== "none" && s.some((r) => r.first <= port && port <= r.last));

describe("port index", () => {
  it("lookup and split hold exactly the items that admit the port, in order", () => {
    fc.assert(fc.property(fc.array(scope, { maxLength: 30 }), fc.array(fc.integer({ min: 0, max: 65535 }), { minLength: 1, maxLength: 40 }), (scopes, ports) => {
      const items = scopes.map((s, i) => ({ i, s }));
      const index = buildPortIndex(items, (x) => x.s);
      const sharedArrays = new Set<unknown>();
      // The edges themselves are where an off-by-one would hide.
      const probes = [...ports, ...scopes.flatMap((s) => (typeof s === "string" ? [] : s.flatMap((r) => [r.first - 1, r.first, r.last, r.last + 1])))].filter((p) => p >= 0 && p <= 65535);
      for (const port of probes) {
        const want = items.filter((x) => admits(x.s, port)).map((x) => x.i);
        expect(index.lookup(port).map((x) => x.i)).toEqual(want);
        const { shared, own } = index.split(port);
        sharedArrays.add(shared);
        expect(shared.every((x) => x.s === "any")).toBe(true);
        expect(own.every((x) => x.s !== "any" && x.s !== "none")).toBe(true);
        expect([...shared, ...own].map((x) => x.i).sort((a, b) => a - b)).toEqual(want);
      }
      expect(sharedArrays.size).toBeLessThanOrEqual(1);
    }), { numRuns: 300 });
  });
});
