// `swarmgate rehearse` as a user runs it, and what it must never do: leave
// namespaces behind, or change this machine's own network or firewall.
import { spawn } from "node:child_process";
import { expect, test } from "vitest";
import { run } from "../src/system/run.js";
import { cli, MAIN, ROOT } from "./helpers/cli.js";


async function hostState(): Promise<string> {
  const parts = await Promise.all([
    run("nft", ["list", "ruleset"]),
    run("iptables-save", []),
    run("ip6tables-save", []),
    run("ip", ["-o", "link"]),
    run("ip", ["-o", "addr"]),
  ]);
  return parts.map((p) => p.stdout.split("\n").filter((l) => !l.startsWith("#")).join("\n")).join("\n---\n");
}

const namespaces = async () => (await run("ip", ["netns", "list"])).stdout;

/** The command as a child process, with its pid: its namespaces are named sg-<pid>-<n> (other test files make their own meanwhile). */
function cliWithPid(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; pid: number }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], { cwd: ROOT });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => { stdout += d; });
    child.stderr.on("data", (d) => { stderr += d; });
    child.on("close", (code) => resolve({ code, stdout, stderr, pid: child.pid! }));
  });
}

test("with no policy anywhere, rehearses the bundled example and prints the table; the host is untouched", async () => {
  const before = await hostState();
  const r = await cliWithPid(["rehearse"]);
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/examples\/standalone\.yaml: \d+ flows rehearsed with nft in [\d.]+ s — every flow behaves as the policy says/);
  expect(r.stdout).toMatch(/#\s+flow\s+expected\s+observed/);
  expect(r.stdout).toMatch(/peer → client qbittorrent, TCP 6881 \(IPv6\)\s+open\s+open\s+ok/);
  expect(r.stderr).toContain("rehearse: trying");
  expect(await hostState()).toBe(before);
  expect(await namespaces()).not.toMatch(new RegExp(`^sg-${r.pid}-`, "m"));
});

test("--json, and exit status 1 is reserved for flows that misbehave", async () => {
  const r = await cli(["rehearse", "examples/gateway.yaml", "--backend", "iptables", "--json"]);
  expect(r.code).toBe(0);
  const out = JSON.parse(r.stdout);
  expect(out).toMatchObject({ ok: true, backend: "iptables" });
  expect(out.flows).toContainEqual(expect.objectContaining({ what: "peer → WAN TCP 6900 (forward to 192.168.1.4)", expect: "open", observed: "open", answeredBy: "lan2", ok: true }));
});

test("stale namespaces of a crashed run are removed, others are not", async () => {
  await run("ip", ["netns", "add", "sg-4194300-0"]); // above pid_max's default: no such process
  await run("ip", ["netns", "add", "not-swarmgate"]);
  try {
    const r = await cli(["rehearse", "test/scenarios/outbound-any.yaml"]);
    expect(r.code).toBe(0);
    const list = await namespaces();
    expect(list).not.toContain("sg-4194300-0");
    expect(list).toContain("not-swarmgate");
  } finally {
    await run("ip", ["netns", "del", "sg-4194300-0"]);
    await run("ip", ["netns", "del", "not-swarmgate"]);
  }
});

test("Ctrl-C tears the sandbox down", async () => {
  const child = spawn(process.execPath, [MAIN, "rehearse"], { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] });
  await new Promise<void>((resolvePromise) => {
    child.stderr.on("data", (d: Buffer) => { if (d.toString().includes("listening on")) resolvePromise(); });
  });
  child.kill("SIGINT");
  const code = await new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
  expect(code).toBe(130);
  expect(await namespaces()).not.toContain(`sg-${child.pid}-`);
});

test("without root: one line and exit status 2", async () => {
  const r = await cli(["rehearse"], { via: { command: "setpriv", args: ["--reuid=65534", "--regid=65534", "--clear-groups"] } });
  expect(r.code).toBe(2);
  expect(r.stderr.trim().split("\n")).toHaveLength(1);
  expect(r.stderr).toContain("error[LAB_NEEDS_ROOT]");
});

test("without the tools: one line and exit status 2", async () => {
  const r = await cli(["rehearse"], { env: { PATH: "/nonexistent" } });
  expect(r.code).toBe(2);
  expect(r.stderr.trim().split("\n")).toHaveLength(1);
  expect(r.stderr).toMatch(/error\[TOOL_MISSING\]: rehearse needs ip, ping, nft, not installed here \(on Debian: apt-get install iproute2 iputils-ping nftables\)/);
});
