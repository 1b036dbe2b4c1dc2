// The command as a user runs it: a separate process, exit statuses, what is
// printed, and what is (never half) written.
import { execFile, execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { cli as run, ROOT } from "./helpers/cli.js";

const cli = (args: string[], cwd = ROOT) => run(args, { cwd });

const STANDALONE = join(ROOT, "examples", "standalone.yaml");
const GATEWAY = join(ROOT, "examples", "gateway.yaml");


const tmp = () => mkdtempSync(join(tmpdir(), "sg-cli-"));
const BAD = "version: 1\nhost:\n  interfce: eth0\nclients:\n  - name: qb\n    ports: 0\n";

describe("swarmgate", () => {
  test("--version and --help", async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
    expect((await cli(["--version"])).stdout.trim()).toBe(pkg.version);
    const help = await cli(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/check[\s\S]*compile[\s\S]*Examples:/);
    for (const command of ["check", "compile"]) {
      const h = await cli([command, "--help"]);
      expect(h.code).toBe(0);
      expect(h.stdout).toMatch(/Examples?:\n\s+swarmgate /);
    }
  });

  test("an unknown option or command is a usage error with status 2", async () => {
    expect((await cli(["compile", "--bogus"])).code).toBe(2);
    expect((await cli(["frobnicate"])).code).toBe(2);
    expect((await cli(["compile", STANDALONE, "--backend", "pf"])).code).toBe(2);
  });
});

describe("swarmgate check", () => {
  test("summarises what is open to whom", async () => {
    const r = await cli(["check", STANDALONE]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/tcp\s+6881\s+anywhere\s+eth0\s+IPv4\+IPv6\s+client qbittorrent/);
    expect(r.stdout).toMatch(/tcp\s+22\s+192\.168\.153\.21\s+eth0\s+IPv4\s+admin ssh/);
    expect(r.stdout).toMatch(/udp\s+53\s+195\.170\.0\.1/);
    expect(r.stdout).toContain("Everything else: logged");
    const g = await cli(["check", GATEWAY]);
    expect(g.stdout).toMatch(/tcp\s+6900-6909\s+anywhere → 192\.168\.1\.4\s+ppp0/);
    // The reason names an IPv6 host whole, not up to its first colon.
    const v6 = await cli(["check", "test/scenarios/gateway-tcp-udp.yaml"]);
    expect(v6.stdout).toMatch(/tcp\s+51413\s+anywhere → 2001:db8:10::20\s+eth1\s+IPv6\s+forward to 2001:db8:10::20\n/);
  });

  test("--json", async () => {
    const r = await cli(["check", "--json", STANDALONE]);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ ok: true, role: "host" });
    expect(out.openings).toContainEqual(expect.objectContaining({ direction: "inbound", protocol: "udp", ports: "6881", families: "IPv4+IPv6" }));
  });

  test("a bad policy: every problem with file:line:column and a caret, status 2, no stack trace", async () => {
    const dir = tmp();
    writeFileSync(join(dir, "p.yaml"), BAD);
    const r = await cli(["check", "p.yaml"], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('p.yaml:3:3: error[POLICY_UNKNOWN_KEY]: unknown key "interfce" in "host" (did you mean "interface"?)');
    expect(r.stderr).toContain("p.yaml:6:12: error[POLICY_BAD_PORT]");
    expect(r.stderr).toContain(" 6 |     ports: 0\n   |            ^");
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const j = await cli(["check", "--json", "p.yaml"], dir);
    expect(j.code).toBe(2);
    expect(JSON.parse(j.stdout)).toEqual({ ok: false, errors: [
      expect.objectContaining({ code: "POLICY_UNKNOWN_KEY", line: 3, column: 3 }),
      expect.objectContaining({ code: "POLICY_BAD_PORT", line: 6, column: 12 }),
    ] });
  });

  test("default policy path: ./swarmgate.yaml, else a clear error", async () => {
    const dir = tmp();
    const none = await cli(["check"], dir);
    if (!existsSync("/etc/swarmgate/policy.yaml")) {
      expect(none.code).toBe(2);
      expect(none.stderr).toContain("error[POLICY_NOT_FOUND]");
    }
    copyFileSync(GATEWAY, join(dir, "swarmgate.yaml"));
    const found = await cli(["check"], dir);
    expect(found.code).toBe(0);
    expect(found.stdout).toContain("./swarmgate.yaml: valid gateway policy");
  });
});

describe("swarmgate compile", () => {
  test("to standard output, each backend", async () => {
    expect((await cli(["compile", STANDALONE])).stdout).toContain("table inet swarmgate {");
    expect((await cli(["compile", STANDALONE, "--backend", "iptables"])).stdout).toContain(":SWARMGATE-INPUT - [0:0]");
    expect((await cli(["compile", STANDALONE, "-b", "script"])).stdout).toMatch(/^#!\/bin\/sh/);
    const j = JSON.parse((await cli(["compile", GATEWAY, "--backend", "iptables", "--json"])).stdout);
    expect(j.artifacts.map((a: { suffix: string }) => a.suffix)).toEqual(["v4", "v6"]);
  });

  test("-o writes the files; iptables writes FILE.v4 and FILE.v6; the script is executable", async () => {
    const dir = tmp();
    expect((await cli(["compile", GATEWAY, "-o", join(dir, "rules.nft")])).code).toBe(0);
    expect(readFileSync(join(dir, "rules.nft"), "utf8")).toContain("dnat ip to 192.168.1.3");
    expect((await cli(["compile", GATEWAY, "-b", "iptables", "-o", join(dir, "rules")])).code).toBe(0);
    expect(readFileSync(join(dir, "rules.v4"), "utf8")).toContain("-j DNAT --to-destination 192.168.1.3");
    expect(readFileSync(join(dir, "rules.v6"), "utf8")).not.toContain("DNAT");
    expect((await cli(["compile", GATEWAY, "-b", "script", "-o", join(dir, "fw.sh")])).code).toBe(0);
    expect(statSync(join(dir, "fw.sh")).mode & 0o111).not.toBe(0);
  });

  test("a bad policy writes nothing and leaves an existing output file as it was", async () => {
    const dir = tmp();
    writeFileSync(join(dir, "p.yaml"), BAD);
    writeFileSync(join(dir, "out.nft"), "previous\n");
    const r = await cli(["compile", "p.yaml", "-o", "out.nft"], dir);
    expect(r.code).toBe(2);
    expect(readFileSync(join(dir, "out.nft"), "utf8")).toBe("previous\n");
    const r2 = await cli(["compile", "p.yaml", "-b", "iptables", "-o", "new"], dir);
    expect(r2.code).toBe(2);
    expect(existsSync(join(dir, "new.v4"))).toBe(false);
  });

  test("an unwritable output is a clear error, not a stack trace", async () => {
    const r = await cli(["compile", STANDALONE, "-o", "/nonexistent-dir/out.nft"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error[OUTPUT_WRITE]");
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

// Issue 8, defect 21: the unit is valid, names the paths as they are at boot,
// and carries exactly the intended argv whatever the paths contain.
describe("swarmgate install under hostile paths", () => {
  /** systemd.service(5) "COMMAND LINES" for the words swarmgate writes: plain, or double-quoted with C escapes; then %% and $$. */
  function execArgv(line: string): string[] {
    const words: string[] = [];
    for (const m of line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)) {
      const raw = m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : m[2]!;
      words.push(raw.replace(/%%/g, "%").replace(/\$\$/g, "$"));
    }
    return words;
  }
  const execStart = (unit: string) => execArgv(/^ExecStart=(.*)$/m.exec(unit)![1]!);
  const unitOf = (root: string) => readFileSync(join(root, "etc/systemd/system/swarmgate.service"), "utf8");

  test("--root with a space and %: the unit names /etc/swarmgate/policy.yaml and systemd-analyze verifies it", async () => {
    const root = mkdtempSync(join(tmpdir(), "sg root %n $x-"));
    const stateDir = '/var/lib/s g/%h/$USER/"q"\\b;x';
    const r = await cli(["install", STANDALONE, "--root", root, "--state-dir", stateDir, "-b", "iptables"]);
    expect(r.code, r.stderr).toBe(0);
    const argv = execStart(unitOf(root));
    expect(argv.slice(2)).toEqual(["apply", "/etc/swarmgate/policy.yaml", "--force", "--state-dir", stateDir, "--backend", "iptables"]);
    expect(argv[0]).toBe(process.execPath);
    const verify = await new Promise<string | null>((res) =>
      execFile("systemd-analyze", ["verify", join(root, "etc/systemd/system/swarmgate.service")], (e, _out, err) => res(e ? err : null)));
    expect(verify).toBeNull();
  });

  test.each([
    ["--state-dir", "/var/lib/x\nExecStartPre=/bin/touch /tmp/pwned"],
    ["--state-dir", "/var/lib/x\ry"],
    ["--root", "ROOT/with\nnewline"],
  ])("%s with a control character: INSTALL_FAILED, exit 2, nothing written", async (option, value) => {
    const root = tmp();
    const args = option === "--root" ? ["--root", value.replace("ROOT", root)] : ["--root", root, option, value];
    const r = await cli(["install", STANDALONE, ...args, "--json"]);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout).errors[0].code).toBe("INSTALL_FAILED");
    expect(readdirSync(root)).toEqual([]);
  });

  test.each([["empty", ""], ["invalid", BAD]])("an %s policy is refused before anything is written", async (_, text) => {
    const root = tmp();
    const policy = join(tmp(), "p.yaml");
    writeFileSync(policy, text);
    const r = await cli(["install", policy, "--root", root, "--json"]);
    expect(r.code).toBe(2);
    const errors = JSON.parse(r.stdout).errors as { code: string; file?: string }[];
    expect(errors[0]!.code).toMatch(/^POLICY_/);
    expect(errors[0]!.file).toBe(policy);
    expect(readdirSync(root)).toEqual([]);
  });

  test("a FIFO as the policy is refused, not waited on", async () => {
    const root = tmp();
    const fifo = join(tmp(), "p.yaml");
    execFileSync("mkfifo", [fifo]);
    const r = await cli(["install", fifo, "--root", root, "--json"]);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout).errors[0].code).toBe("INSTALL_FAILED");
  });
});
