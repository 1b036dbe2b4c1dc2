// The vpn section without a kernel: what the policy accepts and refuses, the
// kill switch's place in the output chain and its rules in both backends, the
// readiness checks that judge it with the confined user's own packets, and
// explain's answer for a peer knocking on the physical side. The real tunnel
// is in vpn-leak.test.ts.
import { describe, expect, test } from "vitest";
import { audit } from "../src/analyze/audit.js";
import { emitIptables } from "../src/backend/iptables.js";
import { emitNft } from "../src/backend/nft.js";
import { compile } from "../src/compile/index.js";
import { parsePolicy } from "../src/policy/load.js";
import { passwdLookup } from "../src/policy/vpn.js";
import { compileForSim } from "../src/sim/compiled.js";
import { policyEnvironment } from "../src/sim/policy-environment.js";
import { simulate } from "../src/sim/simulate.js";
import { parsePacket } from "../src/sim/spec.js";

const users = passwdLookup("root:x:0:0::/root:/bin/sh\ndebian-transmission:x:108:113::/var/lib/transmission-daemon:/usr/sbin/nologin\n");
const HOST = `version: 1
host:
  interface: eth0
  addresses: [192.168.50.2/24, "2001:db8:50::2/64"]
clients:
  - {name: tr, ports: 51413}
outbound:
  peers: true
  trackers: [80, 443]
  dns: [192.168.50.1]
admin:
  - {name: ssh, port: 22, from: [192.168.50.20]}
`;
const policy = (vpn: string) => parsePolicy(`${HOST}vpn:\n${vpn}`, "vpn.yaml", { users });
const USERS = `  interface: wg0\n  endpoints: ["100.128.77.1:51820/udp", "[2001:db8:77::1]:51820/udp"]\n  users: [debian-transmission]\n`;

describe("the vpn section", () => {
  test("users by name become uids; endpoints of both families; defaults", () => {
    expect(policy(USERS).vpn).toMatchObject({ interface: "wg0", scope: "users", users: [{ name: "debian-transmission", uid: 108 }], ipv6: false, lan: [],
      endpoints: [{ port: 51820, protocol: "udp", address: { family: 4 } }, { port: 51820, protocol: "udp", address: { family: 6 } }] });
    expect(policy(`${USERS}  users: [1000]\n`.replace(/  users: \[debian-transmission\]\n/, "")).vpn?.users).toEqual([{ name: "1000", uid: 1000 }]);
  });

  test.each([
    ["  interface: wg0\n  endpoints: [\"100.128.77.1/udp\"]\n  users: [root]\n", /vpn\.yaml:\d+:\d+: .*POLICY_BAD_VALUE.*ADDRESS:PORT\/PROTO/],
    ["  interface: wg0\n  endpoints: [\"100.128.77.1:51820/udp\"]\n  users: [nosuchuser]\n", /no user nosuchuser in \/etc\/passwd/],
    ["  interface: wg0\n  endpoints: [\"100.128.77.1:51820/udp\"]\n", /vpn\.users is needed with scope "users"/],
    ["  interface: eth0\n  endpoints: [\"100.128.77.1:51820/udp\"]\n  scope: machine\n", /must be the tunnel, not the host's own interface eth0/],
    ["  interface: wg0\n  endpoints: []\n  scope: machine\n", /needs at least one endpoint/],
    ["  interface: wg0\n  endpoints: [\"100.128.77.1:51820/udp\"]\n  scope: everyone\n", /vpn\.scope must be "users" or "machine"/],
  ])("refused with file:line:column: %#", (vpn, message) => {
    expect(() => policy(vpn)).toThrowError(message);
  });

  test("a gateway cannot have one", () => {
    expect(() => parsePolicy(`version: 1\ngateway: {wan: ppp0, lan: lan0, lan_network: 192.168.1.0/24}\nvpn:\n${USERS}`, "gw.yaml", { users })).toThrowError(/POLICY_ROLE.*gateway policy cannot have it/);
  });
});

describe("the kill switch", () => {
  test("the confined user's jump comes right after loopback, before connection tracking, in both backends", () => {
    const ruleset = compile(policy(USERS));
    const output = ruleset.tables[0]!.chains.find((c) => c.name === "output")!;
    expect(output.rules.slice(0, 3).map((r) => r.origin.intent)).toEqual([
      "loopback traffic of this machine", "vpn: what user debian-transmission (uid 108) sends is confined to wg0", "connection tracking: drop invalid packets"]);
    const nft = emitNft(ruleset);
    expect(nft).toMatch(/meta skuid 108 counter jump vpn_confined/);
    expect(nft).toMatch(/chain vpn_confined \{\n\t\tmeta nfproto ipv6 counter drop[^\n]*\n\t\toifname "wg0" counter return/);
    expect(emitIptables(ruleset, 4)).toMatch(/-A SWARMGATE-OUTPUT -m owner --uid-owner 108 -m comment --comment "vpn: what user debian-transmission \(uid 108\) sends is confined to wg0 \[vpn\.users\]" -j SWARMGATE-VPN_CONFINED/);
    expect(emitIptables(ruleset, 6)).toMatch(/-A SWARMGATE-VPN_CONFINED -m comment --comment "vpn: confined IPv6 dropped everywhere[^"]*" -j DROP/);
  });

  const verdict = (p: ReturnType<typeof policy>, spec: string) => simulate(compileForSim(compile(p)), parsePacket(spec), policyEnvironment(p, parsePacket(spec))).verdict;

  test("the confined user leaves only through the tunnel; root is not confined with scope users, and is with scope machine", () => {
    const p = policy(USERS);
    expect(verdict(p, "tcp 192.168.50.2:40000 -> 198.51.100.7:6881 out wg0 uid 108")).toBe("accept");
    expect(verdict(p, "tcp 192.168.50.2:40000 -> 198.51.100.7:6881 out eth0 uid 108")).toBe("drop");
    expect(verdict(p, "tcp 192.168.50.2:40000 -> 198.51.100.7:6881 out eth0 uid 108 established")).toBe("drop");
    expect(verdict(p, "udp 192.168.50.2:40000 -> 192.168.50.1:53 out eth0 uid 108")).toBe("drop");
    expect(verdict(p, "tcp [2001:db8:50::2]:40000 -> [2001:db8::7]:6881 out wg0 uid 108")).toBe("drop");
    // The LAN stays reachable outside the tunnel (vpn.lan defaults to the host's network); the outbound rules still decide.
    expect(verdict(p, "tcp 192.168.50.2:40000 -> 192.168.50.20:8080 out eth0 uid 108")).toBe("accept");
    expect(verdict(p, "tcp 192.168.50.2:40000 -> 192.168.50.20:22 out eth0 uid 108")).toBe("drop");
    expect(verdict(p, "tcp 192.168.50.2:40000 -> 198.51.100.7:6881 out eth0 uid 0")).toBe("accept");
    const machine = policy("  interface: wg0\n  endpoints: [\"100.128.77.1:51820/udp\"]\n  scope: machine\n  lan: [192.168.50.0/24, 192.168.50.1]\n");
    expect(verdict(machine, "tcp 192.168.50.2:40000 -> 198.51.100.7:6881 out eth0 uid 0")).toBe("drop");
    expect(verdict(machine, "udp 192.168.50.2:40000 -> 100.128.77.1:51820 out eth0 uid 0")).toBe("accept");
    expect(verdict(machine, "udp 192.168.50.2:40000 -> 192.168.50.1:53 out eth0 uid 0")).toBe("accept"); // named one by one in vpn.lan
  });

  test("audit's vpn checks pass, and explain says why a peer on the physical side is dropped", async () => {
    const r = audit(policy(USERS));
    const vpn = r.checks.filter((c) => c.id?.startsWith("vpn-"));
    expect(new Set(vpn.map((c) => c.id))).toEqual(new Set(["vpn-tunnel", "vpn-kill-switch", "vpn-ipv6", "vpn-dns", "vpn-endpoint", "vpn-peer-port"]));
    expect(vpn.filter((c) => c.status !== "pass")).toEqual([]);
    expect(r.checks.find((c) => c.title.startsWith("peers reach client tr over TCP (IPv4, through wg0)"))?.status).toBe("pass");
  });
});
