// Rulesets other tools wrote (issue 9): the readers on fixtures captured from
// the real tools (test/fixtures/foreign, re-created by its capture.mjs),
// explain --from on them, and the simulator against the kernel: each fixture
// restored with iptables-restore and ipset in a throwaway namespace, 2,000 new
// connections both ways, every verdict compared.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import type { Rule } from "../src/ir/ruleset.js";
import { describeProbe, foreignDifferential } from "../src/lab/foreign-differential.js";
import { formatPrefix } from "../src/net/prefix.js";
import { parseIpsetSave } from "../src/parse/ipset.js";
import { parseIptablesSave } from "../src/parse/iptables-save.js";
import { readForeignFiles } from "../src/parse/index.js";
import { SwarmgateError } from "../src/errors.js";
import { cli, ROOT } from "./helpers/cli.js";
import { swarmgate } from "./helpers/cli-in-netns.js";
import { withNetns } from "../src/system/netns.js";

const FIXTURES = join(ROOT, "test/fixtures/foreign");
const files = (name: string) => ["ipset.txt", "iptables-save.txt", "ip6tables-save.txt"].map((f) => join(FIXTURES, name, f)).filter(existsSync);
/** What --live reads: nft -j output beside both iptables-save outputs and the sets. */
const everything = (name: string) => ["ipset.txt", "nft.json", "iptables-save.txt", "ip6tables-save.txt"].map((f) => join(FIXTURES, name, f)).filter(existsSync);
const rulesOf = (name: string): Rule[] => readForeignFiles(files(name)).ruleset.tables.flatMap((t) => t.chains.flatMap((c) => c.rules));
const tmp = () => mkdtempSync(join(tmpdir(), "sg-foreign-"));

describe("reading iptables-save", () => {
  test.each(["classic-qbittorrent", "gateway-wrong-direction", "docker-like", "fail2ban-like", "ufw", "nft-handwritten", "swarmgate-standalone-iptables", "swarmgate-gateway-iptables"])("%s: every table and rule, each with its place", (name) => {
    const read = readForeignFiles(files(name));
    for (const t of read.ruleset.tables) for (const c of t.chains) c.rules.forEach((r, i) => {
      expect(r.origin.source).toMatchObject({ table: t.name, chain: c.name, number: i + 1 });
      expect(r.origin.path).toBe(`${r.origin.source!.file}:${r.origin.source!.line}`);
    });
  });

  test("the classic script: iprange, negated flags, multiport, a user chain, REJECT types, an empty IPv6 file", () => {
    const read = readForeignFiles(files("classic-qbittorrent"));
    expect(read.read.map((r) => [r.format, r.tables])).toEqual([["iptables-save", ["ip filter"]], ["empty", []]]);
    const input = read.ruleset.tables[0]!.chains.find((c) => c.name === "INPUT")!;
    expect(input.base).toEqual({ type: "filter", hook: "input", priority: 0, policy: "drop" });
    const webui = input.rules.find((r) => r.origin.intent === "qbittorrent webui")!;
    const src = webui.matches.find((m) => m.kind === "saddr")!;
    // 192.168.0.1-192.168.0.254 as the fewest prefixes that cover it exactly.
    expect(src.kind === "saddr" && src.prefixes.map(formatPrefix)).toEqual(["192.168.0.1", "192.168.0.2/31", "192.168.0.4/30", "192.168.0.8/29", "192.168.0.16/28", "192.168.0.32/27", "192.168.0.64/26", "192.168.0.128/26", "192.168.0.192/27", "192.168.0.224/28", "192.168.0.240/29", "192.168.0.248/30", "192.168.0.252/31", "192.168.0.254"]);
    const rules = rulesOf("classic-qbittorrent");
    expect(rules.find((r) => r.origin.source!.text.includes("! --tcp-flags"))!.matches).toContainEqual({ kind: "tcpflags", mask: ["fin", "syn", "rst", "ack"], equal: ["syn"], negate: true });
    expect(rules.find((r) => r.origin.intent === "trackers")!.matches).toContainEqual({ kind: "dport", protocol: "tcp", ranges: [{ first: 80, last: 80 }, { first: 6969, last: 6969 }] });
    expect(rules.filter((r) => r.verdict.kind === "reject").map((r) => r.verdict)).toEqual([{ kind: "reject", with: "icmp-port-unreachable" }, { kind: "reject", with: "tcp-reset" }]);
    expect(rules.find((r) => r.origin.source!.text === "-A INPUT -i eth0 -j BADPKT")!.verdict).toEqual({ kind: "jump", chain: "BADPKT" });
  });

  test("fail2ban-like: ipset members become addresses; recent, hashlimit, owner and marks stay unknown conditions, as written", () => {
    const rules = rulesOf("fail2ban-like");
    const banned = rules.find((r) => r.origin.source!.chain === "f2b-sshd" && r.verdict.kind === "reject")!;
    expect(banned.matches).toEqual([{ kind: "saddr", family: 4, prefixes: expect.any(Array) }]);
    const unknown = rules.flatMap((r) => r.matches.filter((m) => m.kind === "unknown").map((m) => (m as { text: string }).text));
    expect(unknown).toContainEqual(expect.stringMatching(/^-m recent --update --seconds 60 --hitcount 4 --name SSH/));
    expect(unknown).toContainEqual(expect.stringMatching(/^-m hashlimit --hashlimit-above 20\/sec/));
    expect(unknown.some((t) => t.startsWith("-m owner"))).toBe(true);
    // Without the sets, the rule that tests one carries an unknown condition instead of guessing its members.
    const alone = readForeignFiles([join(FIXTURES, "fail2ban-like", "iptables-save.txt")]).ruleset.tables.flatMap((t) => t.chains.flatMap((c) => c.rules));
    expect(alone.find((r) => r.origin.source!.chain === "f2b-sshd" && r.verdict.kind === "reject")!.matches).toEqual([{ kind: "unknown", text: "-m set --match-set f2b-sshd src" }]);
  });

  test("docker-like: DNAT with a port, negated interfaces, addrtype LOCAL, and the writer named", () => {
    const rules = rulesOf("docker-like");
    expect(rules.map((r) => r.verdict)).toContainEqual({ kind: "dnat", to: { family: 4, value: 0xac110002n }, port: 80 });
    const dockerRule = rules.find((r) => r.origin.source!.chain === "DOCKER" && r.verdict.kind === "dnat")!;
    expect(dockerRule.origin.source!.writer).toBe("Docker");
    expect(dockerRule.matches).toContainEqual({ kind: "iifname", name: "docker0", negate: true });
    expect(rules.flatMap((r) => r.matches)).toContainEqual({ kind: "localaddr", field: "daddr" });
  });

  test("negations become complements: addresses, ports, states", () => {
    const text = "*filter\n:INPUT DROP [0:0]\n-A INPUT ! -s 10.0.0.0/8 -p tcp -m tcp ! --dport 1:1023 -m conntrack ! --ctstate NEW,INVALID -j ACCEPT\nCOMMIT\n";
    const [rule] = parseIptablesSave(text, "x").tables[0]!.chains[0]!.rules;
    const saddr = rule!.matches.find((m) => m.kind === "saddr")!;
    expect(saddr.kind === "saddr" && saddr.prefixes.map(formatPrefix)).toEqual(["0.0.0.0/5", "8.0.0.0/7", "11.0.0.0/8", "12.0.0.0/6", "16.0.0.0/4", "32.0.0.0/3", "64.0.0.0/2", "128.0.0.0/1"]);
    expect(rule!.matches).toContainEqual({ kind: "dport", protocol: "tcp", ranges: [{ first: 0, last: 0 }, { first: 1024, last: 65535 }] });
    expect(rule!.matches).toContainEqual({ kind: "ctstate", states: ["established", "related", "untracked"] });
  });

  test.each([
    ["-A INPUT -p tcp --dport 22 -j ACCEPT\n", 1, 1, "IMPORT_SYNTAX", "outside any table"],
    ["*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\n", 1, 1, "IMPORT_SYNTAX", "has no COMMIT"],
    ["*filter\n:INPUT DROP [0:0]\n-A FORWARD -j ACCEPT\nCOMMIT\n", 3, 4, "IMPORT_SYNTAX", "not declared"],
    ["*filter\n:INPUT DROP [0:0]\n-A INPUT --dport 22 -j ACCEPT\nCOMMIT\n", 3, 10, "IMPORT_SYNTAX", "needs -p tcp or -p udp"],
    ["*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp -m tcp --dport 99999 -j ACCEPT\nCOMMIT\n", 3, 32, "IMPORT_SYNTAX", "not a port"],
    ["*filter\n:INPUT DROP [0:0]\n-A INPUT -s 10.0.0.300 -j ACCEPT\nCOMMIT\n", 3, 13, "IMPORT_SYNTAX", "not an IPv4 or IPv6 address"],
    ["*filter\n:INPUT DROP [0:0]\n-A INPUT -j NOSUCH_chain\nCOMMIT\n", 3, 13, "IMPORT_SYNTAX", "no chain of that name"],
    ["*filter\n:INPUT DROP [0:0]\n-A INPUT -m comment --comment \"open -j ACCEPT\nCOMMIT\n", 3, 31, "IMPORT_SYNTAX", "not closed"],
    ["*broute\n:BROUTING ACCEPT\nCOMMIT\n", 1, 1, "IMPORT_UNSUPPORTED", "unknown table"],
  ])("bad input is an error at its line and column: %j", (text, line, column, code, message) => {
    let error: unknown;
    try { parseIptablesSave(text, "bad.txt"); } catch (e) { error = e; }
    expect(error).toBeInstanceOf(SwarmgateError);
    expect((error as SwarmgateError).diagnostics[0]).toMatchObject({ code, file: "bad.txt", line, column, message: expect.stringContaining(message) });
  });

  test("a jump loop or chains nested beyond any kernel's limit: a clear error, not a crash", () => {
    const dir = tmp();
    writeFileSync(join(dir, "loop.txt"), "*filter\n:INPUT DROP [0:0]\n:a - [0:0]\n:b - [0:0]\n-A INPUT -j a\n-A a -j b\n-A b -j a\nCOMMIT\n");
    expect(() => readForeignFiles([join(dir, "loop.txt")])).toThrow(/IMPORT_SYNTAX.*chain a jumps back to itself \(a → b → a\)/);
    const n = 20_000;
    const chains = Array.from({ length: n }, (_, i) => `:c${i} - [0:0]`).join("\n");
    const jumps = Array.from({ length: n - 1 }, (_, i) => `-A c${i} -j c${i + 1}`).join("\n");
    writeFileSync(join(dir, "deep.txt"), `*filter\n:INPUT DROP [0:0]\n${chains}\n-A INPUT -j c0\n${jumps}\nCOMMIT\n`);
    expect(() => readForeignFiles([join(dir, "deep.txt")])).toThrow(/IMPORT_UNSUPPORTED.*more than 64 deep/);
  });

  test("ipset save: address sets become prefixes, ranges included; other kinds are kept by name only", () => {
    const sets = parseIpsetSave("create a hash:ip family inet hashsize 1024 maxelem 65536\nadd a 192.0.2.1\nadd a 10.0.0.1-10.0.0.3\ncreate b hash:ip,port family inet\nadd b 192.0.2.1,tcp:22\n", "s");
    expect(sets.get("a")!.prefixes!.map(formatPrefix)).toEqual(["192.0.2.1", "10.0.0.1", "10.0.0.2/31"]);
    expect(sets.get("b")).toEqual({ name: "b", type: "hash:ip,port" });
  });
});

describe("reading nft -j output", () => {
  test("a hand-written ruleset: named and anonymous sets, a concatenation, verdict maps, th dport, fib, reject, dnat", () => {
    const read = readForeignFiles(everything("nft-handwritten"));
    expect(read.ruleset.tables.map((t) => `${t.family} ${t.name}`)).toEqual(["inet filter", "ip nat", "ip6 filter"]);
    const input = read.ruleset.tables[0]!.chains.find((c) => c.name === "input")!;
    expect(input.base).toEqual({ type: "filter", hook: "input", priority: 0, policy: "drop" });
    // ct state vmap { established : accept, related : accept, invalid : drop }: one rule per element.
    const vmap = input.rules.filter((r) => r.origin.source!.number === 2);
    expect(vmap.map((r) => [r.matches, r.verdict.kind])).toEqual(expect.arrayContaining([[[{ kind: "ctstate", states: ["invalid"] }], "drop"], [[{ kind: "ctstate", states: ["established"] }], "accept"]]));
    // tcp dport vmap { 22 : jump ssh_in, 6881 : accept }
    expect(input.rules.filter((r) => r.origin.source!.number === 4).map((r) => r.verdict)).toEqual([{ kind: "jump", chain: "ssh_in" }, { kind: "accept" }]);
    // ip saddr . tcp dport @admin_svc, with 0.0.0.0/0 . 8080 in it (the fixture's defect)
    const svc = input.rules.filter((r) => r.origin.source!.text.includes("@admin_svc"));
    expect(svc.map((r) => r.matches.map((m) => m.kind))).toEqual([["saddr", "dport"], ["saddr", "dport"]]);
    expect(svc[1]!.matches[0]).toMatchObject({ kind: "saddr", prefixes: [{ length: 0 }] });
    // meta l4proto { tcp, udp } th dport 51413 dnat to 192.168.1.50: one rule per protocol.
    const dnat = read.ruleset.tables[1]!.chains.find((c) => c.name === "prerouting")!.rules.filter((r) => r.origin.source!.number === 1);
    expect(dnat.map((r) => r.matches.filter((m) => m.kind === "dport").map((m) => (m as { protocol: string }).protocol))).toEqual([["tcp"], ["udp"]]);
    expect(input.rules.map((r) => r.verdict)).toContainEqual({ kind: "reject", with: "icmpx admin-prohibited" });
    expect(input.rules[0]!.origin.source).toMatchObject({ format: "nft-json", table: "inet filter", chain: "input", number: 1, text: 'meta iifname lo accept', handle: expect.any(Number) });
  });

  test("tables iptables-nft wrote are read from iptables-save, never from their xt stubs; without it, an error says so", () => {
    const read = readForeignFiles(everything("ufw"));
    expect(read.notes).toContain("table ip filter was written by iptables-nft; its rules are read from iptables-save output");
    expect(read.ruleset.tables.map((t) => `${t.family} ${t.name}`)).toEqual(["ip filter", "ip6 filter"]);
    let error: unknown;
    try { readForeignFiles([join(FIXTURES, "ufw", "nft.json")]); } catch (e) { error = e; }
    expect((error as SwarmgateError).diagnostics[0]).toMatchObject({ code: "IMPORT_UNSUPPORTED", message: expect.stringContaining("give iptables-save output too") });
  });

  test("a table nft made under an iptables name is taken from nft -j, not from iptables-save's empty stand-in", () => {
    const read = readForeignFiles(everything("nft-handwritten"));
    const nat = read.ruleset.tables.find((t) => t.name === "nat")!;
    expect(nat.chains.find((c) => c.name === "prerouting")!.rules.length).toBeGreaterThan(0);
  });

  test("a concatenation too big to be one rule per element is an unknown condition, never built", () => {
    const elem = Array.from({ length: 100_001 }, (_, i) => ({ concat: [`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 1000 + (i % 60000)] }));
    const doc = { nftables: [
      { table: { family: "inet", name: "t", handle: 1 } },
      { chain: { family: "inet", table: "t", name: "input", handle: 1, type: "filter", hook: "input", prio: 0, policy: "drop" } },
      { set: { family: "inet", name: "s", table: "t", type: ["ipv4_addr", "inet_service"], handle: 2, elem } },
      { rule: { family: "inet", table: "t", chain: "input", handle: 3, expr: [{ match: { op: "==", left: { concat: [{ payload: { protocol: "ip", field: "saddr" } }, { payload: { protocol: "tcp", field: "dport" } }] }, right: "@s" } }, { accept: null }] } },
    ] };
    const dir = tmp();
    writeFileSync(join(dir, "big.json"), JSON.stringify(doc));
    const rules = readForeignFiles([join(dir, "big.json")]).ruleset.tables[0]!.chains[0]!.rules;
    expect(rules.map((r) => r.matches)).toEqual([[{ kind: "unknown", text: "ip saddr . tcp dport @s" }]]);
  });

  test("a jump to a chain the table does not have: IMPORT_SYNTAX, not a crash", () => {
    const dir = tmp();
    writeFileSync(join(dir, "j.json"), JSON.stringify({ nftables: [
      { table: { family: "inet", name: "t" } },
      { chain: { family: "inet", table: "t", name: "input", type: "filter", hook: "input", prio: 0, policy: "drop" } },
      { rule: { family: "inet", table: "t", chain: "input", expr: [{ jump: { target: "nowhere" } }] } },
    ] }));
    expect(() => readForeignFiles([join(dir, "j.json")])).toThrow(/IMPORT_SYNTAX.*jump to chain nowhere/);
  });

  test("bad JSON: IMPORT_SYNTAX with line and column", () => {
    const dir = tmp();
    writeFileSync(join(dir, "bad.json"), '{"nftables": [\n  {"table": {"family": "inet", "name": "x"}},\n  oops\n]}\n');
    let error: unknown;
    try { readForeignFiles([join(dir, "bad.json")]); } catch (e) { error = e; }
    expect((error as SwarmgateError).diagnostics[0]).toMatchObject({ code: "IMPORT_SYNTAX", line: 3, column: 3 });
  });
});

describe("swarmgate explain --from", () => {
  const classic = files("classic-qbittorrent").flatMap((f) => ["--from", f]);

  test("the classic script's stateless DNS rule lets any UDP port in from source port 53; the rule is named by file, line, table, chain and number", async () => {
    const r = await cli(["explain", ...classic, "udp 203.0.113.5:53 -> 192.168.0.50:33333 in eth0"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ACCEPT: udp 203\.0\.113\.5:53 -> 192\.168\.0\.50:33333 in eth0 new \(to this machine\)/);
    expect(r.stdout).toContain("classic-qbittorrent/iptables-save.txt:15 filter/INPUT rule 9:\n  -A INPUT -i eth0 -p udp -m udp --sport 53 -j ACCEPT");
    const j = JSON.parse((await cli(["explain", ...classic, "--json", "tcp 192.168.0.50:40000 -> 203.0.113.9:443 out eth0"])).stdout);
    expect(j).toMatchObject({ verdict: "drop", path: "output", decidedBy: { kind: "policy", action: "policy drop", chain: "ip filter/OUTPUT" } });
  });

  test("no IPv6 table: said in so many words", async () => {
    const r = await cli(["explain", ...classic, "tcp [2001:db8::5]:40000 -> [2001:db8::50]:22 in eth0"]);
    expect(r.stdout).toMatch(/^ACCEPT: /);
    expect(r.stdout).toContain("no table in the files given holds IPv6 rules, so nothing filters this packet");
  });

  test("a verdict that depends on a rate per source says so, with each way and the rule", async () => {
    const f2b = files("fail2ban-like").flatMap((f) => ["--from", f]);
    const j = JSON.parse((await cli(["explain", ...f2b, "--json", "tcp 198.51.100.9:40000 -> 192.168.0.70:22 in eth0"])).stdout);
    expect(j.verdict).toBe("depends");
    expect(j.dependsOn).toContainEqual(expect.objectContaining({ condition: expect.stringMatching(/^-m recent --update/), place: expect.stringMatching(/iptables-save\.txt:33 filter\/INPUT rule \d+$/) }));
    expect(new Set(j.branches.map((b: { verdict: string }) => b.verdict))).toEqual(new Set(["accept", "drop"]));
    // A banned address is refused before any rate is asked.
    const banned = JSON.parse((await cli(["explain", ...f2b, "--json", "tcp 203.0.113.5:40000 -> 192.168.0.70:22 in eth0"])).stdout);
    expect(banned).toMatchObject({ verdict: "reject", decidedBy: { writer: "fail2ban", text: "-A f2b-sshd -m set --match-set f2b-sshd src -j REJECT --reject-with icmp-port-unreachable" } });
  });

  test("on nft -j output: the cross-table defect — an accept in one table does not end the walk", async () => {
    const hand = everything("nft-handwritten").flatMap((f) => ["--from", f]);
    const j = JSON.parse((await cli(["explain", ...hand, "--json", "tcp [2001:db8::5]:40000 -> [2001:db8::3]:6881 in eth0"])).stdout);
    expect(j.verdict).toBe("drop");
    expect(j.trace.map((s: { chain: string; action: string }) => `${s.chain} ${s.action}`)).toEqual(["inet filter/input accept", "ip6 filter/input policy drop"]);
    expect(j.trace[0].place).toMatch(/nft\.json: table inet filter chain input rule 4 \(handle \d+\)$/);
  });

  test("bad files: a clear error, exit 2, no stack trace", async () => {
    const dir = tmp();
    writeFileSync(join(dir, "bad.txt"), "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp -m tcp --dport 70000 -j ACCEPT\nCOMMIT\n");
    const r = await cli(["explain", "--from", join(dir, "bad.txt"), "tcp 1.2.3.4:1 -> 5.6.7.8:22 in eth0"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("bad.txt:3:32: error[IMPORT_SYNTAX]");
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect((await cli(["explain", "--from", dir, "tcp 1.2.3.4:1 -> 5.6.7.8:22 in eth0"])).stderr).toContain("error[IMPORT_UNREADABLE]");
    expect((await cli(["explain", "--from", "/dev/zero", "tcp 1.2.3.4:1 -> 5.6.7.8:22 in eth0"])).stderr).toContain("must be a regular file");
    // nft's text of a table iptables-nft wrote holds "xt match …" stand-ins that nft itself cannot load.
    expect((await cli(["explain", "--from", join(FIXTURES, "fail2ban-like", "nft.txt"), "tcp 1.2.3.4:1 -> 5.6.7.8:22 in eth0"])).stderr).toMatch(/error\[IMPORT_SYNTAX\]: nft could not load it/);
    expect((await cli(["explain", "examples/standalone.yaml", "--from", files("classic-qbittorrent")[0]!, "tcp 1.2.3.4:1 -> 5.6.7.8:22 in eth0"])).code).toBe(2);
  });
});

describe("swarmgate explain --live", () => {
  const PACKETS = [
    "tcp 203.0.113.5:40000 -> 192.168.0.70:22 in eth0", "tcp 198.51.100.9:40000 -> 192.168.0.70:22 in eth0",
    "udp 198.51.100.9:40000 -> 192.168.0.70:6881 in eth0", "tcp 198.51.100.9:40000 -> 192.168.0.70:6881 in eth0",
    "tcp 198.51.100.9:40000 -> 192.168.0.70:9999 in eth0", "tcp 192.168.0.70:40000 -> 198.51.100.9:443 out eth0",
    "udp [2001:db8::9]:40000 -> [2001:db8::70]:6881 in eth0", "tcp 198.51.100.9:40000 -> 192.168.0.70:80 in eth0 established",
  ];

  test("reads the kernel (nft, iptables-nft, iptables-legacy, ipset) without changing it, and agrees with --from on the same ruleset", async () => {
    const dir = join(FIXTURES, "fail2ban-like");
    await withNetns(1, async (ns) => {
      await ns.execChecked("ipset", ["restore"], { input: readFileSync(join(dir, "ipset.txt"), "utf8") });
      await ns.execChecked("iptables-restore", [], { input: readFileSync(join(dir, "iptables-save.txt"), "utf8") });
      // A legacy table beside iptables-nft's: another set of hooks, read as "filter (legacy)".
      await ns.execChecked("iptables-legacy", ["-A", "INPUT", "-p", "tcp", "--dport", "9999", "-j", "DROP"]);
      const before = [(await ns.execChecked("nft", ["list", "ruleset"])).stdout, (await ns.execChecked("iptables-legacy-save", [])).stdout.replace(/^#.*$/gm, "")];
      for (const packet of PACKETS) {
        const live = JSON.parse((await swarmgate(ns, ["explain", "--live", "--json", packet])).stdout);
        const from = JSON.parse((await cli(["explain", ...files("fail2ban-like").flatMap((f) => ["--from", f]), "--json", packet])).stdout);
        if (packet.includes(":9999 ")) {
          expect(live).toMatchObject({ verdict: "drop", decidedBy: { place: "iptables-legacy-save:6 filter (legacy)/INPUT rule 1" } });
          expect(from.verdict).toBe("depends");
        } else {
          expect([packet, live.verdict]).toEqual([packet, from.verdict]);
        }
      }
      expect([(await ns.execChecked("nft", ["list", "ruleset"])).stdout, (await ns.execChecked("iptables-legacy-save", [])).stdout.replace(/^#.*$/gm, "")]).toEqual(before);
    });
  });

  test("needs root, and says so", async () => {
    const r = await cli(["explain", "--live", "tcp 1.2.3.4:1 -> 5.6.7.8:22 in eth0"], { via: { command: "setpriv", args: ["--reuid=65534", "--regid=65534", "--clear-groups"] } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error[NEEDS_ROOT]");
  });
});

describe("simulator = kernel on rulesets other tools wrote", () => {
  const COUNT = Number(process.env.DIFFERENTIAL_PACKETS ?? 2000);
  // The address each fixture's host had on eth0 when it was captured (test/fixtures/foreign/capture.mjs).
  test.each([
    ["classic-qbittorrent", "192.168.0.50/24", false],
    ["gateway-wrong-direction", "198.51.100.2/24", false],
    ["docker-like", "192.168.0.60/24", false],
    ["fail2ban-like", "192.168.0.70/24", true],
    ["ufw", "192.168.1.80/24", true],
    ["nft-handwritten", "198.51.100.3/24", false],
    // firewalld's IPv6 reverse-path filter (fib saddr . mark . iif oif missing) is not modelled: IPv6 verdicts depend on it.
    ["firewalld", "192.168.1.90/24", true],
    ["swarmgate-standalone-iptables", "192.168.153.51/24", false],
    ["swarmgate-standalone-nft", "192.168.153.51/24", false],
    ["swarmgate-gateway-nft", "198.51.100.2/24", false],
  ] as const)("%s", async (name, v4, dependsAllowed) => {
    const r = await foreignDifferential({ files: everything(name), host: { iface: "eth0", v4, v6: "2001:db8::99/64" }, count: COUNT, seed: 20261202, dependsAllowed });
    expect(r.sent).toBeGreaterThan(COUNT * 0.95);
    if (!dependsAllowed) expect(r.depends).toBe(0);
    expect(r.disagreements.map((d) => `${describeProbe(d.probe)}: simulator ${d.simulated.verdict}, kernel ${d.kernel}`)).toEqual([]);
  });

  test("a reader that misreads one rule is caught", async () => {
    // The kernel gets the classic script; the simulator reads its stateless DNS rule as source port 54.
    const dir = tmp();
    const [original] = files("classic-qbittorrent");
    writeFileSync(join(dir, "wrong.txt"), readFileSync(original!, "utf8").replace("-p udp -m udp --sport 53 -j ACCEPT", "-p udp -m udp --sport 54 -j ACCEPT"));
    const r = await foreignDifferential({ files: [original!], simulateWith: [join(dir, "wrong.txt")], host: { iface: "eth0", v4: "192.168.0.50/24", v6: "2001:db8::99/64" }, count: COUNT, seed: 20261202 });
    expect(r.disagreements.length).toBeGreaterThan(0);
    expect(r.disagreements.every((d) => d.probe.proto === "udp" && (d.probe.sport === 53 || d.probe.sport === 54))).toBe(true);
  });
});

describe("nft list text", () => {
  test("is loaded into a throwaway namespace and read back: the same verdicts as its nft -j output; an error is nft's own, at its place", async () => {
    const dir = join(FIXTURES, "nft-handwritten");
    for (const packet of ["tcp [2001:db8::5]:40000 -> [2001:db8::3]:6881 in eth0", "udp 198.51.100.9:40000 -> 198.51.100.3:6881 in eth0", "tcp 198.51.100.9:40000 -> 198.51.100.3:8080 in eth0", "tcp 192.168.1.2:40000 -> 198.51.100.3:22 in eth0"]) {
      const text = JSON.parse((await cli(["explain", "--from", join(dir, "ruleset.nft"), "--json", packet])).stdout);
      const json = JSON.parse((await cli(["explain", "--from", join(dir, "nft.json"), "--json", packet])).stdout);
      expect([packet, text.verdict, text.decidedBy?.rule]).toEqual([packet, json.verdict, json.decidedBy?.rule]);
    }
    const bad = join(tmp(), "bad.nft");
    writeFileSync(bad, "table inet x {\n chain c {\n  tcp dport 22 acept\n }\n}\n");
    const r = await cli(["explain", "--from", bad, "tcp 1.2.3.4:5 -> 6.7.8.9:22 in eth0"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad\.nft: error\[IMPORT_SYNTAX\]: nft could not load it: .*3:\d+-\d+: Error: syntax error/);
  });
});
