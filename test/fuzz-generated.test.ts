// Generated file names and policy values against every backend, loaded by the
// real tools (issue 8, defect 10): random policy file names (newlines, quotes,
// $(), backticks, ;, %, unicode) and random values for the free-text fields the
// loader accepts are compiled with every backend, and each generated file is
// loaded in a throwaway network namespace that holds other tools' rules. After
// swarmgate's own objects are removed again, the whole ruleset must be exactly
// what it was, and no injected command may have run (no marker file appears).
// SWARMGATE_FUZZ_RUNS=500 for a longer run.
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { expect, test } from "vitest";
import { parse } from "yaml";
import { emit } from "../src/backend/registry.js";
import { compile } from "../src/compile/index.js";
import { SwarmgateError } from "../src/errors.js";
import { loadPolicy } from "../src/policy/load.js";
import { withNetns, type Netns } from "../src/system/netns.js";
import { ROOT } from "./helpers/cli.js";
import { FOREIGN_IPTABLES, FOREIGN_NFT, iptablesSave, nftList } from "./helpers/kernel.js";

const RUNS = Number(process.env.SWARMGATE_FUZZ_RUNS ?? 20);
const MARKER = "SWARMGATE-FUZZ-INJECTED";

/** ip6tables rules of another tool, so that ip6tables-restore creates no table that was not there. */
const FOREIGN_IP6TABLES = `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:f2b-sshd - [0:0]
-A INPUT -p tcp -m multiport --dports 22 -j f2b-sshd
-A f2b-sshd -j RETURN
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
COMMIT
`;

// Pieces that would do harm if they reached a file unescaped, and characters around them.
const INJECTIONS = [
  "\nflush ruleset\n", "\ndelete table inet other_tool\n", `\ntouch ${MARKER}\n`, `$(touch ${MARKER})`, `\`touch ${MARKER}\``,
  `; touch ${MARKER};`, "\nCOMMIT\n*filter\n-F INPUT\n", "\r\n-X f2b-sshd\n", "SWARMGATE_NFT\n", "%n%h", "\"'\\", "\u2028", "é🙂",
];
const CHARS = [..."abz09 \n\r\t\"'`$();%#{}*\\!&|<>?~é🙂\u2028\u0085\x1b"];
const piece = fc.oneof(fc.constantFrom(...INJECTIONS), fc.constantFrom(...CHARS));
const fileName = fc.array(piece, { minLength: 1, maxLength: 8 }).map((p) => `${p.join("")}.json`);

// The free-text fields and what the loader accepts in each (src/policy/values.ts, sections.ts).
const from = (chars: string, min: number, max: number) => fc.array(fc.constantFrom(...chars), { minLength: min, maxLength: max }).map((a) => a.join(""));
const name = fc.tuple(from("aZ09", 1, 1), from("aZ09_.-", 0, 31)).map(([a, b]) => a + b);
const iface = from("aZ09_.@+-", 1, 15).filter((v) => v !== "." && v !== "..");
const printable = [...Array(95).keys()].map((i) => String.fromCharCode(32 + i)).filter((c) => c !== '"' && c !== "\\").join("");
const logPrefix = fc.oneof(from(printable, 1, 29), fc.constantFrom(`$(touch ${MARKER})`, "`id`;#", "${x} $y ", "'%s%n{}"));

function policyText(values: { client: string; admin: string; iface: string; prefix: string }): string {
  const policy = parse(readFileSync(join(ROOT, "examples", "standalone.yaml"), "utf8"));
  policy.host.interface = values.iface;
  policy.clients[0].name = values.client;
  policy.admin[0].name = values.admin;
  policy.log = { ...policy.log, prefix: values.prefix };
  return JSON.stringify(policy, null, 2);
}

/** Everything in the namespace's firewall: nft's view and both iptables views. */
async function everything(ns: Netns): Promise<string> {
  return [await nftList(ns), await iptablesSave(ns, "iptables-save"), await iptablesSave(ns, "ip6tables-save")].join("\n----\n");
}

type Case = [file: string, values: { client: string; admin: string; iface: string; prefix: string }, backend: "nft" | "iptables"];

/**
 * Loads every generated file, then the script's start (with one backend) and
 * stop, which removes swarmgate's table and chains (and the jumps into them)
 * whichever loaded them; then nothing may differ from the baseline.
 */
async function loadEach(ns: Netns, dir: string, backend: string, baseline: string): Promise<void> {
  const ok = async (command: string, args: string[], env: Record<string, string> = {}) => {
    const r = await ns.exec("sh", ["-c", 'cd "$1" && shift && exec "$@"', "sh", dir, command, ...args], { env });
    expect(r.code, `${command} ${args.join(" ")}: ${r.stderr}`).toBe(0);
  };
  await ok("nft", ["-f", "out.nft"]);
  await ok("iptables-restore", ["-w", "--noflush", "out.v4"]);
  await ok("ip6tables-restore", ["-w", "--noflush", "out.v6"]);
  await ok("sh", ["out.sh", "start"], { SWARMGATE_BACKEND: backend });
  await ok("sh", ["out.sh", "stop"]);
  expect(await everything(ns)).toBe(baseline);
}

/** One generated case in its own directory; false when the loader refused a value. */
async function runCase(ns: Netns, baseline: string, [file, values, backend]: Case): Promise<boolean> {
  const dir = mkdtempSync(join(tmpdir(), "sg-fuzz-"));
  try {
    const source = join(dir, file);
    writeFileSync(source, policyText(values));
    let ruleset;
    try {
      ruleset = compile(loadPolicy(source));
    } catch (e) {
      if (e instanceof SwarmgateError && e.code.startsWith("POLICY_")) return false; // nothing to emit
      throw e;
    }
    const [nft, v4, v6, sh] = ["nft", "iptables", "script"].flatMap((b) => emit(ruleset, b, { source }));
    for (const [name, a] of [["out.nft", nft], ["out.v4", v4], ["out.v6", v6], ["out.sh", sh]] as const) writeFileSync(join(dir, name), a!.text);
    chmodSync(join(dir, "out.sh"), 0o755);
    await loadEach(ns, dir, backend, baseline);
    expect(existsSync(join(dir, MARKER))).toBe(false);
    return true;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function seed(ns: Netns): Promise<string> {
  await ns.execChecked("iptables-restore", [], { input: FOREIGN_IPTABLES });
  await ns.execChecked("ip6tables-restore", [], { input: FOREIGN_IP6TABLES });
  await ns.execChecked("nft", ["-f", "-"], { input: FOREIGN_NFT });
  return everything(ns);
}

// Cases are drawn up front (the seed is printed for a rerun with SWARMGATE_FUZZ_SEED) and
// spread over a few namespaces in parallel: loading with the real tools is the slow part.
const SEED = Number(process.env.SWARMGATE_FUZZ_SEED ?? Date.now() % 2 ** 31);
const WORKERS = 4;

test(`generated file names and policy values: every backend's output loads and changes nothing else (${RUNS} runs)`, async () => {
  const values = fc.record({ client: name, admin: name, iface, prefix: logPrefix });
  const cases = fc.sample(fc.tuple(fileName, values, fc.constantFrom("nft" as const, "iptables" as const)), { numRuns: RUNS, seed: SEED });
  let loaded = 0;
  await withNetns(WORKERS, async (...namespaces) => {
    await Promise.all(namespaces.map(async (ns) => {
      const baseline = await seed(ns);
      for (let c = cases.shift(); c; c = cases.shift()) {
        try {
          if (await runCase(ns, baseline, c)) loaded++;
        } catch (e) {
          throw new Error(`SWARMGATE_FUZZ_SEED=${SEED}: case ${JSON.stringify(c)}: ${(e as Error).message}`);
        }
      }
    }));
  });
  expect(loaded).toBeGreaterThan(0);
}, 120_000);
