// `ports: auto` and `swarmgate follow` against the kernel: a host namespace
// with the policy applied and a peer beside it. When the client's port moves,
// follow must open the new port and close the old one without reloading
// anything else: the connection already open on the old port keeps working,
// the other rules keep their handles (nft) and counters (iptables), and a
// firewall or policy changed by someone else is refused, untouched.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterEach, describe, expect, test } from "vitest";
import { withNetns, type Netns } from "../src/system/netns.js";
import { ROOT, swarmgate } from "./helpers/cli-in-netns.js";

const PROBE = join(ROOT, "test", "helpers", "tcp-probe.mjs");
const children: ChildProcess[] = [];
afterEach(() => { for (const c of children.splice(0)) c.kill("SIGKILL"); });

const POLICY = `version: 1
host:
  interface: eth0
  addresses: [192.0.2.51/24, "2001:db8::51/64"]
clients:
  - {name: qb, ports: auto}
  - {name: fixed, ports: 6000}
outbound:
  peers: true
  dns: [192.0.2.1]
admin:
  - {name: ssh, port: 22, from: [192.0.2.7]}
`;

/** A root with one user's qBittorrent config, as `--clients-root` reads it. */
function clientsRoot(): { root: string; setPort: (text: string) => void } {
  const root = mkdtempSync(join(tmpdir(), "sg-follow-root-"));
  mkdirSync(join(root, "etc"));
  writeFileSync(join(root, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n");
  const dir = join(root, "home", "alice", ".config", "qBittorrent");
  mkdirSync(dir, { recursive: true });
  return { root, setPort: (text) => writeFileSync(join(dir, "qBittorrent.conf"), `[LegalNotice]\nAccepted=true\n\n[BitTorrent]\n${text}\n`) };
}

async function link(host: Netns, peer: Netns): Promise<void> {
  await host.execChecked("ip", ["link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", peer.name]);
  for (const [ns, v4, v6] of [[host, "192.0.2.51/24", "2001:db8::51/64"], [peer, "192.0.2.7/24", "2001:db8::7/64"]] as const) {
    await ns.execChecked("ip", ["addr", "add", v4, "dev", "eth0"]);
    await ns.execChecked("ip", ["-6", "addr", "add", v6, "dev", "eth0", "nodad"]);
    await ns.execChecked("ip", ["link", "set", "eth0", "up"]);
  }
}

function probe(ns: Netns, args: string[]): ChildProcess {
  const child = spawn("ip", ["netns", "exec", ns.name, process.execPath, PROBE, ...args], { stdio: ["pipe", "pipe", "inherit"] });
  children.push(child);
  return child;
}

const firstLine = (child: ChildProcess, pattern: RegExp): Promise<string> => new Promise((resolve, reject) => {
  const lines = createInterface({ input: child.stdout! });
  const timer = setTimeout(() => reject(new Error(`no line matching ${pattern}`)), 5000);
  lines.on("line", (l) => { if (pattern.test(l)) { clearTimeout(timer); lines.close(); resolve(l); } });
});

const connects = async (peer: Netns, addr: string, port: number): Promise<boolean> =>
  (await peer.exec(process.execPath, [PROBE, "try", addr, String(port), "1500"])).code === 0;

/** What must not change when only a port moves: nft's rule handles, iptables' counters of the other rules. */
async function untouched(ns: Netns, backend: "nft" | "iptables"): Promise<string> {
  if (backend === "nft") {
    const listing = (await ns.execChecked("nft", ["-a", "list", "table", "inet", "swarmgate"])).stdout;
    return listing.split("\n").filter((l) => /# handle/.test(l) && !/elements|client_0_ports/.test(l)).map((l) => l.replace(/counter packets \d+ bytes \d+ /, "")).join("\n");
  }
  const save = (await ns.execChecked("iptables-save", ["-c"])).stdout;
  return save.split("\n").filter((l) => l.includes("SWARMGATE") && !l.includes("client_0_ports")).join("\n");
}

describe.each(["nft", "iptables"] as const)("follow with %s", (backend) => {
  test("a moved port is opened and the old one closed in place; the open connection, the other rules and their counters stay", async () => {
    await withNetns(2, async (host, peer) => {
      await link(host, peer);
      const { root, setPort } = clientsRoot();
      const sd = mkdtempSync(join(tmpdir(), "sg-state-"));
      const policy = join(root, "policy.yaml");
      writeFileSync(policy, POLICY);
      setPort("Session\\Port=40001");
      const common = ["--clients-root", root, "--state-dir", sd];
      const applied = await swarmgate(host, ["apply", policy, "-b", backend, ...common]);
      expect(applied.code, applied.stderr).toBe(0);
      const check = await swarmgate(host, ["check", policy, "--clients-root", root]);
      expect(check.stdout).toContain("clients[0].ports  qb: 40001, from qBittorrent");

      const server = probe(host, ["serve", "40001", "40002"]);
      await firstLine(server, /ready/);
      expect(await connects(peer, "192.0.2.51", 40001)).toBe(true);
      expect(await connects(peer, "192.0.2.51", 40002)).toBe(false);
      const held = probe(peer, ["hold", "192.0.2.51", "40001"]);
      await firstLine(held, /^open$/);
      held.stdin!.write("before\n");
      await firstLine(held, /^echo before$/);
      const stable = await untouched(host, backend);

      setPort("Session\\Port=40002");
      const moved = await swarmgate(host, ["follow", policy, "--once", ...common]);
      expect(moved.code, moved.stdout + moved.stderr).toBe(0);
      expect(moved.stdout).toMatch(/clients\[0\] qb: 40002 .*moved to them in \d+ ms/);

      expect(await connects(peer, "192.0.2.51", 40002)).toBe(true);
      expect(await connects(peer, "2001:db8::51", 40002)).toBe(true);
      expect(await connects(peer, "192.0.2.51", 40001)).toBe(false);
      held.stdin!.write("after\n");
      expect(await firstLine(held, /^echo after$/)).toBe("echo after");
      if (backend === "nft") {
        expect(await untouched(host, backend)).toBe(stable);
      } else {
        // The other rules were not replaced: their counters went on counting from where they were.
        const counts = (t: string) => [...t.matchAll(/^\[(\d+):\d+\] (.*)$/gm)].map((m) => ({ n: Number(m[1]), rule: m[2]! }));
        const now = counts(await untouched(host, backend));
        const then = counts(stable);
        expect(now.map((r) => r.rule)).toEqual(then.map((r) => r.rule));
        now.forEach((r, i) => expect(r.n).toBeGreaterThanOrEqual(then[i]!.n));
        expect(now.find((r) => /ESTABLISHED/.test(r.rule))!.n).toBeGreaterThan(0);
      }
      const again = await swarmgate(host, ["follow", policy, "--once", "--json", ...common]);
      expect(JSON.parse(again.stdout.trim().split("\n").at(-1)!)).toMatchObject({ ok: true, outcome: "same", ports: { "clients[0]": "40002" } });
      const status = await swarmgate(host, ["status", policy, "--json", ...common]);
      expect(JSON.parse(status.stdout).drift.inSync).toBe(true);
    });
  });

  test("a config that no longer reads, a policy edited beyond its ports, or a table changed by hand: follow refuses and changes nothing", async () => {
    await withNetns(1, async (host) => {
      const { root, setPort } = clientsRoot();
      const sd = mkdtempSync(join(tmpdir(), "sg-state-"));
      const policy = join(root, "policy.yaml");
      writeFileSync(policy, POLICY);
      setPort("Session\\Port=40001");
      const common = ["--clients-root", root, "--state-dir", sd];
      expect((await swarmgate(host, ["apply", policy, "-b", backend, ...common])).code).toBe(0);
      const kernel = async () => (backend === "nft" ? (await host.execChecked("nft", ["list", "table", "inet", "swarmgate"])).stdout : (await host.execChecked("iptables-save", [])).stdout.replace(/^#.*$/gm, ""));
      const before = await kernel();

      // A random port and nothing listening: no port can be told.
      setPort("Session\\Port=0");
      const unreadable = await swarmgate(host, ["follow", policy, "--once", ...common]);
      expect(unreadable.code).toBe(2);
      expect(unreadable.stdout).toMatch(/keeps the ports in force: .*random port/);
      expect(await kernel()).toBe(before);

      setPort("Session\\Port=40005");
      writeFileSync(policy, `${POLICY}  - {name: web, port: 8080, from: [192.0.2.7]}\n`);
      const edited = await swarmgate(host, ["follow", policy, "--once", ...common]);
      expect(edited.code).toBe(2);
      expect(edited.stdout).toMatch(/edited since it was applied.*swarmgate apply/);
      expect(await kernel()).toBe(before);

      writeFileSync(policy, POLICY);
      const hand = backend === "nft" ? ["nft", ["add", "rule", "inet", "swarmgate", "input", "tcp", "dport", "9999", "accept"]] as const
        : ["iptables", ["-I", "SWARMGATE-INPUT", "1", "-p", "tcp", "--dport", "9999", "-j", "RETURN"]] as const;
      await host.execChecked(hand[0], [...hand[1]]);
      const changed = await kernel();
      const refused = await swarmgate(host, ["follow", policy, "--once", ...common]);
      expect(refused.code).toBe(2);
      expect(refused.stdout).toMatch(/not as swarmgate left them/);
      expect(await kernel()).toBe(changed);
      expect(readFileSync(join(sd, "applied.json"), "utf8")).toContain(policy);
    });
  });
});

test("install --follow --portmap writes follow and portmap units beside the firewall's, all verified by systemd-analyze; uninstall removes them", async () => {
  const { run } = await import("../src/system/run.js");
  const { MAIN } = await import("./helpers/cli-in-netns.js");
  const { existsSync } = await import("node:fs");
  const rootDir = mkdtempSync(join(tmpdir(), "sg-root-"));
  const r = await run(process.execPath, [MAIN, "install", "examples/standalone.yaml", "--root", rootDir, "--follow", "--portmap"]);
  expect(r.code, r.stderr).toBe(0);
  const units = ["swarmgate.service", "swarmgate-follow.service", "swarmgate-portmap.service"].map((u) => join(rootDir, "etc/systemd/system", u));
  expect(readFileSync(units[2]!, "utf8")).toMatch(/ExecStart=\S+node\S* \S+main\.js portmap \/etc\/swarmgate\/policy\.yaml --state-dir/);
  expect(readFileSync(units[1]!, "utf8")).toMatch(/Requires=swarmgate\.service[\s\S]*ExecStart=\S+node\S* \S+main\.js follow \/etc\/swarmgate\/policy\.yaml --state-dir/);
  const verify = await run("systemd-analyze", ["verify", ...units]);
  expect(verify.code, verify.stderr).toBe(0);
  expect((await run(process.execPath, [MAIN, "uninstall", "--root", rootDir])).code).toBe(0);
  for (const u of units) expect(existsSync(u)).toBe(false);
});
