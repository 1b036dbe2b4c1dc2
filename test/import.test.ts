// swarmgate import: a policy from a ruleset other tools wrote, and the exact
// difference in exposure between the two. On swarmgate's own output (read
// back from the kernel by test/fixtures/foreign/capture.mjs) the policy is the
// same as the one compiled, to the address: nothing closes, nothing opens.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, test } from "vitest";
import { parsePolicy } from "../src/policy/load.js";
import { withNetns } from "../src/system/netns.js";
import { cli, ROOT } from "./helpers/cli.js";

const FIXTURES = join(ROOT, "test/fixtures/foreign");
const from = (name: string) => ["ipset.txt", "nft.json", "iptables-save.txt", "ip6tables-save.txt"].map((f) => join(FIXTURES, name, f)).filter(existsSync).flatMap((f) => ["--from", f]);
interface Line { direction: string; family: number; protocol: string; ports: string; peers: string; was?: string }
interface Line { interface?: string; target?: string }
interface Result { ok: boolean; role: string; policy: string; closes: Line[]; opens: Line[]; notExpressed: string[] }

async function importJson(name: string, args: string[]): Promise<Result> {
  const r = await cli(["import", ...from(name), "--json", ...args]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Result;
}

test.each(["swarmgate-standalone-nft", "swarmgate-standalone-iptables"])("round trip: %s, read back from the kernel, imports to a policy with the same exposure", async (name) => {
  const r = await importJson(name, ["--interface", "eth0", "--local", "eth0=192.168.153.51", "--local", "eth0=2001:db8::51"]);
  expect(r.closes).toEqual([]);
  expect(r.opens).toEqual([]);
  const policy = parsePolicy(r.policy, "imported.yaml");
  expect(policy.clients.map((c) => [c.ports.first, c.ports.last])).toEqual([[6881, 6881]]);
  expect(policy.admin.map((a) => a.name)).toEqual(["ssh", "vnc", "port-5901"]);
});

test("the classic script: stateless openings and open IPv6 are closed, DNS over TCP opened; each rule named", async () => {
  const r = await importJson("classic-qbittorrent", ["--local", "eth0=192.168.0.50"]);
  const policy = parsePolicy(r.policy, "imported.yaml");
  expect(policy.clients.map((c) => [c.ports.first, c.protocols])).toEqual([[6881, ["tcp", "udp"]]]);
  expect(policy.admin.map((a) => [a.name, a.ports.first])).toEqual([["ssh", 22], ["webui", 8080]]);
  expect(policy.outbound).toMatchObject({ peers: true, dns: "any" });
  expect(r.policy).toMatch(/- \{name: ssh, port: 22, from: \["192\.168\.0\.2"\]\}  # from \S*classic-qbittorrent\/iptables-save\.txt:10\n/);
  expect(r.closes).toContainEqual({ direction: "inbound", family: 4, protocol: "udp", ports: "1-1023", peers: "anywhere", was: expect.stringMatching(/^open through a stateless rule, from source port 53 \(\S*iptables-save\.txt:15\)$/) });
  expect(r.closes).toContainEqual(expect.objectContaining({ direction: "inbound", family: 6, protocol: "tcp", ports: "1-6880", peers: "anywhere", was: "open: nothing filtered it" }));
  expect(r.opens).toEqual([{ direction: "outbound", family: 4, protocol: "tcp", ports: "53", peers: "anywhere" }]);
  expect(r.notExpressed).toContainEqual(expect.stringMatching(/^inbound IPv4 UDP 1-1023 from anywhere, source port 53 only: a stateless rule/));
});

// Gateways: a ruleset that forwards gives a gateway policy, judged on the WAN and the LAN, forwards included.
const forwardsOf = (p: ReturnType<typeof parsePolicy>) => p.forward.map((f) => ({ host: f.host, host6: f.host6, ports: f.ports, protocols: f.protocols }));

test.each(["swarmgate-gateway-nft", "swarmgate-gateway-iptables"])("round trip: %s imports to examples/gateway.yaml's gateway and forwards, the same exposure on both interfaces", async (name) => {
  const r = await importJson(name, ["--route", "192.168.1.0/24=lan0", "--local", "ppp0=203.0.113.1", "--local", "ppp0=2001:db8:ffff::1"]);
  expect(r.role).toBe("gateway");
  expect(r.closes).toEqual([]);
  expect(r.opens).toEqual([]);
  const policy = parsePolicy(r.policy, "imported.yaml");
  const example = parsePolicy(readFileSync(join(ROOT, "examples/gateway.yaml"), "utf8"), "gateway.yaml");
  expect(policy.gateway).toEqual(example.gateway);
  expect(forwardsOf(policy)).toEqual(forwardsOf(example));
  expect(policy.admin.map((a) => [a.name, a.ports, a.from])).toEqual(example.admin.map((a) => [a.name, a.ports, a.from]));
  expect(r.policy).toMatch(/- \{host: "192\.168\.1\.4", ports: "6900-6909", protocols: \[tcp\]\}  # from \S*(nft\.json: table inet swarmgate chain prerouting rule 3|iptables-save\.txt:61)/);
});

test("--lan and --lan-network say what a route would", async () => {
  const name = "swarmgate-gateway-nft";
  const [a, b] = await Promise.all([
    importJson(name, ["--route", "192.168.1.0/24=lan0", "--local", "ppp0=203.0.113.1"]),
    importJson(name, ["--lan", "lan0", "--lan-network", "192.168.1.0/24", "--local", "ppp0=203.0.113.1"]),
  ]);
  expect(forwardsOf(parsePolicy(b.policy))).toEqual(forwardsOf(parsePolicy(a.policy)));
  expect([b.closes, b.opens]).toEqual([[], []]);
});

test("a gateway whose LAN is not known: a usage error naming --lan and --lan-network, nothing written", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sg-import-"));
  const r = await cli(["import", ...from("gateway-wrong-direction"), "-o", join(dir, "p.yaml")]);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/error\[CLI_USAGE\]: this ruleset forwards, and the LAN behind eth1 is not known: give --lan IFACE --lan-network PREFIX/);
  expect(existsSync(join(dir, "p.yaml"))).toBe(false);
});

test("the wrong-direction gateway: the working forward is imported, the broken one and the wrong-direction rules are listed, each closing named", async () => {
  const r = await importJson("gateway-wrong-direction", ["--route", "192.168.1.0/24=br-lan", "--local", "eth1=203.0.113.1"]);
  const policy = parsePolicy(r.policy, "imported.yaml");
  expect(policy.gateway).toMatchObject({ wan: "eth1", lan: "br-lan", masquerade: true });
  expect(policy.forward.map((f) => [f.host.value, f.ports.first, f.ports.last, f.protocols])).toEqual([[0xc0a80114n, 51413, 51413, ["tcp", "udp"]]]);
  expect(policy.admin.map((a) => [a.name, a.protocols])).toEqual([["ssh", ["tcp"]], ["port-53", ["tcp", "udp"]], ["port-67", ["udp"]], ["http", ["tcp"]]]);
  expect(r.policy).toMatch(/masquerade: true  # from \S*gateway-wrong-direction\/iptables-save\.txt:29\n/);
  // The forward rules that name 192.168.1.10 as the source, and the DNATs whose connections nothing accepts.
  for (const [proto, line] of [["TCP", 13], ["UDP", 14]] as const) {
    expect(r.notExpressed).toContainEqual(expect.stringMatching(new RegExp(`^forwarded IPv4 ${proto} \\S+ from 192\\.168\\.1\\.10, source port 6881 only \\(\\S*iptables-save\\.txt:${line}\\): a forward in the wrong direction`)));
    expect(r.notExpressed).toContainEqual(expect.stringMatching(new RegExp(`^DNAT of ${proto} 6881 to 192\\.168\\.1\\.10 \\(\\S*iptables-save\\.txt:${line + 12}\\): no forward rule accepts`)));
    expect(r.closes).toContainEqual(expect.objectContaining({ interface: "eth1", direction: "forwarded", protocol: proto.toLowerCase(), peers: "192.168.1.10", was: expect.stringMatching(new RegExp(`^open through a stateless rule, from source port 6881 \\(\\S*iptables-save\\.txt:${line}\\)$`)) }));
  }
  // IPv6, never filtered, is closed on both interfaces; nothing is opened.
  for (const iface of ["eth1", "br-lan"]) expect(r.closes).toContainEqual(expect.objectContaining({ interface: iface, direction: "inbound", family: 6, protocol: "tcp", ports: "1-65535", was: "open: nothing filtered it" }));
  expect(r.opens).toEqual([]);
});

test("a hand-written nftables router: its DNAT'd forward imported, the port-changing one, the DNAT of routed traffic and the LAN forward from anywhere said", async () => {
  const r = await importJson("nft-handwritten", ["--route", "192.168.1.0/24=br-lan", "--local", "eth0=203.0.113.7"]);
  expect(r.role).toBe("gateway");
  const policy = parsePolicy(r.policy, "imported.yaml");
  expect(policy.gateway).toMatchObject({ wan: "eth0", lan: "br-lan", masquerade: true });
  expect(policy.forward.map((f) => [f.host.value & 0xffn, f.ports.first, f.protocols])).toEqual([[50n, 51413, ["tcp", "udp"]]]);
  expect(r.policy).toMatch(/- \{host: "192\.168\.1\.50", ports: 51413\}  # from \S*nft\.json: table ip nat chain prerouting rule 1, \S*nft\.json: table inet filter chain forward rule 3\n/);
  const said = r.notExpressed.join("\n");
  expect(said).toMatch(/^forwarded IPv4 TCP 2222 from anywhere → 192\.168\.1\.2: the DNAT changes the port \(to 22 at \S*nft\.json: table ip nat chain prerouting rule 2\)/m);
  expect(said).toMatch(/^forwarded IPv4 (TCP|UDP) 51413 from anywhere → anywhere: forwarded to 192\.168\.1\.0\/24, not by DNAT of what peers send to the gateway/m);
  expect(said).toMatch(/^forwarded IPv4 TCP\+UDP\+ICMP from br-lan, from anywhere except 192\.168\.1\.0\/24 \(\S*nft\.json: table inet filter chain forward rule 2\): sources outside the LAN network/m);
  expect(r.closes).toContainEqual(expect.objectContaining({ interface: "br-lan", direction: "forwarded", protocol: "tcp", ports: "1-65535", peers: "anywhere except 192.168.1.0/24" }));
});

// What a gateway policy cannot say, in a ruleset the kernel held: loaded by iptables-restore into a throwaway
// namespace and read back with iptables-save (the file import reads is the real tool's output).
const LIMITS = `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i eth1 -p tcp --dport 16881 -j DNAT --to-destination 192.168.1.5:6881
-A PREROUTING -i eth1 -s 198.51.100.0/24 -p udp --dport 7000 -j DNAT --to-destination 192.168.1.6
-A PREROUTING -i eth1 -p tcp --dport 7100:7109 -j DNAT --to-destination 192.168.1.7
-A PREROUTING -i eth1 -p tcp --dport 7200 -j DNAT --to-destination 192.168.1.8
-A POSTROUTING -s 192.168.1.0/25 -o eth1 -j MASQUERADE
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -s 192.168.1.0/24 -i br-lan -o eth1 -j ACCEPT
-A FORWARD -d 192.168.1.5/32 -i eth1 -o br-lan -p tcp --dport 6881 -j ACCEPT
-A FORWARD -d 192.168.1.6/32 -i eth1 -o br-lan -p udp --dport 7000 -j ACCEPT
-A FORWARD -s 203.0.113.0/24 -d 192.168.1.7/32 -i eth1 -o br-lan -p tcp --dport 7100:7109 -j ACCEPT
-A FORWARD -d 192.168.1.8/32 -i eth1 -o br-lan -p tcp --dport 7200 -j ACCEPT
COMMIT
`;

test("a gateway's forwards a policy cannot say: a DNAT that changes the port, forwards from some peers only, a masquerade of part of the LAN", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sg-import-"));
  const saved = join(dir, "iptables-save.txt");
  await withNetns(1, async (ns) => {
    await ns.execChecked("iptables-restore", [], { input: LIMITS });
    writeFileSync(saved, (await ns.execChecked("iptables-save", [])).stdout);
  });
  const r = await cli(["import", "--from", saved, "--json", "--interface", "eth1", "--lan", "br-lan", "--lan-network", "192.168.1.0/24", "--local", "eth1=203.0.113.1"]);
  expect(r.code, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout) as Result;
  const policy = parsePolicy(out.policy, "imported.yaml");
  expect(policy.forward.map((f) => [f.host.value & 0xffn, f.ports.first, f.ports.last, f.protocols])).toEqual([[8n, 7200, 7200, ["tcp"]]]);
  expect(policy.gateway?.masquerade).toBe(false);
  const said = out.notExpressed.join("\n");
  expect(said).toMatch(/^forwarded IPv4 TCP 16881 from anywhere → 192\.168\.1\.5: the DNAT changes the port \(to 6881 at \S*iptables-save\.txt:\d+\)/m);
  expect(said).toMatch(/^forwarded IPv4 UDP 7000 from 198\.51\.100\.0\/24 → 192\.168\.1\.6: forwarded from some peers only/m);
  expect(said).toMatch(/^forwarded IPv4 TCP 7100-7109 from 203\.0\.113\.0\/24 → 192\.168\.1\.7: forwarded from some peers only/m);
  expect(said).toMatch(/^masquerade of 192\.168\.1\.0\/25 only, out of eth1/m);
  // What was said about a host is not said again as a DNAT nothing accepts.
  expect(said).not.toMatch(/^DNAT of/m);
  for (const [protocol, ports] of [["tcp", "16881"], ["udp", "7000"], ["tcp", "7100-7109"]]) {
    expect(out.closes).toContainEqual(expect.objectContaining({ interface: "eth1", direction: "forwarded", protocol, ports }));
  }
  // The forward that a policy says exactly stays open: nothing from anywhere to 192.168.1.8 is closed.
  expect(out.closes.filter((l) => l.ports === "7200" && l.target === "192.168.1.8" && (l as { peers?: string }).peers === "anywhere")).toEqual([]);
});

test("-o writes a policy that swarmgate check accepts, whole", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sg-import-"));
  const out = join(dir, "policy.yaml");
  const r = await cli(["import", ...from("classic-qbittorrent"), "--local", "eth0=192.168.0.50", "-o", out]);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toMatch(new RegExp(`^wrote ${out.replace(/[/.]/g, "\\$&")}\n`));
  expect(readFileSync(out, "utf8")).toMatch(/^# Imported by swarmgate from /);
  expect((await cli(["check", out])).code).toBe(0);
});

test("bad input: exit 2, nothing written", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sg-import-"));
  const r = await cli(["import", "--from", join(dir, "missing.txt"), "-o", join(dir, "p.yaml")]);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain("error[IMPORT_UNREADABLE]");
  expect(existsSync(join(dir, "p.yaml"))).toBe(false);
});
