// apply, stop, status, diff, rollback — and the faults they must survive —
// each inside a throwaway network namespace with its own state directory.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { withNetns, type Netns } from "../src/system/netns.js";
import { run } from "../src/system/run.js";
import { MAIN, ROOT, swarmgate } from "./helpers/cli-in-netns.js";
import { FOREIGN_IPTABLES, FOREIGN_NFT, iptablesSave, nftList, withoutSwarmgate } from "./helpers/kernel.js";

const stateDir = () => mkdtempSync(join(tmpdir(), "sg-state-"));
const STANDALONE = "examples/standalone.yaml";
const GATEWAY = "examples/gateway.yaml";

async function foreign(ns: Netns): Promise<() => Promise<string>> {
  await ns.execChecked("iptables-restore", [], { input: FOREIGN_IPTABLES });
  await ns.execChecked("ip6tables-restore", [], { input: "*filter\n:INPUT ACCEPT [0:0]\n:f2b-sshd - [0:0]\n-A INPUT -p tcp -m tcp --dport 22 -j f2b-sshd\nCOMMIT\n" });
  await ns.execChecked("nft", ["-f", "-"], { input: FOREIGN_NFT });
  return async () => [withoutSwarmgate(await iptablesSave(ns, "iptables-save")), withoutSwarmgate(await iptablesSave(ns, "ip6tables-save")), await nftList(ns, "table", "inet", "other_tool")].join("\n---\n");
}

const everything = async (ns: Netns) => `${await nftList(ns)}\n${await iptablesSave(ns, "iptables-save")}\n${await iptablesSave(ns, "ip6tables-save")}`;
const sysctl = async (ns: Netns, key: string) => (await ns.execChecked("cat", [`/proc/sys/${key.replace(/\./g, "/")}`])).stdout.trim();

describe.each(["nft", "iptables"] as const)("with %s", (backend) => {
  test("apply twice, status, diff, stop: one ruleset, no duplicates, other tools' rules untouched, kernel settings restored", async () => {
    await withNetns(1, async (ns) => {
      const sd = stateDir();
      const others = await foreign(ns);
      const before = await others();
      const forwardBefore = await sysctl(ns, "net.ipv4.ip_forward");
      const first = await swarmgate(ns, ["apply", GATEWAY, "-b", backend, "--state-dir", sd]);
      expect(first.code, first.stderr).toBe(0);
      const once = await everything(ns);
      expect((await swarmgate(ns, ["apply", GATEWAY, "-b", backend, "--state-dir", sd])).code).toBe(0);
      expect(await everything(ns)).toBe(once);
      expect(await others()).toBe(before);
      expect(await sysctl(ns, "net.ipv4.ip_forward")).toBe("1");

      const status = await swarmgate(ns, ["status", "--state-dir", sd, "--json"]);
      expect(status.code).toBe(0);
      const s = JSON.parse(status.stdout);
      expect(s).toMatchObject({ ok: true, loaded: true, backend, drift: { inSync: true } });
      expect(s.rules).toContainEqual(expect.objectContaining({ intent: "forward to 192.168.1.3: peer connections, TCP 6890-6899 [forward[0]]", packets: 0 }));

      expect((await swarmgate(ns, ["diff", GATEWAY, "-b", backend])).stdout).toMatch(/^no changes/);
      const diff = await swarmgate(ns, ["diff", STANDALONE, "-b", backend]);
      expect(diff.stdout).toContain("+ client qbittorrent: inbound peer connections, TCP 6881 [clients[0]]");
      expect(diff.stdout).toContain("- forward to 192.168.1.3: peer connections, TCP 6890-6899 [forward[0]]");

      const stop = await swarmgate(ns, ["stop", "--state-dir", sd]);
      expect(stop.code).toBe(0);
      expect(stop.stdout).toContain("removed swarmgate's rules");
      expect(stop.stdout + stop.stderr).toMatch(/default-drop policy still filter|rules of other tools remain/);
      expect(await everything(ns)).not.toContain("swarmgate");
      expect(await everything(ns)).not.toContain("SWARMGATE");
      expect(await others()).toBe(before);
      expect(await sysctl(ns, "net.ipv4.ip_forward")).toBe(forwardBefore);
      expect((await swarmgate(ns, ["status", "--state-dir", sd])).code).toBe(1);
    });
  });

  test("status remembers how the kernel listed the applied policy, and still sees every drift", async () => {
    await withNetns(1, async (ns) => {
      const sd = stateDir();
      expect((await swarmgate(ns, ["apply", STANDALONE, "-b", backend, "--state-dir", sd])).code).toBe(0);
      const remembered = JSON.parse(readFileSync(join(sd, "readback.json"), "utf8"));
      expect(remembered).toMatchObject({ backend, written: expect.stringMatching(/^[0-9a-f]{64}$/), listed: expect.stringMatching(/^[0-9a-f]{64}$/) });
      const drift = async () => JSON.parse((await swarmgate(ns, ["status", "--state-dir", sd, "--json"])).stdout).drift;
      expect(await drift()).toEqual({ inSync: true, missing: [], unexpected: [] });
      // Another hand adds a rule to swarmgate's objects: the listing no longer matches what was remembered.
      const add = backend === "nft" ? ["nft", ["add", "rule", "inet", "swarmgate", "input", "tcp", "dport", "9999", "accept"]] as const
        : ["iptables", ["-A", "SWARMGATE-INPUT", "-p", "tcp", "--dport", "9999", "-j", "ACCEPT"]] as const;
      await ns.execChecked(add[0], [...add[1]]);
      const drifted = await drift();
      expect(drifted.inSync).toBe(false);
      expect(drifted.unexpected.join("\n")).toContain("9999");
      // A remembered listing that is wrong costs a round trip through a sandbox, never a wrong answer; the answer is remembered.
      expect((await swarmgate(ns, ["apply", STANDALONE, "-b", backend, "--state-dir", sd])).code).toBe(0);
      writeFileSync(join(sd, "readback.json"), JSON.stringify({ ...remembered, listed: "0".repeat(64) }));
      expect(await drift()).toEqual({ inSync: true, missing: [], unexpected: [] });
      expect(JSON.parse(readFileSync(join(sd, "readback.json"), "utf8"))).toEqual(remembered);
    });
  });

  test("a ruleset the kernel refuses leaves the old ruleset in force, byte for byte", async () => {
    await withNetns(1, async (ns) => {
      const sd = stateDir();
      await foreign(ns);
      expect((await swarmgate(ns, ["apply", STANDALONE, "-b", backend, "--state-dir", sd])).code).toBe(0);
      const before = await everything(ns);
      // The real apply code with a planted fault: a jump to a chain that does not exist.
      const r = await ns.exec(process.execPath, [join(ROOT, "test/fixtures/apply-broken.mjs"), GATEWAY, backend, sd]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/error\[LOAD_FAILED\]: .* refused the .*ruleset: .*; the previous ruleset is in force again/);
      expect(await everything(ns)).toBe(before);
    });
  });
});

test("--confirm 3 without confirm: the previous ruleset is back even after the apply process is SIGKILLed", async () => {
  await withNetns(1, async (ns) => {
    const sd = stateDir();
    expect((await swarmgate(ns, ["apply", STANDALONE, "--state-dir", sd])).code).toBe(0);
    const before = await everything(ns);
    const child = spawn("ip", ["netns", "exec", ns.name, process.execPath, MAIN, "apply", GATEWAY, "--confirm", "3", "--state-dir", sd], { cwd: ROOT, env: { ...process.env, SSH_CONNECTION: "" } });
    await new Promise<void>((resolve) => child.stderr.on("data", (d: Buffer) => { if (d.toString().includes("within 3 s")) resolve(); }));
    expect(await everything(ns)).toContain("forward to 192.168.1.3");
    child.kill("SIGKILL");
    await new Promise((r) => setTimeout(r, 4500));
    expect(await everything(ns)).toBe(before);
    expect(JSON.parse(readFileSync(join(sd, "confirm-result.json"), "utf8")).outcome).toBe("rolled back");
  });
}, 30_000);

test("--confirm kept by swarmgate confirm; a waiting apply that is not confirmed exits 3", async () => {
  await withNetns(1, async (ns) => {
    const sd = stateDir();
    const waiting = swarmgate(ns, ["apply", GATEWAY, "--confirm", "20", "--state-dir", sd]);
    for (let i = 0; i < 100 && (await swarmgate(ns, ["confirm", "--state-dir", sd])).code !== 0; i++) await new Promise((r) => setTimeout(r, 100));
    const done = await waiting;
    expect(done.code).toBe(0);
    expect(done.stdout).toContain("confirmed");
    expect(await nftList(ns)).toContain("forward to 192.168.1.3");
    expect((await swarmgate(ns, ["confirm", "--state-dir", sd])).stderr).toContain("NOTHING_TO_CONFIRM");
    const late = await swarmgate(ns, ["apply", STANDALONE, "--confirm", "1", "--state-dir", sd]);
    expect(late.code).toBe(3);
    expect(await nftList(ns)).toContain("forward to 192.168.1.3");
  });
}, 40_000);

test("two applies at once: one waits for the other, and the result is one of the two policies, complete", async () => {
  await withNetns(1, async (ns) => {
    const sd = stateDir();
    const [a, b] = await Promise.all([
      swarmgate(ns, ["apply", STANDALONE, "--state-dir", sd]),
      swarmgate(ns, ["apply", GATEWAY, "--state-dir", sd]),
    ]);
    expect([a.code, b.code]).toEqual([0, 0]);
    const inSync = await Promise.all([STANDALONE, GATEWAY].map(async (p) => JSON.parse((await swarmgate(ns, ["status", p, "--state-dir", sd, "--json"])).stdout).drift.inSync));
    expect(inSync.filter(Boolean)).toHaveLength(1);
  });
});

test.each([
  ["a read-only state directory", "mount -t tmpfs -o ro,size=1m tmpfs \"$SD\""],
  ["a full disk", "mount -t tmpfs -o size=64k tmpfs \"$SD\"; dd if=/dev/zero of=\"$SD/fill\" bs=4k count=100 2>/dev/null || true"],
])("%s: apply refuses before touching the kernel", async (_what, prepare) => {
  await withNetns(1, async (ns) => {
    const sd = stateDir();
    expect((await swarmgate(ns, ["apply", STANDALONE, "--state-dir", join(sd, "ok")])).code).toBe(0);
    const before = await everything(ns);
    // A private mount namespace: the tmpfs exists for this one command only.
    const script = `set -e; SD=${JSON.stringify(join(sd, "broken"))}; mkdir -p "$SD"; ${prepare}; ip netns exec ${ns.name} ${process.execPath} ${MAIN} apply ${GATEWAY} --state-dir "$SD"`;
    const r = await run("unshare", ["-m", "--propagation", "private", "sh", "-c", script]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error[STATE_UNWRITABLE]");
    expect(await everything(ns)).toBe(before);
  });
});

test("the lockout guard refuses a ruleset that would cut the SSH session, unless --force", async () => {
  await withNetns(1, async (ns) => {
    const sd = stateDir();
    const cut = await swarmgate(ns, ["apply", STANDALONE, "--state-dir", sd], { SSH_CONNECTION: "203.0.113.9 50000 192.168.153.51 22" });
    expect(cut.code).toBe(2);
    expect(cut.stderr).toContain("error[LOCKOUT]: the new ruleset would cut your SSH access: 203.0.113.9 → port 22 (SSH_CONNECTION)");
    expect(await nftList(ns)).not.toContain("swarmgate");
    expect((await swarmgate(ns, ["apply", STANDALONE, "--state-dir", sd], { SSH_CONNECTION: "192.168.153.21 50000 192.168.153.51 22" })).code).toBe(0);
    expect((await swarmgate(ns, ["apply", STANDALONE, "--state-dir", sd, "--force"], { SSH_CONNECTION: "203.0.113.9 50000 192.168.153.51 22" })).code).toBe(0);
  });
});

test("rollback --list and --to restore a backup", async () => {
  await withNetns(1, async (ns) => {
    const sd = stateDir();
    await swarmgate(ns, ["apply", STANDALONE, "--state-dir", sd]);
    const withStandalone = await everything(ns);
    await swarmgate(ns, ["apply", GATEWAY, "--state-dir", sd]);
    const list = JSON.parse((await swarmgate(ns, ["rollback", "--list", "--json", "--state-dir", sd])).stdout).backups as string[];
    expect(list).toHaveLength(2);
    expect((await swarmgate(ns, ["rollback", "--to", list[1]!, "--state-dir", sd])).code).toBe(0);
    expect(await everything(ns)).toBe(withStandalone);
    expect((await swarmgate(ns, ["rollback", "--to", "nope", "--state-dir", sd])).stderr).toContain("error[NO_BACKUP]");
  });
});

test("install writes a unit that systemd-analyze verifies, and a policy; uninstall removes the unit", async () => {
  const rootDir = mkdtempSync(join(tmpdir(), "sg-root-"));
  const r = await run(process.execPath, [MAIN, "install", STANDALONE, "--root", rootDir]);
  expect(r.code, r.stderr).toBe(0);
  const unit = join(rootDir, "etc/systemd/system/swarmgate.service");
  expect(readFileSync(join(rootDir, "etc/swarmgate/policy.yaml"), "utf8")).toBe(readFileSync(join(ROOT, STANDALONE), "utf8"));
  expect(readFileSync(unit, "utf8")).toMatch(/Before=network-pre\.target[\s\S]*ExecStart=\S+node\S* \S+main\.js apply \S+policy\.yaml --force/);
  const verify = await run("systemd-analyze", ["verify", unit]);
  expect(verify.code, verify.stderr).toBe(0);
  expect((await run(process.execPath, [MAIN, "uninstall", "--root", rootDir])).stdout).toContain("removed");
  expect((await run(process.execPath, [MAIN, "uninstall", "--root", rootDir])).stdout).toContain("nothing to remove");
});
