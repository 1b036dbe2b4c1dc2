// The fault-injection matrix of issue 8, in throwaway network namespaces with
// Docker-, fail2ban- and firewalld-like rules of other tools present: every
// tool call a command makes fails in turn; apply, stop, rollback and the
// confirmation timer are killed at random moments; the state directory is
// full, read-only, or holds a stale or half-written journal; other tools
// change their rules during a confirmation window. After each fault, and
// after the next swarmgate command, swarmgate's objects are exactly the old or
// the new ones, other tools' rules are untouched, the kernel settings go with
// the ruleset in force, and what swarmgate said matches the kernel.
import { beforeAll, describe, expect, test } from "vitest";
import { faultsFor, faultTrial } from "./helpers/faults-matrix.js";
import { pool } from "./helpers/faults-run.js";
import { SCENARIOS } from "./helpers/faults-scenarios.js";
import { buildWorld, type Backend, type World } from "./helpers/faults-world.js";

/** Trials at once: each is mostly waiting on processes and fsync, but the machine has two cores. */
const limit = pool(6);
let world: World;

beforeAll(async () => { world = await buildWorld(); }, 120_000);

/** Fails with the full report of the first failures and one line for each of the rest. */
function expectNoFailures(failures: string[]): void {
  const shown = failures.slice(0, 3).join("\n\n");
  const rest = failures.slice(3).map((f) => f.split("\n")[0]).join("\n");
  expect(failures.length, `${failures.length} failing trials\n\n${shown}${rest ? `\n\nand:\n${rest}` : ""}`).toBe(0);
}

describe.each(["nft", "iptables"] as Backend[])("-b %s: a tool fails on call N", (backend) => {
  test.concurrent.each(SCENARIOS.map((s) => [s.name, s] as const))("%s", async (_name, s) => {
    const counting = await limit(() => faultTrial(world, backend, s, undefined, false));
    expectNoFailures(counting.failure ? [counting.failure] : []);
    const faults = faultsFor(counting.counts);
    const results = await Promise.all(faults.map((f, i) => limit(() => faultTrial(world, backend, s, f, i % 2 === 1))));
    console.log(`${backend} ${s.name}: ${faults.length} faults (${JSON.stringify(counting.counts)}); exits ${JSON.stringify(tally(results.map((r) => r.exit)))}`);
    expectNoFailures(results.flatMap((r) => (r.failure ? [r.failure] : [])));
  }, 900_000);
});

function tally(xs: (number | null)[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[String(x)] = (out[String(x)] ?? 0) + 1;
  return out;
}
