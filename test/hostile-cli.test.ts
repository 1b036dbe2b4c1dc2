// Hostile input at the command line and in outputs (issue 8): file names that
// try to inject commands into generated files, outputs that are devices or
// directories, option values that are not numbers, failures under --json, and
// install paths that try to inject unit directives. Codes, exit statuses and
// positions are asserted, not wording.
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, test, vi } from "vitest";
import { emit } from "../src/backend/registry.js";
import { SwarmgateError } from "../src/errors.js";
import type { Ruleset } from "../src/ir/ruleset.js";
import { withNetns } from "../src/system/netns.js";
import { writeFilesAtomically } from "../src/system/files.js";
import { guard } from "../src/cli/report.js";
import { cli, ROOT } from "./helpers/cli.js";
import { swarmgate } from "./helpers/cli-in-netns.js";
import { FOREIGN_IPTABLES, FOREIGN_NFT, iptablesSave, nftList } from "./helpers/kernel.js";

// A rename that fails on demand, to prove a half-done set of renames is undone.
const failRename = vi.hoisted(() => ({ on: undefined as string | undefined }));
vi.mock("node:fs", async (original) => {
  const real = await original<typeof import("node:fs")>();
  const renameSync: typeof real.renameSync = (from, to) => {
    if (failRename.on !== undefined && String(to) === failRename.on) throw Object.assign(new Error("EIO (injected)"), { code: "EIO", path: String(to) });
    real.renameSync(from, to);
  };
  return { ...real, default: { ...real, renameSync }, renameSync };
});
afterEach(() => { failRename.on = undefined; });

const STANDALONE = join(ROOT, "examples", "standalone.yaml");
const tmp = () => mkdtempSync(join(tmpdir(), "sg-hostile-"));
const json = (stdout: string) => JSON.parse(stdout) as { ok: boolean; errors: { code: string; column?: number }[] };

describe("defect 10: user text never reaches a generated file unescaped", () => {
  test("a policy file name with newlines: the nft file does not flush the ruleset, the script runs nothing", async () => {
    const dir = tmp();
    const marker = join(dir, "INJECTED"); // the script runs in dir, so a relative name lands here
    const nftName = join(dir, "p\nflush ruleset\n#.yaml");
    const shName = join(dir, "p\ntouch INJECTED\n#.yaml");
    copyFileSync(STANDALONE, nftName);
    copyFileSync(STANDALONE, shName);
    expect((await cli(["compile", nftName, "-o", join(dir, "out.nft")])).code).toBe(0);
    expect((await cli(["compile", shName, "-b", "script", "-o", join(dir, "out.sh")])).code).toBe(0);
    for (const f of ["out.nft", "out.sh"]) expect(readFileSync(join(dir, f), "utf8").split("\n").filter((l) => /^(flush|touch)/.test(l))).toEqual([]);
    await withNetns(1, async (ns) => {
      await ns.execChecked("nft", ["-f", "-"], { input: FOREIGN_NFT });
      await ns.execChecked("nft", ["-f", join(dir, "out.nft")]);
      expect(await nftList(ns, "table", "inet", "other_tool")).toContain("198.51.100.9");
      expect((await ns.exec("sh", ["-c", 'cd "$1" && sh ./out.sh status', "sh", dir])).code).toBe(0); // loaded: out.nft above
    });
    expect(existsSync(marker)).toBe(false);
  });

  const hostile: Ruleset = {
    tables: [{
      family: "inet", name: "swarmgate", chains: [{
        name: "input", base: { type: "filter", hook: "input", priority: 0, policy: "accept" },
        rules: [{
          matches: [{ kind: "iifname", name: "eth0", negate: false }],
          verdict: { kind: "log", prefix: 'a"$(id)\\\n-F' },
          origin: { path: "log", intent: 'x"\\ \nCOMMIT\n*filter\n-F INPUT\n# é%`$(id)`;' },
        }],
      }],
    }],
  };

  test("log prefixes and comments with quotes, backslashes, $ and newlines load as text in every backend", async () => {
    const [nft] = emit(hostile, "nft");
    const [v4, v6] = emit(hostile, "iptables");
    await withNetns(1, async (ns) => {
      await ns.execChecked("iptables-restore", [], { input: FOREIGN_IPTABLES });
      const before = await iptablesSave(ns, "iptables-save");
      await ns.execChecked("nft", ["-f", "-"], { input: nft!.text });
      await ns.execChecked("iptables-restore", ["--noflush"], { input: v4!.text });
      await ns.execChecked("ip6tables-restore", ["--noflush"], { input: v6!.text });
      const after = await iptablesSave(ns, "iptables-save");
      // Every foreign line is still there: no injected -F ran.
      for (const line of before.split("\n").filter((l) => l.startsWith("-A"))) expect(after).toContain(line);
    });
  });

  test("an interface name the target would read as a pattern or as syntax is refused", () => {
    for (const name of ["eth*", 'e"th', "a b", "x\ny", "a$b"]) {
      const r: Ruleset = { tables: [{ ...hostile.tables[0]!, chains: [{ ...hostile.tables[0]!.chains[0]!, rules: [{ ...hostile.tables[0]!.chains[0]!.rules[0]!, matches: [{ kind: "iifname", name, negate: false }] }] }] }] };
      for (const backend of ["nft", "iptables", "script"]) {
        expect(() => emit(r, backend), `${backend} ${name}`).toThrow(SwarmgateError);
      }
    }
  });
});

describe("defect 11: only regular files and new paths are written", () => {
  const nodes = () => {
    const dir = tmp();
    execFileSync("mknod", [join(dir, "null"), "c", "1", "3"]);
    execFileSync("mknod", [join(dir, "full"), "c", "1", "7"]);
    execFileSync("mkfifo", [join(dir, "fifo")]);
    mkdirSync(join(dir, "dir"));
    symlinkSync(join(dir, "null"), join(dir, "link-to-null"));
    symlinkSync("/proc/self/fd/1", join(dir, "stdout"));
    symlinkSync(join(dir, "nowhere"), join(dir, "dangling"));
    return dir;
  };

  test.each(["null", "full", "fifo", "dir", "link-to-null", "stdout", "dangling"])("-o %s is refused with OUTPUT_NOT_REGULAR and left as it was", async (name) => {
    const dir = nodes();
    const before = lstatSync(join(dir, name));
    const r = await cli(["compile", STANDALONE, "-o", join(dir, name), "--json"]);
    expect(r.code).toBe(2);
    expect(json(r.stdout).errors[0]!.code).toBe("OUTPUT_NOT_REGULAR");
    const after = lstatSync(join(dir, name));
    expect([after.mode, after.rdev, after.ino]).toEqual([before.mode, before.rdev, before.ino]);
    expect(readdirSync(dir).sort()).toEqual(["dangling", "dir", "fifo", "full", "link-to-null", "null", "stdout"]);
  });

  test("a symlink to a regular file: the file it names is replaced, the link stays a link", async () => {
    const dir = tmp();
    writeFileSync(join(dir, "real.nft"), "old\n");
    symlinkSync("real.nft", join(dir, "link.nft"));
    expect((await cli(["compile", STANDALONE, "-o", join(dir, "link.nft")])).code).toBe(0);
    expect(lstatSync(join(dir, "link.nft")).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(dir, "real.nft"), "utf8")).toContain("table inet swarmgate");
  });
});

describe("defect 22: several output files are written all or none", () => {
  test("x.v6 a directory: x.v4 is not written", async () => {
    const dir = tmp();
    mkdirSync(join(dir, "x.v6"));
    const r = await cli(["compile", STANDALONE, "-b", "iptables", "-o", join(dir, "x"), "--json"]);
    expect(r.code).toBe(2);
    expect(json(r.stdout).errors[0]!.code).toBe("OUTPUT_NOT_REGULAR");
    expect(readdirSync(dir)).toEqual(["x.v6"]);
  });

  test("a rename that fails after another succeeded puts the earlier file back", () => {
    const dir = tmp();
    const [a, b] = [join(dir, "a"), join(dir, "b")];
    writeFileSync(a, "old a");
    failRename.on = b;
    expect(() => writeFilesAtomically([{ path: a, text: "new a" }, { path: b, text: "new b" }])).toThrow(expect.objectContaining({ code: "OUTPUT_WRITE" }));
    expect(readFileSync(a, "utf8")).toBe("old a");
    expect(readdirSync(dir)).toEqual(["a"]);
  });
});

describe("defect 17: numeric options take plain decimal integers in range", () => {
  test.each([
    ["apply", "--confirm", ["abc", "0", "-5", "1e-3", "86401", " 5", "0x10"]],
    ["apply", "--wait", ["abc", "-1", "1.5", "86401"]],
    ["stop", "--wait", ["abc", "1e3"]],
  ])("%s %s: usage error, exit 2, before anything happens", async (command, option, values) => {
    await withNetns(1, async (ns) => {
      await ns.execChecked("nft", ["-f", "-"], { input: FOREIGN_NFT });
      const before = await nftList(ns);
      const stateDir = join(tmp(), "state");
      for (const value of values as string[]) {
        const args = [command, ...(command === "apply" ? [STANDALONE] : []), option, value, "--state-dir", stateDir, "--json"];
        const r = await swarmgate(ns, args);
        expect(r.code, `${option} ${value}`).toBe(2);
        expect(json(r.stdout).errors[0]!.code).toBe("CLI_USAGE");
      }
      expect(await nftList(ns)).toBe(before);
      expect(existsSync(stateDir)).toBe(false);
    });
  });
});

describe("defect 23: under --json every failure is one JSON object on stdout", () => {
  test.each([
    [["compile", STANDALONE, "--bogus", "--json"], "CLI_USAGE"],
    [["compile", STANDALONE, "-b", "pf", "--json"], "BACKEND_UNKNOWN"],
    [["--json", "compile", STANDALONE, "--backend=pf"], "BACKEND_UNKNOWN"],
    [["compile", STANDALONE, "extra", "--json"], "CLI_USAGE"],
    [["explain", STANDALONE, "tcp 1.2.3.4:1 -> 5.6.7.8:2 in eth0", "--uid", "-1", "--json"], "CLI_USAGE"],
    [["--json", "frobnicate"], "CLI_USAGE"],
    [["--json"], "CLI_USAGE"],
  ])("%j → %s", async (args, code) => {
    const r = await cli(args);
    expect(r.code).toBe(2);
    const out = json(r.stdout);
    expect(out.ok).toBe(false);
    expect(out.errors.map((e) => e.code)).toEqual([code]);
  });

  test("a crash is INTERNAL with exit status 70, the stack on stderr", async () => {
    const out = vi.spyOn(process.stdout, "write").mockImplementation(() => true);
    const err = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    const saved = process.exitCode;
    try {
      await guard(true, () => { throw new TypeError("boom"); });
      expect(process.exitCode).toBe(70);
      expect(out).toHaveBeenCalledTimes(1);
      expect(JSON.parse(String(out.mock.calls[0]![0]))).toMatchObject({ ok: false, errors: [{ code: "INTERNAL" }] });
      expect(String(err.mock.calls[0]![0])).toMatch(/TypeError: boom\n\s+at /);
    } finally {
      out.mockRestore();
      err.mockRestore();
      process.exitCode = saved;
    }
  });
});
