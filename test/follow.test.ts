// `ports: auto` and `swarmgate follow` against the kernel: a host namespace
// with the policy applied and a peer beside it. When the client's port moves,
// follow must open the new port and close the old one without reloading
// anything else: the connection already open on the old port keeps working,
// the other rules keep their handles (nft) and counters (iptables), and a
// firewall or policy changed by someone else is refused, untouched.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
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

/** The qBittorrent config below a clients root, a state directory and the policy, applied with the client on `port`. */
async function applied(host: Netns, backend: "nft" | "iptables", port: number) {
  const { root, setPort } = clientsRoot();
  const sd = mkdtempSync(join(tmpdir(), "sg-state-"));
  const policy = join(root, "policy.yaml");
  writeFileSync(policy, POLICY);
  setPort(`Session\\Port=${port}`);
  const common = ["--clients-root", root, "--state-dir", sd];
  const r = await swarmgate(host, ["apply", policy, "-b", backend, ...common]);
  expect(r.code, r.stderr).toBe(0);
  return { root, setPort, sd, policy, common };
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
      const { root, setPort, policy, common } = await applied(host, backend, 40001);
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
      const { setPort, sd, policy, common } = await applied(host, backend, 40001);
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
      expect(refused.stdout).toMatch(/not as swarmgate left (it|them)/);
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

/** The followed client's ports in the kernel, and everything else of swarmgate's with those ports and the counters left out. */
async function followedAndRest(ns: Netns, backend: "nft" | "iptables"): Promise<{ ports: string; rest: string }> {
  if (backend === "nft") {
    const listing = (await ns.execChecked("nft", ["list", "table", "inet", "swarmgate"])).stdout;
    const ports = /set client_0_ports \{[^}]*?elements = \{([^}]*)\}/.exec(listing)?.[1]?.trim() ?? "";
    return { ports, rest: listing.replace(/(set client_0_ports \{[^}]*?)elements = \{[^}]*\}/, "$1").replace(/counter packets \d+ bytes \d+/g, "counter") };
  }
  const saves = [(await ns.execChecked("iptables-save", [])).stdout, (await ns.execChecked("ip6tables-save", [])).stdout].join("\n");
  const lines = saves.split("\n").filter((l) => l.includes("SWARMGATE"));
  const ports = [...new Set(lines.filter((l) => l.includes("client_0_ports")).map((l) => /--dports? (\S+)/.exec(l)?.[1]))].join(",");
  return { ports, rest: lines.map((l) => (l.includes("client_0_ports") ? l.replace(/--dports? \S+/, "--dport *") : l)).join("\n") };
}

describe.each(["nft", "iptables"] as const)("follow with %s under faults", (backend) => {
  test("each tool call of a follow step fails in turn: afterwards, and after the next command, the kernel holds the old or the new port and nothing else changed, as follow said", async () => {
    const { callCounts, faultEnv, removeFakeTools, FAULT_TOOLS } = await import("./helpers/faults-tools.js");
    try {
      await withNetns(1, async (host) => {
        await host.execChecked("ip", ["link", "add", "eth0", "type", "veth", "peer", "name", "eth1"]);
        let port = 40001;
        const { setPort, sd, policy, common } = await applied(host, backend, port);
        const baseline = (await followedAndRest(host, backend)).rest;

        // One clean step, counted: which calls a step makes.
        const countDir = mkdtempSync(join(tmpdir(), "sg-follow-count-"));
        setPort(`Session\\Port=${++port}`);
        expect((await swarmgate(host, ["follow", policy, "--once", ...common], faultEnv(countDir))).code).toBe(0);
        const counts = callCounts(countDir);
        const faults = FAULT_TOOLS.flatMap((tool) => Array.from({ length: counts[tool] }, (_, i) => ({ tool, n: i + 1 })));
        expect(faults.length).toBeGreaterThan(1);

        for (const fault of faults) {
          const from = port;
          const to = ++port;
          setPort(`Session\\Port=${to}`);
          const trialDir = mkdtempSync(join(tmpdir(), "sg-follow-fault-"));
          const r = await swarmgate(host, ["follow", policy, "--once", "--json", ...common], faultEnv(trialDir, fault));
          const what = `${fault.tool} call ${fault.n} failing, ${from} → ${to}: exit ${r.code}\n${r.stdout}${r.stderr}`;
          const said = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
          expect(r.stderr, what).not.toMatch(/at .*\.js:\d+/); // no stack trace
          const right = (k: { ports: string; rest: string }) => {
            expect(k.rest, what).toBe(baseline);
            expect([String(from), String(to)], what).toContain(k.ports);
          };
          right(await followedAndRest(host, backend));
          const status = await swarmgate(host, ["status", policy, "--json", ...common]);
          const after = await followedAndRest(host, backend);
          right(after);
          expect(existsSync(join(sd, "journal.json")), what).toBe(false);
          expect([0, 1], what + status.stdout + status.stderr).toContain(status.code); // it read the kernel (1: the port now differs from the config)
          // What follow said is what the kernel shows once the journal is settled.
          expect(after.ports, what).toBe(said.ok ? String(to) : String(from));
          if (!said.ok) port = from; // the client's config moves on from the port in force
        }
      });
    } finally {
      removeFakeTools();
    }
  });
});

test("nft: a port move is guarded by the old elements and checked after — a client set changed by hand (an element gone, or one added) is refused and left as the hand left it", async () => {
  await withNetns(1, async (host) => {
    await host.execChecked("ip", ["link", "add", "eth0", "type", "veth", "peer", "name", "eth1"]);
    const { setPort, sd, policy, common } = await applied(host, "nft", 40001);
    const set = ["inet", "swarmgate", "client_0_ports"];
    const listing = async () => (await host.execChecked("nft", ["list", "table", "inet", "swarmgate"])).stdout;

    // The old element gone: the guarded delete fails, nothing changes, the careful path says why.
    await host.execChecked("nft", ["delete", "element", ...set, "{ 40001 }"]);
    await host.execChecked("nft", ["add", "element", ...set, "{ 40009 }"]);
    const gone = await listing();
    setPort("Session\\Port=40002");
    const r1 = await swarmgate(host, ["follow", policy, "--once", ...common]);
    expect(r1.code, r1.stdout).toBe(2);
    expect(r1.stdout).toMatch(/not as swarmgate left (it|them)/);
    expect(await listing()).toBe(gone);

    // Put back as swarmgate left it, then an element added by hand: the move goes through its guard, the
    // read-back shows the extra element, and the move is undone the guarded way (the hand's element stays).
    await host.execChecked("nft", ["delete", "element", ...set, "{ 40009 }"]);
    await host.execChecked("nft", ["add", "element", ...set, "{ 40001 }"]);
    setPort("Session\\Port=40001");
    expect((await swarmgate(host, ["follow", policy, "--once", ...common])).code).toBe(0);
    await host.execChecked("nft", ["add", "element", ...set, "{ 40050 }"]);
    const added = await listing();
    setPort("Session\\Port=40003");
    const r2 = await swarmgate(host, ["follow", policy, "--once", ...common]);
    expect(r2.code, r2.stdout).toBe(2);
    expect(r2.stdout).toMatch(/not as swarmgate left it .*the port move was undone, and that change kept/);
    expect(await listing()).toBe(added);
    expect(existsSync(join(sd, "journal.json"))).toBe(false);
  });
});
