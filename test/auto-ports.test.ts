// `ports: auto` without a kernel: which client an entry means, which port it
// uses (listening socket before config), the errors that name the candidates,
// the policy syntax, and the in-place plans a moved port turns into.
import { describe, expect, test } from "vitest";
import { compile } from "../src/compile/index.js";
import { nftKernel } from "../src/backend/nft-kernel.js";
import { iptablesKernel, planFamily } from "../src/backend/iptables-kernel.js";
import { chooseClient, type Detection, type FoundClient } from "../src/policy/auto-ports.js";
import { parsePolicy } from "../src/policy/load.js";
import { SwarmgateError } from "../src/errors.js";

const qb = (over: Partial<FoundClient> = {}): FoundClient => ({ kind: "qbittorrent", config: "/home/alice/.config/qBittorrent/qBittorrent.conf", user: "alice", ports: { from: 6881, to: 6881 }, random: false, listening: [], ...over });
const tr = (over: Partial<FoundClient> = {}): FoundClient => ({ kind: "transmission", config: "/var/lib/transmission-daemon/.config/transmission-daemon/settings.json", user: "debian-transmission", ports: { from: 51413, to: 51413 }, random: false, listening: [], ...over });
const found = (...clients: FoundClient[]): Detection => ({ clients, problems: [] });
const sock = (protocol: "tcp" | "udp", port: number) => ({ protocol, address: "0.0.0.0", port, pid: 42 });

describe("choosing the client and its port", () => {
  test("the only client: its configured port, or the one it listens on when they differ (with a warning)", () => {
    expect(chooseClient({}, found(qb()))).toMatchObject({ ok: true, value: { ports: { first: 6881, last: 6881 }, warnings: [] } });
    const r = chooseClient({}, found(qb({ listening: [sock("tcp", 8080), sock("tcp", 50000), sock("udp", 50000)] })));
    expect(r).toMatchObject({ ok: true, value: { ports: { first: 50000, last: 50000 }, source: expect.stringContaining("listening now") } });
    expect(r.ok && r.value.warnings[0]).toContain("listens on 50000 but its config says 6881");
  });

  test("a Web UI socket is not the peer port: the configured port among the sockets wins", () => {
    const r = chooseClient({}, found(qb({ listening: [sock("tcp", 8080), sock("tcp", 6881), sock("udp", 6881)] })));
    expect(r).toMatchObject({ ok: true, value: { ports: { first: 6881, last: 6881 }, warnings: [] } });
  });

  test("while the peer port moves, the Web UI (or RPC, or Deluge's daemon) left as the only TCP listener is not taken for it", () => {
    // qBittorrent through its Web API: UDP is on the new port, TCP's old listener closed, the new one not open yet.
    const moving = chooseClient({}, found(qb({ webui: { port: 18080 }, listening: [sock("tcp", 18080), sock("udp", 6890)] })));
    expect(moving).toMatchObject({ ok: true, value: { ports: { first: 6881, last: 6881 }, source: expect.stringContaining("its config") } });
    const deluge = chooseClient({}, found({ kind: "deluge", config: "/var/lib/deluged/config/core.conf", user: "debian-deluged", ports: { from: 6881, to: 6891 }, random: false,
      webui: { port: 8112 }, daemon: { port: 58846 }, listening: [sock("tcp", 58846)] }));
    expect(deluge).toMatchObject({ ok: true, value: { ports: { first: 6881, last: 6891 } } });
    // A lone TCP listener that is no control port is still the peer port.
    expect(chooseClient({}, found(qb({ webui: { port: 18080 }, listening: [sock("tcp", 18080), sock("tcp", 50001)] })))).toMatchObject({ ok: true, value: { ports: { first: 50001 } } });
  });

  test("several clients: the one running here, else an error naming each with the spec that picks it", () => {
    expect(chooseClient({}, found(qb(), tr({ listening: [sock("tcp", 51413), sock("udp", 51413)] })))).toMatchObject({ ok: true, value: { kind: "transmission" } });
    const r = chooseClient({}, found(qb(), tr()));
    expect(r.ok).toBe(false);
    expect(!r.ok && r.message).toMatch(/matches 2 clients: .*ports: \{from: qbittorrent\}.*ports: \{from: transmission\}/);
    const two = chooseClient({ from: "qbittorrent" }, found(qb(), qb({ user: "bob", config: "/home/bob/.config/qBittorrent/qBittorrent.conf" })));
    expect(!two.ok && two.message).toContain("{from: qbittorrent, user: bob}");
    expect(chooseClient({ from: "qbittorrent", user: "bob" }, found(qb(), qb({ user: "bob", ports: { from: 7000, to: 7000 } })))).toMatchObject({ ok: true, value: { ports: { first: 7000 } } });
  });

  test("a random port nobody listens on cannot be told: the error names the setting that fixes it", () => {
    const r = chooseClient({}, found(qb({ random: true, ports: { from: 1024, to: 65535 } })));
    expect(!r.ok && r.message).toMatch(/random port.*Session\\Port/);
    const running = chooseClient({}, found(qb({ random: true, listening: [sock("tcp", 41234), sock("udp", 41234)] })));
    expect(running).toMatchObject({ ok: true, value: { ports: { first: 41234 } } });
    expect(running.ok && running.value.warnings.join()).toContain("swarmgate follow");
  });

  test("nothing found: the error says so and what could not be read", () => {
    const r = chooseClient({ from: "deluge" }, { clients: [qb()], problems: [{ message: "/home/x/.config/deluge/core.conf:3:1: not JSON" }] });
    expect(!r.ok && r.message).toMatch(/found no Deluge.*found: qBittorrent.*could not read: .*core.conf:3:1/);
  });
});

describe("the policy syntax", () => {
  const policy = (ports: string) => `version: 1\nhost:\n  interface: eth0\n  addresses: [192.0.2.51/24]\nclients:\n  - {name: qb, ports: ${ports}}\noutbound:\n  peers: true\n  dns: [192.0.2.1]\n`;
  const resolver = (spec: object) => chooseClient(spec, found(qb(), tr()));

  test("auto and {from, user, config} resolve through the resolver; errors carry file:line:column", () => {
    expect(parsePolicy(policy("{from: transmission}"), "p.yaml", { autoPorts: resolver }).clients[0]).toMatchObject({ ports: { first: 51413 }, auto: { kind: "transmission" } });
    const failures = [
      [policy("auto"), /p\.yaml:6:.*POLICY_AUTO_PORTS.*matches 2 clients/s],
      [policy("{from: utorrent}"), /POLICY_BAD_VALUE.*must be one of qbittorrent, transmission/],
      [policy("{from: qbittorrent, port: 1}"), /POLICY_UNKNOWN_KEY/],
    ] as const;
    for (const [text, pattern] of failures) {
      expect(() => parsePolicy(text, "p.yaml", { autoPorts: resolver })).toThrowError(pattern);
    }
    expect(() => parsePolicy(policy("auto"), "p.yaml")).toThrowError(/POLICY_AUTO_PORTS.*write the port itself/);
  });

  test("two clients resolved to one port are a conflict like any other", () => {
    const text = `${policy("{from: qbittorrent}")}`.replace("clients:\n", "clients:\n  - {name: other, ports: 6881}\n");
    expect(() => parsePolicy(text, "p.yaml", { autoPorts: resolver })).toThrow(SwarmgateError);
  });
});

describe("a moved port is planned in place", () => {
  const load = (port: number) => parsePolicy(`version: 1\nhost:\n  interface: eth0\n  addresses: [192.0.2.51/24]\nclients:\n  - {name: qb, ports: auto}\noutbound:\n  peers: true\n  dns: [192.0.2.1]\nadmin:\n  - {name: ssh, port: 22, from: [192.0.2.7]}\n`, "p.yaml", { autoPorts: (s) => chooseClient(s, found(qb({ ports: { from: port, to: port } }))) });
  const nftOf = (port: number) => nftKernel.ownedOf(compile(load(port)));
  const iptOf = (port: number) => iptablesKernel.ownedOf(compile(load(port)));

  test("nft: one transaction that flushes and refills the set, nothing else", () => {
    const steps = nftKernel.plan(nftOf(7000), { nft: "table inet swarmgate { kernel spelling }" }, nftOf(6881));
    expect(steps).toEqual([{ unit: "nft", step: { command: "nft", args: ["-f", "-"], input: "flush set inet swarmgate client_0_ports\nadd element inet swarmgate client_0_ports { 7000 }\n" } }]);
    expect(nftKernel.onlyPortSetsDiffer(nftOf(7000), nftOf(6881))).toBe(true);
    // Without knowing what was written, the table is replaced whole.
    expect(nftKernel.plan(nftOf(7000), { nft: "table inet swarmgate { kernel spelling }" })[0]!.step.input).toContain("delete table inet swarmgate");
  });

  test("iptables: the client's rules replaced where they stand", () => {
    const input = planFamily(iptOf(7000).v4!, iptOf(6881).v4!, iptOf(6881).v4!);
    const lines = input.trim().split("\n");
    expect(lines[0]).toBe("*filter");
    expect(lines.slice(1, -1)).toHaveLength(2);
    for (const l of lines.slice(1, -1)) expect(l).toMatch(/^-R SWARMGATE-INPUT \d+ .*--dport 7000 .*set client_0_ports/);
    expect(iptablesKernel.onlyPortSetsDiffer(iptOf(7000), iptOf(6881))).toBe(true);
  });

  test("anything beyond the ports is not a port move", () => {
    const other = parsePolicy(`version: 1\nhost:\n  interface: eth0\n  addresses: [192.0.2.51/24]\nclients:\n  - {name: qb, ports: auto}\noutbound:\n  peers: true\n  dns: [192.0.2.1]\nadmin:\n  - {name: ssh, port: 22, from: [192.0.2.8]}\n`, "p.yaml", { autoPorts: (s) => chooseClient(s, found(qb())) });
    expect(nftKernel.onlyPortSetsDiffer(nftKernel.ownedOf(compile(other)), nftOf(6881))).toBe(false);
    expect(iptablesKernel.onlyPortSetsDiffer(iptablesKernel.ownedOf(compile(other)), iptOf(6881))).toBe(false);
  });
});

describe("a written port beside the client's own", () => {
  const entries = parsePolicy("version: 1\nhost:\n  interface: eth0\n  addresses: [192.0.2.51/24]\nclients:\n  - {name: qb, ports: 6881}\noutbound:\n  peers: true\n  dns: [192.0.2.1]\n", "p.yaml").clients;

  test("a running client on another port, or a random one, is warned about with what to write; a match is not", async () => {
    const { clientPortWarnings } = await import("../src/analyze/client-ports.js");
    expect(clientPortWarnings(entries, [qb()])).toEqual([]);
    const moved = clientPortWarnings(entries, [qb({ listening: [sock("tcp", 50000), sock("udp", 50000), sock("tcp", 8080)] })]);
    expect(moved).toEqual([expect.stringMatching(/qBittorrent .*listens on port 50000, which no client entry opens \(clients\[0\] qb opens 6881\): write ports: 50000, or ports: auto/)]);
    expect(clientPortWarnings(entries, [qb({ random: true })])[0]).toMatch(/random port each time it starts.*Session\\Port/);
    // A config nobody runs does not count while another client runs.
    expect(clientPortWarnings(entries, [tr(), qb({ listening: [sock("tcp", 6881), sock("udp", 6881)] })])).toEqual([]);
  });

  test("check says it, with --clients-root", async () => {
    const { mkdtempSync, mkdirSync, writeFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { tmpdir } = await import("node:os");
    const { cli } = await import("./helpers/cli.js");
    const root = mkdtempSync(join(tmpdir(), "sg-check-root-"));
    mkdirSync(join(root, "etc"));
    writeFileSync(join(root, "etc", "passwd"), "alice:x:1000:1000::/home/alice:/bin/sh\n");
    mkdirSync(join(root, "home", "alice", ".config", "qBittorrent"), { recursive: true });
    writeFileSync(join(root, "home", "alice", ".config", "qBittorrent", "qBittorrent.conf"), "[BitTorrent]\nSession\\Port=7000\n");
    writeFileSync(join(root, "p.yaml"), "version: 1\nhost:\n  interface: eth0\n  addresses: [192.0.2.51/24]\nclients:\n  - {name: qb, ports: 6881}\noutbound:\n  peers: true\n  dns: [192.0.2.1]\n");
    const r = await cli(["check", join(root, "p.yaml"), "--clients-root", root, "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).clientWarnings).toEqual([expect.stringMatching(/no client entry \(clients\[0\] qb opens 6881\) opens the port of a client configured here: qBittorrent .* port 7000; write ports: 7000/)]);
  });
});
