// swarmgate doctor on rulesets other tools wrote (test/fixtures/foreign): each
// fixture's doctor report names the defects it was built to have (its
// expect.json), and none it was built not to have; --live reads the same from
// the kernel; exit statuses 0, 1 and 2.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, test } from "vitest";
import { withNetns } from "../src/system/netns.js";
import { cli, ROOT } from "./helpers/cli.js";
import { swarmgate } from "./helpers/cli-in-netns.js";

const FIXTURES = join(ROOT, "test/fixtures/foreign");
const from = (name: string) => ["ipset.txt", "nft.json", "iptables-save.txt", "ip6tables-save.txt"].map((f) => join(FIXTURES, name, f)).filter(existsSync).flatMap((f) => ["--from", f]);

interface Report { ok: boolean; checks: { id: string; status: string; decidedBy?: { place?: string; policy?: string } }[]; findings: { code: string; rules: { place: string }[] }[] }

async function doctor(name: string, args: string[]): Promise<{ code: number; report: Report }> {
  const r = await cli(["doctor", ...from(name), "--json", ...args]);
  return { code: r.code, report: JSON.parse(r.stdout) as Report };
}
const status = (r: Report, id: string) => r.checks.find((c) => c.id === id)?.status;
const codes = (r: Report) => r.findings.map((f) => f.code).sort();

test("the classic script: stateless accepts, HTTPS trackers and DNS over TCP blocked, IPv6 wide open", async () => {
  const { code, report } = await doctor("classic-qbittorrent", ["--port", "6881", "--local", "eth0=192.168.0.50"]);
  expect(code).toBe(1);
  expect(codes(report)).toEqual(["IPV6_WIDE_OPEN", "STATELESS_ACCEPT", "STATELESS_ACCEPT", "STATELESS_ACCEPT"]);
  expect(report.findings.filter((f) => f.code === "STATELESS_ACCEPT").map((f) => f.rules[0]!.place.replace(/^.*foreign\/[^/]+\//, ""))).toEqual(["iptables-save.txt:14 filter/INPUT rule 8", "iptables-save.txt:15 filter/INPUT rule 9", "iptables-save.txt:16 filter/INPUT rule 10"]);
  expect(status(report, "tracker-https-v4")).toBe("fail");
  expect(status(report, "dns-tcp")).toBe("fail");
  expect(report.checks.find((c) => c.id === "dns-tcp")!.decidedBy).toEqual({ policy: "policy drop of ip filter/OUTPUT" });
  for (const id of ["peer-in-tcp-v4", "peer-in-udp-v4", "peer-out-udp-v4", "tracker-http-v4", "tracker-udp-v4", "dns-udp"]) expect([id, status(report, id)]).toEqual([id, "pass"]);
});

test("the router script: the forward matches the wrong direction, so the DNAT is not forwarded; the right one passes", async () => {
  const { report } = await doctor("gateway-wrong-direction", ["--interface", "eth1", "--local", "eth1=198.51.100.2", "--route", "192.168.1.0/24=br-lan"]);
  expect(codes(report)).toEqual(expect.arrayContaining(["DNAT_NOT_FORWARDED", "FORWARD_WRONG_DIRECTION", "IPV6_WIDE_OPEN"]));
  expect(status(report, "forward-192.168.1.10-tcp")).toBe("fail");
  expect(status(report, "forward-192.168.1.10-udp")).toBe("fail");
  expect(status(report, "forward-192.168.1.20-tcp")).toBe("pass");
  expect(status(report, "forward-192.168.1.20-udp")).toBe("pass");
  const wrong = report.findings.filter((f) => f.code === "FORWARD_WRONG_DIRECTION");
  expect(wrong.map((f) => f.rules.map((r) => r.place.replace(/^.*foreign\/[^/]+\//, "")))).toEqual([
    ["iptables-save.txt:13 filter/FORWARD rule 3", "iptables-save.txt:25 nat/PREROUTING rule 1"],
    ["iptables-save.txt:14 filter/FORWARD rule 4", "iptables-save.txt:26 nat/PREROUTING rule 2"],
  ]);
});

test("Docker's chains: the input policy accepts everything; published ports are forwarded to their containers", async () => {
  const { report } = await doctor("docker-like", ["--interface", "eth0", "--local", "eth0=192.168.0.60", "--route", "172.17.0.0/16=docker0"]);
  expect(codes(report)).toContain("POLICY_ACCEPT_NO_RULES");
  expect(codes(report)).not.toContain("FORWARD_WRONG_DIRECTION");
  for (const id of ["forward-172.17.0.2-tcp", "forward-172.17.0.3-tcp", "forward-172.17.0.3-udp"]) expect([id, status(report, id)]).toEqual([id, "pass"]);
});

test("ufw as Debian ships it: every check passes, nothing is wrong, exit 0", async () => {
  const { code, report } = await doctor("ufw", ["--port", "6881", "--local", "eth0=192.168.1.80"]);
  expect(report.checks.filter((c) => c.status !== "pass")).toEqual([]);
  expect(report.findings).toEqual([]);
  expect(code).toBe(0);
});

test("a hand-written nftables ruleset: the IPv6 table drops what the inet table accepts; the Web UI is open to all over IPv4", async () => {
  const { report } = await doctor("nft-handwritten", ["--local", "eth0=198.51.100.3", "--route", "192.168.1.0/24=br-lan"]);
  expect(status(report, "peer-in-tcp-v6")).toBe("fail");
  expect(report.checks.find((c) => c.id === "peer-in-udp-v6")!.decidedBy).toEqual({ policy: "policy drop of ip6 filter/input" });
  expect(status(report, "peer-in-udp-v4")).toBe("pass");
  const admin = report.findings.filter((f) => f.code === "ADMIN_OPEN_TO_ALL");
  expect(admin).toHaveLength(1);
  expect(admin[0]!.rules[0]!.place).toMatch(/nft\.json: table inet filter chain input rule 6/);
});

test("firewalld as Debian ships it: UDP 6881 is rejected (the port was opened for TCP only), SSH is open to anyone", async () => {
  const { report } = await doctor("firewalld", ["--interface", "eth0", "--local", "eth0=192.168.1.90", "--local", "eth0=2001:db8::90"]);
  expect(status(report, "peer-in-tcp-v4")).toBe("pass");
  expect(status(report, "peer-in-udp-v4")).toBe("fail");
  expect(report.checks.find((c) => c.id === "peer-in-udp-v4")!.decidedBy).toMatchObject({ place: expect.stringMatching(/nft\.json: table inet firewalld chain filter_IN_public rule \d+ \(handle \d+\)$/) });
  // The IPv6 reverse-path filter is a condition swarmgate does not decide: said, not guessed.
  expect(status(report, "peer-in-tcp-v6")).toBe("depends");
  expect(report.findings.map((f) => [f.code, f.rules[0]?.place.replace(/^.*nft\.json: /, "")])).toEqual([["ADMIN_OPEN_TO_ALL", expect.stringMatching(/^table inet firewalld chain filter_IN_public_allow rule 1/)]]);
});

test("swarmgate's own ruleset with its policy: every check passes and nothing is wrong", async () => {
  const r = await cli(["doctor", "examples/standalone.yaml", ...from("swarmgate-standalone-nft"), "--json"]);
  const report = JSON.parse(r.stdout) as Report;
  expect(report.checks.filter((c) => c.status !== "pass")).toEqual([]);
  expect(report.findings).toEqual([]);
  expect(r.code).toBe(0);
});

test("text: what is wrong, which rule, what to do", async () => {
  const r = await cli(["doctor", ...from("classic-qbittorrent"), "--local", "eth0=192.168.0.50"]);
  expect(r.stdout).toContain("FAIL    tracker-https-v4: HTTPS trackers (TCP 443) over IPv4 — dropped by the policy drop of ip filter/OUTPUT");
  expect(r.stdout).toMatch(/ERROR STATELESS_ACCEPT: UDP from source port 53 is accepted to every port of this machine[^\n]*\n\s+\S*iptables-save\.txt:15 filter\/INPUT rule 9: -A INPUT -i eth0 -p udp -m udp --sport 53 -j ACCEPT\n\s+what to do: /);
  expect(r.stdout).toContain("no --port, no policy and no client found listening: checking 6881");
});

test("--live: the same diagnosis from the kernel, in a namespace", async () => {
  const dir = join(FIXTURES, "classic-qbittorrent");
  const fromFiles = (await doctor("classic-qbittorrent", ["--port", "6881", "--local", "eth0=192.168.0.50", "--interface", "eth0"])).report;
  await withNetns(1, async (ns) => {
    await ns.execChecked("ip", ["link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"]);
    await ns.execChecked("ip", ["addr", "add", "192.168.0.50/24", "dev", "eth0"]);
    await ns.execChecked("iptables-restore", [], { input: readFileSync(join(dir, "iptables-save.txt"), "utf8") });
    const r = await swarmgate(ns, ["doctor", "--live", "--port", "6881", "--interface", "eth0", "--json"]);
    const live = JSON.parse(r.stdout) as Report;
    expect(r.code).toBe(1);
    expect(live.checks.map((c) => [c.id, c.status])).toEqual(fromFiles.checks.map((c) => [c.id, c.status]));
    expect(codes(live)).toEqual(codes(fromFiles));
  });
});

test("bad input: exit 2 with a clear error", async () => {
  expect((await cli(["doctor", "--from", "/nonexistent", "--json"])).code).toBe(2);
  expect((await cli(["doctor", "--live", ...from("ufw")])).stderr).toContain("error[CLI_USAGE]");
  expect((await cli(["doctor", ...from("ufw"), "--port", "70000"])).stderr).toContain("error[CLI_USAGE]");
});

test("--exposure: what is open to whom over every table, conditions included", async () => {
  const { report } = await doctor("classic-qbittorrent", ["--local", "eth0=192.168.0.50", "--exposure"]) as unknown as { report: Report & { exposure: { direction: string; protocol: string; ports: string; peers: string[]; sourcePorts?: string; families: string; interface: string; paths: string[]; depends?: string[] }[] } };
  expect(report.exposure).toContainEqual(expect.objectContaining({ direction: "inbound", protocol: "udp", ports: "1-1023", peers: ["anywhere"], sourcePorts: "53", interface: "eth0", families: "IPv4" }));
  expect(report.exposure).toContainEqual(expect.objectContaining({ direction: "inbound", protocol: "tcp", ports: "1-65535", peers: ["anywhere"], families: "IPv6", paths: [] }));
  const f2b = (await doctor("fail2ban-like", ["--local", "eth0=192.168.0.70", "--exposure"])).report as unknown as { exposure: { ports: string; protocol: string; direction: string; depends?: string[] }[] };
  expect(f2b.exposure.find((e) => e.direction === "inbound" && e.protocol === "tcp" && e.ports === "6881")!.depends![0]).toMatch(/^-m hashlimit --hashlimit-above 20\/sec .* \[.*iptables-save\.txt:35\]$/);
});

test("--exposure on firewalld: a verdict that depends only between drop and reject is no opening (it crashed)", async () => {
  const { code, report } = await doctor("firewalld", ["--local", "eth0=192.168.0.80", "--exposure"]);
  expect([0, 1]).toContain(code);
  const exposure = (report as unknown as { exposure: { direction: string; interface: string }[] }).exposure;
  expect(exposure.length).toBeGreaterThan(0);
});

test("a DNAT to another port that the forward hook drops for peers: the finding names the port after the DNAT", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sg-doctor-"));
  try {
    const file = join(dir, "iptables-save.txt");
    writeFileSync(file, ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]",
      "-A PREROUTING -i eth0 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.5:8080", "COMMIT",
      "*filter", ":INPUT DROP [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]",
      "-A FORWARD -s 1.2.3.0/24 -d 10.0.0.5/32 -i eth0 -o eth1 -p tcp -m tcp --dport 8080 -j ACCEPT", "COMMIT", ""].join("\n"));
    const r = await cli(["doctor", "--from", file, "--json", "--interface", "eth0", "--local", "eth0=192.0.2.1", "--route", "10.0.0.0/24=eth1"]);
    const report = JSON.parse(r.stdout) as Report;
    expect(status(report, "forward-10.0.0.5-tcp")).toBe("fail");
    const f = report.findings.find((x) => x.code === "DNAT_NOT_FORWARDED") as unknown as { message: string; fix: string };
    expect(f.message).toContain("rewritten to 10.0.0.5 port 8080");
    expect(f.fix).toContain("to 10.0.0.5 port 8080");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
