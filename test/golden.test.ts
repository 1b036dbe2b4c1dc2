// Both examples through every backend: the output equals its golden file, the
// real tools load it inside a throwaway network namespace, and what the kernel
// holds afterwards (read back with nft list / iptables-save) equals its golden
// readback. Other tools' rules are there before and must be unchanged after.
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { compile } from "../src/compile/index.js";
import { emit } from "../src/backend/registry.js";
import { withNetns, type Netns } from "../src/system/netns.js";
import { loadPolicy } from "../src/policy/load.js";
import { expectGolden } from "./helpers/golden.js";
import { FOREIGN_IPTABLES, FOREIGN_NFT, hasNftTable, iptablesSave, nftList, withoutSwarmgate } from "./helpers/kernel.js";

const EXAMPLES = ["standalone", "gateway"] as const;

function artifacts(example: string, backend: string) {
  const source = `examples/${example}.yaml`;
  return emit(compile(loadPolicy(source)), backend, { source });
}

/** Other tools' rules, loaded before swarmgate; returns a snapshot to compare with later. */
async function seedForeignRules(ns: Netns): Promise<() => Promise<string>> {
  await ns.execChecked("iptables-restore", [], { input: FOREIGN_IPTABLES });
  await ns.execChecked("nft", ["-f", "-"], { input: FOREIGN_NFT });
  const snapshot = async () => [
    withoutSwarmgate(await iptablesSave(ns, "iptables-save")),
    await nftList(ns, "table", "inet", "other_tool"),
  ].join("\n");
  return snapshot;
}

describe.each(EXAMPLES)("%s example", (example) => {
  test("nft: golden text, loaded twice by nft -f, read back", async () => {
    const [nft] = artifacts(example, "nft");
    expectGolden(`${example}.nft`, nft!.text);
    await withNetns(1, async (ns) => {
      const foreign = await seedForeignRules(ns);
      const before = await foreign();
      await ns.execChecked("nft", ["-f", "-"], { input: nft!.text });
      await ns.execChecked("nft", ["-f", "-"], { input: nft!.text }); // replaces, never duplicates
      expectGolden(`${example}.nft.readback`, await nftList(ns, "table", "inet", "swarmgate"));
      expect(await foreign()).toBe(before);
    });
  });

  test("iptables: golden text, loaded by iptables-restore and ip6tables-restore, read back", async () => {
    const [v4, v6] = artifacts(example, "iptables");
    expectGolden(`${example}.iptables.v4`, v4!.text);
    expectGolden(`${example}.iptables.v6`, v6!.text);
    await withNetns(1, async (ns) => {
      const foreign = await seedForeignRules(ns);
      const before = await foreign();
      await ns.execChecked("iptables-restore", ["--noflush"], { input: v4!.text });
      await ns.execChecked("ip6tables-restore", ["--noflush"], { input: v6!.text });
      expectGolden(`${example}.iptables.v4.readback`, await iptablesSave(ns, "iptables-save"));
      expectGolden(`${example}.iptables.v6.readback`, await iptablesSave(ns, "ip6tables-save"));
      expect(await foreign()).toBe(before);
    });
  });

  test("script: start (twice), status and stop with both backends, other rules untouched", async () => {
    const [script] = artifacts(example, "script");
    expectGolden(`${example}.sh`, script!.text);
    const dir = mkdtempSync(join(tmpdir(), "sg-script-"));
    const file = join(dir, "firewall.sh");
    writeFileSync(file, script!.text);
    chmodSync(file, 0o755);
    await withNetns(1, async (ns) => {
      const foreign = await seedForeignRules(ns);
      const before = await foreign();
      const sh = (arg: string, backend: string) => ns.exec("sh", [file, arg], { env: { SWARMGATE_BACKEND: backend } });

      expect((await sh("status", "nft")).code).toBe(3);
      for (let i = 0; i < 2; i++) expect((await sh("start", "nft")).code).toBe(0);
      expect(await nftList(ns, "table", "inet", "swarmgate")).toBe(await goldenReadback(example, "nft"));
      expect((await sh("status", "nft")).stdout).toContain("loaded (nftables)");
      const stop = await sh("stop", "nft");
      expect(stop.code).toBe(0);
      expect(stop.stdout + stop.stderr).toMatch(/stopped/);
      expect(await hasNftTable(ns, "inet", "swarmgate")).toBe(false);
      expect(await foreign()).toBe(before);

      for (let i = 0; i < 2; i++) expect((await sh("start", "iptables")).code).toBe(0);
      expect(await iptablesSave(ns, "iptables-save")).toBe(await goldenReadback(example, "iptables.v4"));
      expect(await iptablesSave(ns, "ip6tables-save")).toBe(await goldenReadback(example, "iptables.v6"));
      expect((await sh("status", "iptables")).stdout).toContain("loaded (iptables)");
      expect((await sh("stop", "iptables")).code).toBe(0);
      expect(await iptablesSave(ns, "iptables-save")).not.toContain("SWARMGATE");
      expect(await iptablesSave(ns, "ip6tables-save")).not.toContain("SWARMGATE");
      expect(await foreign()).toBe(before);
      expect((await sh("status", "nft")).code).toBe(3);
    });
  });
});

async function goldenReadback(example: string, kind: string): Promise<string> {
  return readFileSync(join(import.meta.dirname, "golden", `${example}.${kind}.readback`), "utf8");
}
