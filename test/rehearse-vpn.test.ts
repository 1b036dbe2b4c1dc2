// Rehearsals of vpn policies with the real kernel: the sandbox has the tunnel
// (a veth named after vpn.interface), flows run as the confined user, and the
// leak flows — the confined user's traffic out of the physical interface, and
// confined IPv6 — must be closed while the tunnel, the LAN, the endpoint and
// the unconfined users keep working. A ruleset without the kill switch's jumps
// must be caught by exactly those leak flows. The policies live here rather
// than in test/scenarios: every scenario also goes through the simulator-vs-
// kernel differential, whose topology has one interface on the host.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { compile } from "../src/compile/index.js";
import type { Ruleset } from "../src/ir/ruleset.js";
import { rehearse, type Rehearsal } from "../src/lab/rehearse.js";
import { parsePolicy } from "../src/policy/load.js";
import { cli } from "./helpers/cli.js";

const HOST = `version: 1
host:
  interface: eth0
  addresses: [192.168.50.2/24, "2001:db8:50::2/64"]
clients:
  - {name: qbittorrent, ports: 6881}
outbound:
  peers: true
  trackers: [80, 443]
  dns: [192.168.50.1]
admin:
  - {name: ssh, port: 22, from: [192.168.50.20]}
vpn:
  interface: wg0
  endpoints: ["100.128.77.1:51820/udp"]
`;
// nobody: a user every Debian machine has, so that the probes can run as it.
const USERS = `${HOST}  users: [nobody]\n`;
const MACHINE = `${HOST}  scope: machine\n  lan: [192.168.50.0/24, 192.168.50.1]\n`;

const failures = (r: Rehearsal) => r.flows.filter((f) => !f.ok).map((f) => `${f.id}. ${f.what}: expected ${f.expect}, observed ${f.observed} (${f.detail})`).join("\n");
const flow = (r: Rehearsal, what: string) => r.flows.find((f) => f.what === what);

/** The ruleset without the jumps into the kill switch's chain: the chain is there, nothing goes through it. */
function withoutKillSwitch(ruleset: Ruleset): Ruleset {
  return { tables: ruleset.tables.map((t) => ({ ...t, chains: t.chains.map((c) => ({ ...c,
    rules: c.rules.filter((r) => !(r.verdict.kind === "jump" && r.verdict.chain === "vpn_confined")) })) })) };
}

describe.each(["nft", "iptables"] as const)("a vpn policy rehearsed with %s", (backend) => {
  test("scope users: the client's port only through the tunnel, the confined user's traffic only through it, root's everywhere", async () => {
    const r = await rehearse(parsePolicy(USERS, "vpn-users.yaml"), { backend });
    expect(failures(r)).toBe("");
    expect(r.ok).toBe(true);
    expect(flow(r, "peer → client qbittorrent, TCP 6881 via wg0 (IPv4)")).toMatchObject({ expect: "open", answeredBy: "host", ok: true });
    expect(flow(r, "peer → client qbittorrent, UDP 6881 via eth0 (IPv4)")).toMatchObject({ expect: "closed", observed: "closed" });
    // The client answers as the confined user: over IPv6 its answer is dropped (the tunnel carries none).
    expect(flow(r, "leak: peer → client qbittorrent, TCP 6881 via wg0 (IPv6, the answer)")).toMatchObject({ expect: "closed", observed: "closed", leak: true });
    for (const leak of [
      "leak: user nobody TCP 198.51.100.7:51413 via eth0 (peer)",
      "leak: user nobody UDP 198.51.100.7:51413 via eth0 (peer)",
      "leak: user nobody UDP 192.168.50.1:53 via eth0 (DNS server)",
      "leak: user nobody TCP 192.168.50.1:53 via eth0 (DNS server)",
      "leak: user nobody TCP [2001:db8:100::7]:443 via eth0 (tracker)",
      "leak: user nobody UDP [2001:db8:100::7]:51413 via wg0 (peer)",
    ]) expect(flow(r, leak), leak).toMatchObject({ leak: true, uid: 65534, expect: "closed", observed: "closed", ok: true });
    expect(flow(r, "user nobody TCP 198.51.100.7:51413 via wg0 (peer)")).toMatchObject({ expect: "open", answeredBy: "tunnel", ok: true });
    expect(flow(r, "user nobody UDP 192.168.50.1:53 via wg0 (DNS server)")).toMatchObject({ expect: "open", answeredBy: "tunnel", ok: true });
    expect(flow(r, "user nobody UDP 100.128.77.1:51820 via eth0 (the tunnel's endpoint)")).toMatchObject({ expect: "open", answeredBy: "internet", ok: true });
    expect(flow(r, "root TCP 198.51.100.7:51413 via eth0 (peer)")).toMatchObject({ expect: "open", answeredBy: "internet", ok: true });
    expect(flow(r, "root TCP [2001:db8:100::7]:443 via eth0 (tracker)")).toMatchObject({ expect: "open", answeredBy: "internet", ok: true });
  });

  test("scope machine: everything the host sends leaves through the tunnel, but for the LAN, the DNS server named and the endpoint", async () => {
    const r = await rehearse(parsePolicy(MACHINE, "vpn-machine.yaml"), { backend });
    expect(failures(r)).toBe("");
    expect(flow(r, "leak: root (scope machine) TCP 198.51.100.7:51413 via eth0 (peer)")).toMatchObject({ leak: true, observed: "closed" });
    expect(flow(r, "leak: root (scope machine) ping 198.51.100.7 via eth0 (peer)")).toMatchObject({ leak: true, observed: "closed" });
    expect(flow(r, "leak: root (scope machine) UDP 198.51.100.66:53 via eth0 (another DNS server)")).toMatchObject({ leak: true, observed: "closed" });
    expect(flow(r, "root (scope machine) UDP 192.168.50.1:53 via eth0 (DNS server)")).toMatchObject({ expect: "open", answeredBy: "internet", ok: true });
    expect(flow(r, "root (scope machine) TCP 192.168.50.3:51413 via eth0 (the LAN)")).toMatchObject({ expect: "open", ok: true });
    expect(flow(r, "root (scope machine) UDP 100.128.77.1:51820 via eth0 (the tunnel's endpoint)")).toMatchObject({ expect: "open", ok: true });
    expect(flow(r, "root (scope machine) TCP 198.51.100.7:51413 via wg0 (peer)")).toMatchObject({ expect: "open", answeredBy: "tunnel", ok: true });
    expect(flow(r, "admin1 192.168.50.20 → admin ssh, TCP 22")).toMatchObject({ expect: "open", ok: true });
    // A ping from the internet is answered by a confined machine: through eth0 the echo reply is a leak.
    expect(flow(r, "leak: peer → ping via eth0 (IPv4, the answer)")).toMatchObject({ observed: "closed" });
    expect(flow(r, "peer → ping via wg0 (IPv4)")).toMatchObject({ expect: "open", ok: true });
  });
});

describe("a ruleset without the kill switch is caught by the leak flows", () => {
  test.each([["users", "nft"], ["machine", "iptables"]] as const)("scope %s (%s)", async (scope, backend) => {
    const text = scope === "users" ? USERS : MACHINE;
    const policy = parsePolicy(text, "vpn.yaml");
    const r = await rehearse(policy, { backend, ruleset: withoutKillSwitch(compile(policy)) });
    expect(r.ok).toBe(false);
    const failed = r.flows.filter((f) => !f.ok);
    expect(failed.every((f) => f.leak && f.observed === "open")).toBe(true);
    const who = scope === "users" ? "user nobody" : "root (scope machine)";
    expect(failed.map((f) => f.what)).toEqual(expect.arrayContaining([
      `leak: ${who} TCP 198.51.100.7:51413 via eth0 (peer)`,
      `leak: ${who} UDP 198.51.100.7:443 via eth0 (tracker)`,
      `leak: ${who} TCP [2001:db8:100::7]:51413 via eth0 (peer)`,
      ...(scope === "users" ? ["leak: user nobody UDP 192.168.50.1:53 via eth0 (DNS server)"] : []),
    ]));
    expect(failed[0]!.expectedRule).toMatch(/kill switch/);
  });
});

test("a kill switch without its DNS rule leaks DNS to the LAN resolver, and only that is caught", async () => {
  const policy = parsePolicy(USERS, "vpn-users.yaml");
  const ruleset = compile(policy);
  const noDnsDrop: Ruleset = { tables: ruleset.tables.map((t) => ({ ...t, chains: t.chains.map((c) => (c.name !== "vpn_confined" ? c : { ...c,
    rules: c.rules.filter((r) => !(r.verdict.kind === "drop" && r.matches.some((m) => m.kind === "dport"))) })) })) };
  const r = await rehearse(policy, { backend: "nft", ruleset: noDnsDrop });
  expect(r.flows.filter((f) => !f.ok).map((f) => f.what).sort()).toEqual([
    "leak: user nobody TCP 192.168.50.1:53 via eth0 (DNS server)",
    "leak: user nobody UDP 192.168.50.1:53 via eth0 (DNS server)",
  ]);
});

const EDGE = `version: 1
host:
  addresses: [192.168.50.2/24, "2001:db8:50::2/64"]
clients:
  - {name: transmission, ports: 51413}
  - {name: aria2, ports: "6881-6885", protocols: [tcp]}
outbound:
  peers: true
  trackers: [80, 443, 6969]
  dns: [192.168.50.53, "2001:db8:50::53"]
admin:
  - {name: webui, port: 9091, from: [192.168.50.0/24]}
icmp: deny
vpn:
  interface: tun0
  endpoints: ["100.128.77.1:1194/tcp", "[2001:db8:77::1]:51820/udp"]
  users: [nobody, 4242]
  ipv6: true
`;

test("no interface named, a tun interface, two confined users (one without a passwd entry), IPv6 through the tunnel, a TCP endpoint", async () => {
  const r = await rehearse(parsePolicy(EDGE, "vpn-edge.yaml"), { backend: "nft" });
  expect(failures(r)).toBe("");
  expect(flow(r, "peer → client aria2, TCP 6885 via tun0 (IPv6)")).toMatchObject({ expect: "open", answeredBy: "host" });
  expect(flow(r, "user 4242 TCP [2001:db8:100::7]:6969 via tun0 (tracker)")).toMatchObject({ expect: "open", answeredBy: "tunnel", uid: 4242 });
  expect(flow(r, "leak: user 4242 UDP [2001:db8:100::7]:6969 via eth0 (tracker)")).toMatchObject({ expect: "closed", observed: "closed" });
  expect(flow(r, "user nobody TCP 100.128.77.1:1194 via eth0 (the tunnel's endpoint)")).toMatchObject({ expect: "open", answeredBy: "internet" });
  expect(flow(r, "user nobody UDP [2001:db8:77::1]:51820 via eth0 (the tunnel's endpoint)")).toMatchObject({ expect: "open", answeredBy: "internet" });
  expect(flow(r, "leak: user nobody UDP [2001:db8:50::53]:53 via eth0 (DNS server)")).toMatchObject({ expect: "closed", observed: "closed" });
});

test("the command names the leak flows, in text and in --json", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sg-vpn-"));
  try {
    writeFileSync(join(dir, "vpn.yaml"), USERS);
    const text = await cli(["rehearse", join(dir, "vpn.yaml")]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/Leak flows — what the kill switch must stop outside wg0: \d+ tried, every one closed/);
    expect(text.stdout).toContain("  leak: user nobody TCP 198.51.100.7:51413 via eth0 (peer) — closed as expected\n");
    const json = await cli(["rehearse", join(dir, "vpn.yaml"), "--backend", "iptables", "--json"]);
    expect(json.code).toBe(0);
    const out = JSON.parse(json.stdout);
    expect(out.leaks).toMatchObject({ leaked: [] });
    expect(out.leaks.closed).toBe(out.leaks.tried);
    expect(out.flows).toContainEqual(expect.objectContaining({ what: "leak: user nobody UDP 192.168.50.1:53 via eth0 (DNS server)", leak: true, via: "eth0",
      user: "user nobody", uid: 65534, expect: "closed", observed: "closed", ok: true }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
