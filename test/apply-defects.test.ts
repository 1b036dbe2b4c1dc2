// Regression tests for the apply defects of issue 8, each reproduced in a
// throwaway namespace: restore only what swarmgate owns, kernel settings that
// travel with the ruleset, outcomes that match the kernel, and a lock and a
// journal that survive crashes.
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sysctl = async (ns: Netns, key: string) => (await ns.execChecked("cat", [`/proc/sys/${key.replace(/\./g, "/")}`])).stdout.trim();
const setSysctl = (ns: Netns, key: string, v: string) => ns.execChecked("sysctl", ["-q", "-w", `${key}=${v}`]);

/** Docker- and fail2ban-like chains through iptables-nft, and another tool's nft table with a set. */
async function foreign(ns: Netns): Promise<() => Promise<string>> {
  await ns.execChecked("iptables-restore", [], { input: FOREIGN_IPTABLES });
  await ns.execChecked("ip6tables-restore", [], { input: "*filter\n:INPUT ACCEPT [0:0]\n:f2b-sshd - [0:0]\n-A INPUT -p tcp -m tcp --dport 22 -j f2b-sshd\nCOMMIT\n" });
  await ns.execChecked("nft", ["-f", "-"], { input: FOREIGN_NFT });
  return async () => [withoutSwarmgate(await iptablesSave(ns, "iptables-save")), withoutSwarmgate(await iptablesSave(ns, "ip6tables-save")), await nftList(ns, "table", "inet", "other_tool")].join("\n---\n");
}

const ours = async (ns: Netns) => {
  const nft = await ns.exec("nft", ["list", "table", "inet", "swarmgate"]);
  const v4 = (await iptablesSave(ns, "iptables-save")).split("\n").filter((l) => l.includes("SWARMGATE-")).join("\n");
  const v6 = (await iptablesSave(ns, "ip6tables-save")).split("\n").filter((l) => l.includes("SWARMGATE-")).join("\n");
  return `${nft.code === 0 ? nft.stdout.replace(/packets \d+ bytes \d+/g, "") : ""}\n${v4}\n${v6}`;
};

/** A directory of wrappers: `tool` fails (exit 1) while the marker file exists, else runs the real one. */
function faultyTools(tools: string[]): { path: string; arm: () => void; disarm: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "sg-fake-"));
  const marker = join(dir, "armed");
  for (const tool of tools) {
    const real = ["/usr/sbin", "/sbin", "/usr/bin"].map((d) => join(d, tool)).find(existsSync)!;
    writeFileSync(join(dir, tool), `#!/bin/sh\nif [ -e '${marker}' ]; then cat >/dev/null; echo "${tool}: injected fault" >&2; exit 1; fi\nexec '${real}' "$@"\n`);
    chmodSync(join(dir, tool), 0o755);
  }
  return { path: `${dir}:${process.env.PATH}`, arm: () => writeFileSync(marker, ""), disarm: () => rmSync(marker, { force: true }) };
}

function background(ns: Netns, args: string[], env: Record<string, string> = {}) {
  const child = spawn("ip", ["netns", "exec", ns.name, process.execPath, MAIN, ...args], { cwd: ROOT, env: { ...process.env, SSH_CONNECTION: "", ...env } });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => { stdout += d; });
  child.stderr.on("data", (d) => { stderr += d; });
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((r) => child.on("close", (code) => r({ code, stdout, stderr })));
  const said = (text: string) => new Promise<void>((r) => { const t = setInterval(() => { if (stderr.includes(text)) { clearInterval(t); r(); } }, 20); });
  return { child, done, said };
}

describe.each(["nft", "iptables"] as const)("with %s", (backend) => {
  test("1, 3: a confirm timeout restores only swarmgate's objects; foreign changes made in the window stay; a failed restore is reported as failed", async () => {
    await withNetns(1, async (ns) => {
      const sd = stateDir();
      const others = await foreign(ns);
      // A foreign rule that nft's text syntax cannot express (it made the old whole-ruleset restore fail).
      await ns.execChecked("iptables", ["-A", "INPUT", "-p", "tcp", "--dport", "2222", "-m", "recent", "--set", "--name", "probe"]);
      expect((await swarmgate(ns, ["apply", STANDALONE, "-b", backend, "--state-dir", sd])).code).toBe(0);
      const old = await ours(ns);
      const a = background(ns, ["apply", GATEWAY, "-b", backend, "--confirm", "2", "--state-dir", sd]);
      await a.said("within 2 s");
      await ns.execChecked("nft", ["add", "element", "inet", "other_tool", "banned", "{ 198.51.100.77 }"]);
      await ns.execChecked("nft", ["add", "table", "inet", "late_tool"]);
      const during = await others();
      const r = await a.done;
      expect(r.code, r.stderr).toBe(3);
      expect(r.stdout).toContain("the previous ruleset was restored");
      expect(await ours(ns)).toBe(old);
      expect(await others()).toBe(during);
      expect(await nftList(ns, "table", "inet", "other_tool")).toContain("198.51.100.77");
      expect((await ns.exec("nft", ["list", "table", "inet", "late_tool"])).code).toBe(0);
      expect((await ns.execChecked("iptables-save", [])).stdout).toContain("-m recent --set --name probe");
      expect(await sysctl(ns, "net.ipv4.ip_forward")).toBe("0");

      // Now the timer's restore fails: the outcome says so, exit 4, and the next command finishes the job.
      const tools = faultyTools(backend === "nft" ? ["nft"] : ["iptables-restore"]);
      const b = background(ns, ["apply", GATEWAY, "-b", backend, "--confirm", "2", "--state-dir", sd], { PATH: tools.path });
      await b.said("within 2 s");
      tools.arm();
      const failed = await b.done;
      expect(failed.code, failed.stdout + failed.stderr).toBe(4);
      expect(failed.stderr).toMatch(/FAILED/);
      expect(await ours(ns)).not.toBe(old);
      tools.disarm();
      const next = await swarmgate(ns, ["status", "--state-dir", sd]);
      expect(next.stderr).toMatch(/completed an interrupted timeout|retrying the restore/);
      expect(await ours(ns)).toBe(old);
      expect(await sysctl(ns, "net.ipv4.ip_forward")).toBe("0");
    });
  }, 60_000);

  test("2: rollback and stop never make iptables-nft tables unreadable for iptables-save", async () => {
    await withNetns(1, async (ns) => {
      const sd = stateDir();
      const others = await foreign(ns);
      const before = await others();
      expect((await swarmgate(ns, ["apply", STANDALONE, "-b", backend, "--state-dir", sd])).code).toBe(0);
      expect((await swarmgate(ns, ["apply", GATEWAY, "-b", backend, "--state-dir", sd])).code).toBe(0);
      expect((await swarmgate(ns, ["rollback", "--state-dir", sd])).code).toBe(0);
      const save = await ns.exec("iptables-save", []);
      expect(save.code).toBe(0);
      expect(save.stdout + save.stderr).not.toMatch(/incompatible/);
      expect((await ns.exec("iptables", ["-L", "f2b-sshd", "-n"])).code).toBe(0);
      expect(await others()).toBe(before);
      expect((await swarmgate(ns, ["stop", "--state-dir", sd])).code).toBe(0);
      expect(await others()).toBe(before);
    });
  });

  test("8: both families move together: ip6tables-restore failing after iptables-restore leaves both on the old policy", async () => {
    if (backend === "nft") return;
    await withNetns(1, async (ns) => {
      const sd = stateDir();
      expect((await swarmgate(ns, ["apply", STANDALONE, "-b", backend, "--state-dir", sd])).code).toBe(0);
      const old = await ours(ns);
      const tools = faultyTools(["ip6tables-restore"]);
      tools.arm();
      const r = await swarmgate(ns, ["apply", GATEWAY, "-b", backend, "--state-dir", sd], { PATH: tools.path });
      // Undoing the v4 half needs no ip6tables-restore: the v6 half never changed.
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain("error[LOAD_FAILED]");
      expect(await ours(ns)).toBe(old);
      expect(await sysctl(ns, "net.ipv4.ip_forward")).toBe("0");
    });
  });
});

test("4: kill -9 of the confirm timer: the waiting apply restores at the deadline itself; confirm tells the truth", async () => {
  await withNetns(1, async (ns) => {
    const sd = stateDir();
    expect((await swarmgate(ns, ["apply", STANDALONE, "--state-dir", sd])).code).toBe(0);
    const old = await ours(ns);
    const a = background(ns, ["apply", GATEWAY, "--confirm", "3", "--state-dir", sd]);
    await a.said("within 3 s");
    const pending = JSON.parse(readFileSync(join(sd, "pending.json"), "utf8")) as { timerPid: number };
    process.kill(pending.timerPid, "SIGKILL");
    const r = await a.done;
    expect(r.code).toBe(3);
    expect(await ours(ns)).toBe(old);
    const c = await swarmgate(ns, ["confirm", "--state-dir", sd]);
    expect(c.code).toBe(2);
    expect(c.stderr).toMatch(/NOTHING_TO_CONFIRM.*restored/);
  });
}, 30_000);

test("4: kill -9 of both the apply and its timer: the next command restores after the deadline", async () => {
  await withNetns(1, async (ns) => {
    const sd = stateDir();
    // A window long enough that the timer cannot reach the deadline before it is killed, even on a loaded machine.
    const a = background(ns, ["apply", GATEWAY, "--confirm", "4", "--state-dir", sd]);
    await a.said("within 4 s");
    const pending = JSON.parse(readFileSync(join(sd, "pending.json"), "utf8")) as { timerPid: number };
    process.kill(pending.timerPid, "SIGKILL");
    a.child.kill("SIGKILL");
    await a.done;
    await sleep(4500);
    expect(await ours(ns)).toContain("forward to 192.168.1.3");
    const s = await swarmgate(ns, ["status", "--state-dir", sd]);
    expect(s.stderr).toContain("expired while its timer was not running");
    expect(s.code).toBe(1); // not loaded: the state before the apply had nothing
    expect(await ours(ns)).not.toContain("swarmgate");
    expect(await sysctl(ns, "net.ipv4.ip_forward")).toBe("0");
  });
}, 30_000);

test("5: a host policy after a gateway policy turns forwarding back off, proven with real packets", async () => {
  await withNetns(3, async (left, host, right) => {
    const sd = stateDir();
    await host.execChecked("ip", ["link", "add", "lan0", "type", "veth", "peer", "name", "p0", "netns", left.name]);
    await host.execChecked("ip", ["link", "add", "ppp0", "type", "veth", "peer", "name", "p1", "netns", right.name]);
    for (const [ns, dev, addr, via] of [[host, "lan0", "192.168.1.1/24", ""], [host, "ppp0", "203.0.113.1/24", ""], [left, "p0", "192.168.1.3/24", "192.168.1.1"], [right, "p1", "203.0.113.9/24", "203.0.113.1"]] as const) {
      await ns.execChecked("ip", ["addr", "add", addr, "dev", dev]);
      await ns.execChecked("ip", ["link", "set", dev, "up"]);
      if (via) await ns.execChecked("ip", ["route", "add", "default", "via", via]);
    }
    await setSysctl(host, "net.ipv4.ip_forward", "0");
    expect((await swarmgate(host, ["apply", GATEWAY, "--state-dir", sd])).code).toBe(0);
    expect(await sysctl(host, "net.ipv4.ip_forward")).toBe("1");
    const ping = () => left.exec("ping", ["-c", "1", "-W", "1", "203.0.113.9"]);
    expect((await ping()).code).toBe(0); // the gateway routes (and masquerades) the LAN
    expect((await swarmgate(host, ["apply", STANDALONE, "--state-dir", sd])).code).toBe(0);
    expect(await sysctl(host, "net.ipv4.ip_forward")).toBe("0");
    expect(await sysctl(host, "net.ipv6.conf.all.forwarding")).toBe("0");
    expect((await ping()).code).not.toBe(0);
  });
}, 40_000);

test("6: a second gateway's confirm timeout brings back the first gateway with forwarding on and its record", async () => {
  await withNetns(1, async (ns) => {
    const sd = stateDir();
    const second = join(mkdtempSync(join(tmpdir(), "sg-pol-")), "gw2.yaml");
    writeFileSync(second, readFileSync(join(ROOT, GATEWAY), "utf8").replace(/6890-6899/g, "7000-7009"));
    expect((await swarmgate(ns, ["apply", GATEWAY, "--state-dir", sd])).code).toBe(0);
    const first = await ours(ns);
    expect((await swarmgate(ns, ["apply", second, "--confirm", "1", "--state-dir", sd])).code).toBe(3);
    expect(await ours(ns)).toBe(first);
    expect(await sysctl(ns, "net.ipv4.ip_forward")).toBe("1");
    const s = JSON.parse((await swarmgate(ns, ["status", "--json", "--state-dir", sd])).stdout);
    expect(s).toMatchObject({ ok: true, loaded: true, drift: { inSync: true } });
    expect(s.policy).toMatch(/examples\/gateway\.yaml$/);
  });
}, 30_000);

test("7: a state directory without a free inode: nothing in the kernel changes, and stop afterwards stays consistent", async () => {
  await withNetns(1, async (ns) => {
    const base = stateDir();
    await setSysctl(ns, "net.ipv4.ip_forward", "0");
    const script = `set -e; SD=${JSON.stringify(join(base, "tiny"))}; mkdir -p "$SD"; mount -t tmpfs -o size=1m,nr_inodes=4 tmpfs "$SD"; ` +
      `ip netns exec ${ns.name} ${process.execPath} ${MAIN} apply ${GATEWAY} --state-dir "$SD" || true`;
    const r = await run("unshare", ["-m", "--propagation", "private", "sh", "-c", script]);
    expect(r.stdout + r.stderr).toMatch(/error\[STATE_UNWRITABLE\]/);
    expect(await ours(ns)).not.toMatch(/swarmgate|SWARMGATE/);
    expect(await sysctl(ns, "net.ipv4.ip_forward")).toBe("0");
  });
});

test("9: the lockout guard judges a session on the interface its route really uses", async () => {
  await withNetns(2, async (host, client) => {
    const sd = stateDir();
    await host.execChecked("ip", ["link", "add", "eth1", "type", "veth", "peer", "name", "c0", "netns", client.name]);
    await host.execChecked("ip", ["addr", "add", "10.9.0.1/24", "dev", "eth1"]);
    await host.execChecked("ip", ["link", "set", "eth1", "up"]);
    await client.execChecked("ip", ["link", "set", "c0", "up"]);
    const policy = join(mkdtempSync(join(tmpdir(), "sg-pol-")), "p.yaml");
    // SSH is open to 10.9.0.2, but only on eth0; the session arrives on eth1.
    writeFileSync(policy, "version: 1\nhost:\n  interface: eth0\nadmin:\n  - name: ssh\n    port: 22\n    from: [10.9.0.2]\n");
    const r = await swarmgate(host, ["apply", policy, "--state-dir", sd], { SSH_CONNECTION: "10.9.0.2 50000 10.9.0.1 22" });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error[LOCKOUT]");
    expect(r.stderr).toContain("via eth1");
  });
});

test("18: failed applies never prune the backup in force nor the one from before the first apply", async () => {
  await withNetns(1, async (ns) => {
    const sd = stateDir();
    await foreign(ns);
    expect((await swarmgate(ns, ["apply", STANDALONE, "--state-dir", sd])).code).toBe(0);
    for (let i = 0; i < 12; i++) {
      const r = await ns.exec(process.execPath, [join(ROOT, "test/fixtures/apply-broken.mjs"), GATEWAY, "nft", sd]);
      expect(r.code).toBe(2);
    }
    expect((await swarmgate(ns, ["apply", GATEWAY, "--state-dir", sd])).code).toBe(0);
    const list = JSON.parse((await swarmgate(ns, ["rollback", "--list", "--json", "--state-dir", sd])).stdout);
    expect(list.backups).toContain(list.origin);
    expect(list.backups).toContain(list.current);
    expect(list.backups.length).toBeLessThanOrEqual(12);
    expect((await swarmgate(ns, ["rollback", "--to", list.origin, "--state-dir", sd])).code).toBe(0);
    expect(await ours(ns)).not.toMatch(/swarmgate|SWARMGATE/);
  });
}, 60_000);

test("19: the lock: never empty, never held by two; an empty or dead owner's lock is taken over", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sg-lock-"));
  const log = join(dir, "log");
  const worker = `import { appendFileSync } from "node:fs"; const { acquireLock } = await import(${JSON.stringify(join(ROOT, "dist/system/lock.js"))});
    for (let i = 0; i < 5; i++) { const release = await acquireLock(${JSON.stringify(join(dir, "lock"))}, 60000);
      appendFileSync(${JSON.stringify(log)}, "in\\n"); await new Promise((r) => setTimeout(r, 5)); appendFileSync(${JSON.stringify(log)}, "out\\n"); release(); }`;
  writeFileSync(join(dir, "lock"), ""); // an empty lock left by an older version: stale
  await Promise.all(Array.from({ length: 6 }, () => run(process.execPath, ["--input-type=module", "-e", worker])));
  const lines = readFileSync(log, "utf8").trim().split("\n");
  expect(lines).toHaveLength(60);
  lines.forEach((l, i) => expect(l).toBe(i % 2 === 0 ? "in" : "out"));
  expect(readdirSync(dir).sort()).toEqual(["log"]);
});

test("20, 27: a failing nft, a directory as a backup, and an unreadable state are clear errors, never traces", async () => {
  await withNetns(1, async (ns) => {
    const sd = stateDir();
    expect((await swarmgate(ns, ["apply", STANDALONE, "--state-dir", sd])).code).toBe(0);
    const tools = faultyTools(["nft"]);
    tools.arm();
    for (const args of [["apply", GATEWAY], ["status"], ["apply", GATEWAY, "--json"]]) {
      const r = await swarmgate(ns, [...args, "--state-dir", sd], { PATH: tools.path });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stdout + r.stderr).toMatch(/TOOL_FAILED/);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    tools.disarm();
    mkdirSync(join(sd, "backups", "2026-01-01T00-00-00-000Z-nft-dir0.json"));
    const rb = await swarmgate(ns, ["rollback", "--to", "2026-01-01T00-00-00-000Z-nft-dir0", "--state-dir", sd]);
    expect(rb.code).toBe(2);
    expect(rb.stderr).toContain("error[STATE_CORRUPT]");
    const traversal = await swarmgate(ns, ["rollback", "--to", "../../etc/passwd", "--state-dir", sd]);
    expect(traversal.stderr).toContain("error[NO_BACKUP]");
    const nobody = { via: { command: "setpriv", args: ["--reuid=65534", "--regid=65534", "--clear-groups"] } };
    const list = await run("setpriv", [...nobody.via.args, process.execPath, MAIN, "rollback", "--list", "--state-dir", sd]);
    expect(list.code).toBe(2);
    expect(list.stderr).toContain("error[STATE_UNREADABLE]");
    const st = await run("setpriv", [...nobody.via.args, process.execPath, MAIN, "status", "--state-dir", sd]);
    expect(st.stderr).toContain("reads the firewall and needs root");
  });
});

test("27: stop names legacy iptables rules it falls back to, and ends a pending confirmation", async () => {
  await withNetns(1, async (ns) => {
    const sd = stateDir();
    await ns.execChecked("iptables-legacy-restore", [], { input: "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n" });
    const a = background(ns, ["apply", STANDALONE, "--confirm", "3", "--state-dir", sd]);
    await a.said("within 3 s");
    const stop = await swarmgate(ns, ["stop", "--state-dir", sd]);
    expect(stop.code).toBe(0);
    expect(stop.stdout + stop.stderr).toMatch(/default-drop policy still filter/);
    expect(stop.stdout + stop.stderr).not.toMatch(/WARNING/);
    const r = await a.done;
    expect(r.code).toBe(3);
    expect(r.stdout).toContain("swarmgate stop");
    await sleep(3500);
    expect(await ours(ns)).not.toMatch(/swarmgate|SWARMGATE/); // nothing came back at the deadline
    await ns.execChecked("iptables-legacy", ["-P", "FORWARD", "ACCEPT"]);
  });
}, 30_000);
