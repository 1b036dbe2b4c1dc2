// Issue 11, item 3 "Port forwarding", through the real tunnel: the VPN lab
// (test/helpers/vpn-lab.ts: host ── lan ── internet ── vpn, WireGuard by
// wireguard-go, the VPN server masquerading and running Debian's miniupnpd as
// the NAT-PMP gateway on 10.66.0.1) with the real swarm programs
// (test/helpers/swarm*.ts: opentracker and an aria2c leecher that refuses
// inbound, on the internet side).
//
// The client — qbittorrent-nox, and transmission-daemon in a second lab side
// by side — runs as the confined user (nobody: the lab routes that uid into
// the tunnel, the policy's kill switch confines it), so its peer port, its
// announces and its uploads all go through the tunnel; swarmgate (apply,
// portmap, status) runs as root in the host namespace. qBittorrent is bound to
// the tunnel interface, as VPN users set it (unbound, its announces from eth0's
// addresses are dropped by the kill switch and the tracker shows "updating"
// until they time out). The test asks the client to re-announce after each
// port change (its API), because portmap does not.
//
//   1. natpmpc (Debian's reference client) takes public port P on the gateway
//      for another local port first, so the gateway cannot grant the client's
//      own port P and portmap must move the client: portmap is offered P+n for
//      P, asks again for P+n → P+n, opens P+n in the firewall set in place and
//      tells the client through its API. Checked: the client's preferences and
//      its listening socket, the nft set, the port closed from the LAN, and a
//      real download by aria2c through the VPN server's public address and the
//      mapped port, file intact by checksum.
//   2. miniupnpd restarts (a new epoch), then its replies are dropped for
//      longer than the mapping's lifetime (an nft rule in the VPN server):
//      portmap's lines show the restart and the retries, the mapping is back at
//      the gateway afterwards, and a second download (from another address)
//      succeeds.
//   3. The gateway loses its state (restarted without its lease file, its
//      rules gone) and another user of the host takes the client's external
//      port first: portmap gets a new port, moves the firewall and the client
//      there, the old port closes, and a third download uses the new port.
//   4. natpmpc and portmap agree on the external address; both get exactly the
//      lifetime they ask for; lifetime 0 deletes.
// Each step's time and portmap's "firewall … ms, client set in … ms" figures
// are printed at the end (the budget: in force within 1 s of the reply).
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, describe, expect, test } from "vitest";
import { Netns } from "../src/system/netns.js";
import { onPath, run } from "../src/system/run.js";
import { MAIN, swarmgate } from "./helpers/cli-in-netns.js";
import { Sandbox, announceUrl, leech, listening, makeTorrent, startTracker, until, type Proc, type QbittorrentSeeder, type SeederKind, type TransmissionSeeder, type TransferResult } from "./helpers/swarm.js";
import { LAB, createVpnLab, type VpnLab } from "./helpers/vpn-lab.js";
import { stopChild } from "./helpers/vpn-miniupnpd.js";
import { startQbittorrentAs, startTransmissionAs } from "./helpers/vpn-portmap-seeders.js";

const PROGRAMS = ["wireguard-go", "wg", "setpriv", "miniupnpd", "natpmpc", "opentracker", "mktorrent", "qbittorrent-nox", "transmission-daemon", "aria2c", "nft", "curl", "ss"];
const runnable = process.getuid?.() === 0 && PROGRAMS.every(onPath);

/** The client's port in its config; natpmpc takes it at the gateway first (for another local port). */
const PEER_PORT = 6881;
/** A second peer on the internet side, from an address the client has not met. */
const SECOND_PEER = "100.128.77.3";
const THIRD_PEER = "100.128.77.4";
/** portmap's requested lifetime: renewals every 4 s, and a drop window longer than a whole lifetime fits the file's budget. */
const LIFETIME = 8;
/**
 * The budget: a port change in force (firewall and client) within 1 s of the mapping reply.
 * Printed for every change; asserted with twice the budget (as test/swarm-follow.test.ts does), because
 * on this shared 2-core machine, with both cases side by side, the firewall step alone took 962 ms once.
 */
const BUDGET_MS = 1000;
const LIMIT_MS = 2 * BUDGET_MS;

const labs: VpnLab[] = [];
afterAll(async () => { for (const l of labs.splice(0)) await l.destroy(); });

function policyText(wg: string, kind: SeederKind): string {
  return `version: 1
host:
  interface: eth0
  addresses: [${LAB.host4}, ${LAB.host6}]
vpn:
  interface: ${wg}
  endpoints: ["${LAB.vpn4}:${LAB.port}/udp"]
  users: [nobody]
  scope: users
  ipv6: false
  lan: [${LAB.lan4}]
  port_forwarding: {protocol: natpmp, gateway: ${LAB.tunServer}}
clients:
  - name: ${kind === "qbittorrent" ? "qb" : "tr"}
    ports: auto
outbound:
  peers: true
  trackers: [6969]
  dns: [${LAB.inet4}]
`;
}

/** Every line a program prints, with when it arrived, to wait on (from an index on). */
function lines(p: Proc) {
  const all: { text: string; at: number }[] = [];
  createInterface({ input: p.child.stdout! }).on("line", (text) => all.push({ text, at: performance.now() }));
  return {
    all,
    next: (re: RegExp, timeoutMs: number, after = 0) => until(`${p.name} to print ${re}`, timeoutMs, async () => {
      const hit = all.slice(after).find((l) => re.test(l.text));
      if (!hit && !p.running) throw new Error(`${p.name} exited`);
      return hit;
    }, 20),
  };
}

/** The elements of the client's port set in the kernel (nft backend). */
async function kernelPorts(ns: Netns): Promise<string> {
  const out = (await ns.execChecked("nft", ["list", "set", "inet", "swarmgate", "client_0_ports"])).stdout;
  return /elements = \{([^}]*)\}/.exec(out)?.[1]?.split(",").map((e) => e.trim()).sort().join(",") ?? "";
}

/** Which programs listen on TCP `port` in `ns`, and on which addresses (ss -p). */
async function listeners(ns: Netns, port: number): Promise<string> {
  return (await run("ss", ["-N", ns.name, "-Hltnp", `sport = :${port}`])).stdout;
}

/** The NAT-PMP mappings miniupnpd has put into the VPN server's nft (its DNAT rules): "tcp 6882 → 10.66.0.2:6882", … */
async function gatewayRules(vpn: Netns): Promise<string[]> {
  const out = (await vpn.exec("nft", ["list", "chain", "inet", "filter", "prerouting_miniupnpd"])).stdout;
  // miniupnpd's nft build matches the protocol by the IPv4 header's byte (`@nh,72,8 0x6`: tcp, 0x11: udp)
  return [...out.matchAll(/@nh,72,8 (0x6|0x11) th dport (\d+) dnat ip to ([\d.]+:\d+)/g)]
    .map((m) => `${m[1] === "0x6" ? "tcp" : "udp"} ${m[2]} → ${m[3]}`).sort();
}

const fileArrived = (r: TransferResult, peer: string, report: () => string) => {
  expect(r.ok, `the file did not arrive intact (aria2c exit ${r.code}, ${r.bytes} bytes in ${r.seconds} s)${report()}`).toBe(true);
  expect(r.handshakes, report()).toContain(peer);
};

async function portmapThroughTunnel(kind: SeederKind): Promise<string> {
  const t0 = performance.now();
  const timings: string[] = [];
  let mark = t0;
  const step = (what: string) => { const now = performance.now(); timings.push(`${what}: ${((now - mark) / 1000).toFixed(2)} s`); mark = now; };
  const lab = await createVpnLab({ routing: "users" });
  labs.push(lab);
  const sb = new Sandbox();
  let portmapLog: { text: string; at: number }[] = [];
  const report = () => `\n--- timings\n${timings.join("\n")}\n--- portmap\n${portmapLog.map((l) => l.text).join("\n")}${sb.report()}`;
  try {
    const host = new Netns(lab.ns.host);
    const inet = new Netns(lab.ns.inet);
    const vpn = new Netns(lab.ns.vpn);
    const [torrent] = await Promise.all([
      makeTorrent(sb.dir("data"), announceUrl(LAB.inet4), 2_000_000),
      lab.startMiniupnpd(),
      lab.ip(lab.ns.inet, "addr", "add", `${SECOND_PEER}/24`, "dev", "sgvvpn"),
      lab.ip(lab.ns.inet, "addr", "add", `${THIRD_PEER}/24`, "dev", "sgvvpn"),
    ]);
    await startTracker(sb, inet, LAB.inet4, [torrent.infoHash]);
    step("lab, miniupnpd, torrent, tracker");

    // ports: auto reads the running client: it starts first, as the confined user, on its configured port.
    const seeder: QbittorrentSeeder | TransmissionSeeder = kind === "qbittorrent"
      ? await startQbittorrentAs(sb, host, lab.confined, { peerPort: PEER_PORT, bind: lab.wgHost })
      : await startTransmissionAs(sb, host, lab.confined, { peerPort: PEER_PORT });
    await until(`${kind} to listen on ${PEER_PORT}`, 10_000, async () => ((await listening(host, PEER_PORT)) ? true : undefined));
    const dir = sb.dir("policy");
    const root = join(dir, "root");
    mkdirSync(join(root, "etc"), { recursive: true });
    writeFileSync(join(root, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\n");
    const policy = join(dir, "policy.yaml");
    writeFileSync(policy, policyText(lab.wgHost, kind));
    const common = ["--clients-root", root, "--state-dir", join(dir, "state")];
    const applied = await swarmgate(host, ["apply", policy, "-b", "nft", ...common]);
    sb.note("swarmgate apply", applied.stdout + applied.stderr);
    expect(applied.code, report()).toBe(0);
    expect(await kernelPorts(host), report()).toBe(String(PEER_PORT));
    await seeder.add(torrent);
    await seeder.waitSeeding(torrent); // its announce went through the tunnel: the kill switch lets it
    step(`${kind} as nobody, apply (ports: auto → ${PEER_PORT}), seeding`);

    // The reference client first: public PEER_PORT for another local port of the host (TCP and UDP).
    const ref = await lab.natpmpc(["-a", String(PEER_PORT), "16881", "tcp", "60"]);
    const refUdp = await lab.natpmpc(["-a", String(PEER_PORT), "16881", "udp", "60"]);
    sb.note("natpmpc -a 6881 16881 tcp|udp 60", ref.stdout + refUdp.stdout);
    expect(ref.stdout, report()).toMatch(/Public IP address : 100\.128\.77\.1\b/);
    expect(ref.stdout, report()).toMatch(new RegExp(`Mapped public port ${PEER_PORT} protocol TCP to local port 16881 liftime 60`));
    expect(refUdp.stdout, report()).toMatch(new RegExp(`Mapped public port ${PEER_PORT} protocol UDP to local port 16881 liftime 60`));
    step("natpmpc takes the client's port at the gateway");

    // portmap: the gateway offers another port; the client is moved there, the firewall follows.
    const pm = sb.start(host, "swarmgate portmap", process.execPath, [MAIN, "portmap", policy, "--lifetime", String(LIFETIME), ...common]);
    const log = lines(pm);
    portmapLog = log.all;
    const firstLine = await log.next(/→ client \w+ listens on \d+; firewall/, 20_000);
    const m = /mapped by NAT-PMP at 10\.66\.0\.1 \(([\d.]+):(\d+)\) → client \w+ listens on (\d+); firewall (changed in place|already open) in (\d+) ms, client set in (\d+) ms/.exec(firstLine.text);
    expect(m, `${firstLine.text}${report()}`).not.toBeNull();
    const [, extAddr, extPortText, listenText, how, fwMs, clientMs] = m!;
    const ext = Number(extPortText);
    expect(extAddr, report()).toBe(LAB.vpn4);
    expect(ext, report()).not.toBe(PEER_PORT);
    expect(Number(listenText)).toBe(ext);
    expect(how, report()).toBe("changed in place");
    const fmt = (l: { text: string; at: number }) => `  +${((l.at - firstLine.at) / 1000).toFixed(2)} s ${l.text}`;
    const inForceMs = Number(fwMs) + Number(clientMs);
    timings.push(`portmap's first mapping: firewall ${fwMs} ms, client set ${clientMs} ms: ${inForceMs} ms, ${inForceMs < BUDGET_MS ? "within" : "OVER"} the issue's ${BUDGET_MS} ms`);
    expect(inForceMs, report()).toBeLessThan(LIMIT_MS);
    step(`portmap maps ${PEER_PORT} → ${ext}`);

    // Put in force: the client's own settings, its socket, the kernel's set, the gateway's rules, status.
    if (seeder.kind === "qbittorrent") {
      const prefs = await seeder.api.json<{ listen_port: number }>("app/preferences");
      expect(prefs.listen_port, report()).toBe(ext);
    } else {
      const s = await seeder.api.call<{ "peer-port": number }>("session-get", { fields: ["peer-port"] });
      expect(s["peer-port"], report()).toBe(ext);
    }
    const sock = await until(`${kind} to listen on ${ext}`, 3000, async () => { const l = await listeners(host, ext); return l.trim() ? l : undefined; }, 20);
    expect(sock, report()).toMatch(kind === "qbittorrent" ? /qbittorrent-nox/ : /transmission-da/);
    expect(await kernelPorts(host), report()).toBe(String(ext));
    await until(`${kind} to leave port ${PEER_PORT}`, 5000, async () => ((await listening(host, PEER_PORT)) ? undefined : true));
    expect(await gatewayRules(vpn), report()).toEqual(expect.arrayContaining([`tcp ${ext} → ${LAB.tunHost}:${ext}`, `udp ${ext} → ${LAB.tunHost}:${ext}`]));
    const st = await swarmgate(host, ["status", policy, "--json", ...common]);
    const status = JSON.parse(st.stdout) as { portmap?: Record<string, unknown> };
    expect(status.portmap, report()).toMatchObject({ protocol: "natpmp", externalAddress: LAB.vpn4, externalPort: ext, lifetime: LIFETIME });
    // The port is open through the tunnel only: from the LAN (the router) it stays closed.
    const fromLan = await lab.ask("root", [{ name: "lan", proto: "tcp", addr: LAB.host4, port: ext }], 1000, lab.ns.lan);
    expect(fromLan.lan, report()).toBe(false);
    step("checks: API, socket, nft set, gateway rules, status, closed from the LAN");

    // A real download through the VPN server's public address and the mapped port.
    await seeder.reannounce(torrent); // neither client announces a changed port by itself (field notes)
    const first = await leech(sb, inet, torrent, { timeoutMs: 30_000 });
    fileArrived(first, `${LAB.vpn4}:${ext}`, report);
    step(`download 1 (${first.seconds.toFixed(1)} s)`);

    // The gateway restarts: a new epoch, noticed at the next renewal.
    const beforeRestart = log.all.length;
    const mini = (lab as unknown as { miniupnpd?: { child: Parameters<typeof stopChild>[0] } }).miniupnpd;
    await stopChild(mini?.child, "SIGTERM");
    await lab.startMiniupnpd();
    const restarted = await log.next(/the gateway restarted/, LIFETIME * 1000 + 5000, beforeRestart);
    step("miniupnpd restarted; portmap noticed");

    // Its replies dropped for longer than a lifetime, in the VPN server.
    const dropped = log.all.length;
    await vpn.execChecked("nft", ["-f", "-"], { input: `table inet sgq_drop {\n  chain out { type filter hook output priority -10; policy accept; udp sport 5351 counter drop; }\n}\n` });
    const dropFor = LIFETIME * 1000 + 3000;
    await new Promise((r) => setTimeout(r, dropFor));
    const counters = (await vpn.exec("nft", ["list", "table", "inet", "sgq_drop"])).stdout;
    const droppedReplies = Number(/packets (\d+)/.exec(counters)?.[1] ?? 0);
    const rulesDuringDrop = await gatewayRules(vpn);
    await vpn.execChecked("nft", ["delete", "table", "inet", "sgq_drop"]);
    const lifted = performance.now();
    const retries = log.all.slice(dropped).filter((l) => /no mapping yet/.test(l.text));
    expect(droppedReplies, report()).toBeGreaterThan(0);
    // No line is required here: NAT-PMP resends one request for ~2 min (250 ms doubling, 9 sends, RFC 6886)
    // before portmap counts a failed round and prints "no mapping yet"; a renewal that succeeds prints nothing.
    // Back at the gateway: the mapping renewed or made again (with the same port, or a new one put in force).
    const back = await until("the mapping back at the gateway", 20_000, async () => {
      const rules = await gatewayRules(vpn);
      const ports = rules.filter((r) => r.startsWith("tcp ") && r.endsWith(`${LAB.tunHost}:${r.split(" ")[1]}`)).map((r) => Number(r.split(" ")[1]));
      const inForce = await kernelPorts(host);
      const p = ports.find((x) => String(x) === inForce);
      return p !== undefined ? p : undefined;
    }, 100);
    const backMs = performance.now() - lifted;
    timings.push(`drop: ${droppedReplies} replies dropped in ${dropFor} ms, ${retries.length} retry lines, the gateway's rules during the drop: ${rulesDuringDrop.join("; ") || "none"}; mapping back ${backMs.toFixed(0)} ms after the drop ended (port ${back})`);
    step("replies dropped, then the mapping back");

    if (back !== ext) {
      // A new port: it must have been put in force like the first.
      const moved = log.all.slice(dropped).find((l) => new RegExp(`listens on ${back}; firewall`).test(l.text));
      expect(moved, report()).toBeDefined();
    }
    await until(`${kind} to listen on ${back}`, 3000, async () => ((await listening(host, back)) ? true : undefined));
    await seeder.reannounce(torrent);
    const second = await leech(sb, inet, torrent, { timeoutMs: 30_000, args: [`--interface=${SECOND_PEER}`] });
    fileArrived(second, `${LAB.vpn4}:${back}`, report);
    step(`download 2 from ${SECOND_PEER} (${second.seconds.toFixed(1)} s)`);

    // The gateway loses its state (a VPN server rebooted: no lease file, no rules) and someone else gets the
    // client's external port first (natpmpc as another user of the host, while root's requests are held back
    // in the host): portmap must move everything to the new port, and the old one must close.
    const lost = log.all.length;
    const mini2 = (lab as unknown as { miniupnpd?: { child: Parameters<typeof stopChild>[0] } }).miniupnpd;
    await stopChild(mini2?.child, "SIGTERM");
    rmSync(join(lab.dir, "leases"), { force: true });
    for (const chain of ["miniupnpd", "prerouting_miniupnpd", "postrouting_miniupnpd"]) await vpn.execChecked("nft", ["flush", "chain", "inet", "filter", chain]);
    await host.execChecked("nft", ["-f", "-"], { input: `table inet sgq_hold {\n  chain out { type filter hook output priority -10; policy accept; meta skuid 0 udp dport 5351 drop; }\n}\n` });
    await lab.startMiniupnpd();
    for (const proto of ["tcp", "udp"]) {
      const taken = await lab.execAs(lab.confined, "natpmpc", ["-g", LAB.tunServer, "-a", String(back), "16882", proto, "60"]);
      expect(taken.stdout, report()).toMatch(new RegExp(`Mapped public port ${back} protocol ${proto.toUpperCase()} to local port 16882`));
    }
    await host.execChecked("nft", ["delete", "table", "inet", "sgq_hold"]);
    const held = performance.now();
    const movedLine = await log.next(/→ client \w+ listens on \d+; firewall/, 30_000, lost);
    const mm = /\(([\d.]+):(\d+)\) → client \w+ listens on (\d+); firewall (changed in place|already open) in (\d+) ms, client set in (\d+) ms/.exec(movedLine.text);
    expect(mm, report()).not.toBeNull();
    const third = Number(mm![2]);
    expect(third, report()).not.toBe(back);
    expect(mm![4], report()).toBe("changed in place");
    const movedMs = Number(mm![5]) + Number(mm![6]);
    timings.push(`gateway state lost, port ${back} taken: portmap's line ${((movedLine.at - held) / 1000).toFixed(2)} s after root's requests flowed again; ${back} → ${third}: firewall ${mm![5]} ms, client set ${mm![6]} ms: ${movedMs} ms, ${movedMs < BUDGET_MS ? "within" : "OVER"} the issue's ${BUDGET_MS} ms`);
    expect(movedMs, report()).toBeLessThan(LIMIT_MS);
    expect(await kernelPorts(host), report()).toBe(String(third));
    await until(`${kind} to listen on ${third} and leave ${back}`, 5000, async () => ((await listening(host, third)) && !(await listening(host, back)) ? true : undefined));
    const fromInet = await lab.ask("root", [{ name: "old", proto: "tcp", addr: LAB.tunHost, port: back }], 1000, lab.ns.vpn);
    expect(fromInet.old, `the old port ${back} still answers through the tunnel${report()}`).toBe(false);
    await seeder.reannounce(torrent);
    const thirdDl = await leech(sb, inet, torrent, { timeoutMs: 30_000, args: [`--interface=${THIRD_PEER}`] });
    fileArrived(thirdDl, `${LAB.vpn4}:${third}`, report);
    step(`gateway state lost: moved to ${third}; download 3 from ${THIRD_PEER} (${thirdDl.seconds.toFixed(1)} s)`);

    // natpmpc against the same server: the same external address; the lifetime granted is the one asked; 0 deletes.
    const info = await lab.natpmpc([]);
    expect(info.stdout, report()).toMatch(new RegExp(`Public IP address : ${LAB.vpn4.replace(/\./g, "\\.")}\\b`));
    const epoch = Number(/epoch = (\d+)/.exec(info.stdout)?.[1]);
    const st2 = JSON.parse((await swarmgate(host, ["status", policy, "--json", ...common])).stdout) as { portmap?: { externalAddress: string; lifetime: number; renewsInSeconds: number; ageSeconds: number } };
    expect(st2.portmap, report()).toMatchObject({ externalAddress: LAB.vpn4, externalPort: third, lifetime: LIFETIME });
    const statusLine = (await swarmgate(host, ["status", policy, ...common])).stdout.split("\n").find((l) => l.startsWith("port mapping:")) ?? "(no port mapping line)";
    const short = await lab.natpmpc(["-a", "20001", "20001", "tcp", "7"]);
    expect(short.stdout, report()).toMatch(/Mapped public port 20001 protocol TCP to local port 20001 liftime 7\b/);
    expect(await gatewayRules(vpn), report()).toContain(`tcp 20001 → ${LAB.tunHost}:20001`);
    const gone = await lab.natpmpc(["-a", "20001", "20001", "tcp", "0"]);
    sb.note("natpmpc -a 20001 20001 tcp 0", gone.stdout);
    expect(await gatewayRules(vpn), report()).not.toContain(`tcp 20001 → ${LAB.tunHost}:20001`);
    timings.push(`natpmpc: public IP ${LAB.vpn4} (status: ${st2.portmap?.externalAddress}), epoch ${epoch} s after the last start; asked 7 s, granted 7 s (portmap: asked ${LIFETIME}, status says ${st2.portmap?.lifetime}); 0 deleted its mapping; status --json: age ${st2.portmap?.ageSeconds} s, renewsInSeconds ${st2.portmap?.renewsInSeconds} (portmap renews every ${LIFETIME / 2} s); status: ${statusLine}`);
    step("natpmpc comparison");

    // Stopping portmap deletes its mappings at the gateway.
    await pm.stop(5000);
    expect(log.all.at(-1)?.text, report()).toMatch(/stopped; the mapping is deleted/);
    expect((await gatewayRules(vpn)).filter((r) => r.includes(`${LAB.tunHost}:${third}`)), report()).toEqual([]);
    step("portmap stopped, mappings deleted");
    void restarted;
    return [`${kind}: ${((performance.now() - t0) / 1000).toFixed(1)} s in all`, ...timings, "portmap's lines:", ...log.all.map(fmt), ...(process.env.SGQ_TRACE ? [sb.report()] : [])].join("\n");
  } catch (e) {
    const msg = (e as Error).message;
    throw new Error(msg.includes("--- timings") ? msg : `${msg}${report()}`, { cause: e });
  } finally {
    await sb.close();
    await lab.destroy();
    labs.splice(labs.indexOf(lab), 1);
  }
}

// Side by side: a lab and a swarm each, ~40 s alone on the 2-core machine.
describe.skipIf(!runnable).concurrent("portmap through a real WireGuard tunnel, the real miniupnpd and a real swarm", () => {
  test.each(["qbittorrent", "transmission"] as const)("%s as the confined user: mapped, moved, opened, a download; after a gateway restart and dropped replies a second one; after the gateway lost its state a new port and a third", async (kind) => {
    console.log(await portmapThroughTunnel(kind));
  }, 110_000);
});
