// The mapper against the real Debian miniupnpd 2.3.1 (miniupnpd-nftables) in
// throwaway namespaces (test/helpers/portmap-lab.mjs), compared with Debian's
// natpmpc as the reference client. Runs the built mapper (dist/): build first.

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWorld, CLIENT, EXTERNAL, INSIDE, run, type Driver, type World } from "./helpers/portmap-lab.mjs";

const usable =
  process.getuid?.() === 0 && existsSync("/usr/sbin/miniupnpd") && existsSync("/usr/bin/natpmpc") && existsSync("dist/portmap/index.js");

const isEvent = (type: string) => (m: { event?: { type: string } }) => m.event?.type === type;

describe.skipIf(!usable)("portmap against the real miniupnpd", () => {
  let world: World;
  const drivers: Driver[] = [];
  const mapper = (options: Record<string, unknown>) => {
    const d = world.startMapper({ gateway: INSIDE, internalPort: 6881, lifetime: 4, ...options });
    drivers.push(d);
    return d;
  };

  beforeAll(async () => {
    world = await createWorld(String(process.pid));
    // PCP clamps lifetimes to min_lifetime (default 120 s, at most 120): allow short ones.
    await world.startMiniupnpd(["min_lifetime=2"]);
  });

  afterAll(async () => {
    for (const d of drivers) d.kill();
    await world?.destroy();
  });

  it("NAT-PMP: maps UDP and TCP on one port, as natpmpc sees the same server, and the kernel forwards it", async () => {
    const ref = await world.natpmpc(["-a", "7001", "7001", "udp", "4"]);
    expect(ref.code).toBe(0);
    const d = mapper({ protocol: "natpmp" });
    const changed = await d.waitFor(isEvent("changed"));
    const m = changed.event.mapping;
    expect(m).toMatchObject({ protocol: "natpmp", externalPort: 6881, tcpExternalPort: 6881, internalPort: 6881 });
    // same external address; the lifetime granted is the one asked for, as natpmpc shows
    expect(m.externalAddress).toBe(ref.externalAddress);
    expect(m.externalAddress).toBe(EXTERNAL);
    expect(m.lifetime).toBe(4);
    expect(ref.mapping).toEqual({ externalPort: 7001, protocol: "UDP", internalPort: 7001, lifetime: 4 });
    expect(m.renewAt - m.obtainedAt).toBe(2000);

    const dnats = await world.dnats();
    expect(dnats).toEqual(
      expect.arrayContaining([
        { protocol: "udp", port: 6881, to: CLIENT, toPort: 6881 },
        { protocol: "tcp", port: 6881, to: CLIENT, toPort: 6881 },
        { protocol: "udp", port: 7001, to: CLIENT, toPort: 7001 },
      ]),
    );
    expect(await reachable(world, 6881)).toEqual({ udp: true, tcp: true });

    // renewed at half the lifetime, without a new mapping being reported
    const from = d.events.length;
    await d.waitFor(isEvent("renewed"), 4000, from);
    await d.waitFor(isEvent("renewed"), 4000, d.events.length);
    expect(d.events.slice(from).filter(isEvent("changed"))).toHaveLength(0);
    const state = await d.state();
    expect(state).toMatchObject({ phase: "mapped", protocol: "natpmp", failures: 0 });
    expect(state.nextAttemptAt - state.mapping.obtainedAt).toBe(2000);

    await d.stop();
    const left = (await world.dnats()).filter((x) => x.port === 6881);
    expect(left).toEqual([]); // deleted with lifetime 0 on stop
  });

  it("re-maps after miniupnpd restarts (its epoch starts again)", async () => {
    const d = mapper({ protocol: "natpmp" });
    await d.waitFor(isEvent("changed"));
    // let the epoch grow so that the reset is unmistakable, even on a loaded machine
    while (((await d.state()).gatewayEpoch ?? 0) < 6) await sleep(500);
    const before = (await d.state()).gatewayEpoch!;
    const from = d.events.length;
    await world.stopMiniupnpd();
    await world.startMiniupnpd(["min_lifetime=2"]);
    const restart = await d.waitFor(isEvent("gateway-restart"), 10_000, from);
    expect(restart.event.reason).toMatch(/^epoch \d+ s, expected about \d+ s$/);
    await d.waitFor(isEvent("renewed"), 6000, d.events.indexOf(restart));
    expect((await d.state()).gatewayEpoch).toBeLessThan(before);
    const ref = await world.natpmpc([]);
    expect(ref.epoch).toBeLessThan(before);
    expect((await world.dnats()).filter((x) => x.port === 6881)).toHaveLength(2);
    await d.stop();
  });

  it("keeps retrying while the gateway's replies are dropped and recovers when they flow again", async () => {
    // 4 sends a round (250 ms doubling: 3.75 s), then the back-off between rounds
    const d = mapper({ protocol: "natpmp", natpmpTries: 4 });
    await d.waitFor(isEvent("changed"));
    const from = d.events.length;
    await world.setDrop(true);
    await d.waitFor(isEvent("retry"), 8000, from);
    await sleep(3000);
    const [requests, dropped] = await world.dropCounters();
    await world.setDrop(false);
    expect(dropped).toBeGreaterThanOrEqual(6);
    expect(requests! - dropped!).toBeLessThanOrEqual(1); // every request answered (and dropped), one maybe in flight
    expect((await d.state()).phase).toBe("retrying");
    const back = await d.waitFor((m) => m.event?.type === "renewed" || m.event?.type === "changed", 10_000, from);
    expect(back.event.type).toBe("renewed"); // same port: nothing to tell the client
    expect(await d.state()).toMatchObject({ phase: "mapped", failures: 0 });
    await d.stop();
  });

  it("PCP: miniupnpd answers PCP version 2; the mapper uses it by default, and sees its restarts", async () => {
    const d = mapper({ protocol: "auto" });
    const m = (await d.waitFor(isEvent("changed"))).event.mapping;
    expect(m).toMatchObject({ protocol: "pcp", externalAddress: EXTERNAL, externalPort: 6881, tcpExternalPort: 6881, lifetime: 4 });
    expect(d.events.filter(isEvent("fallback"))).toEqual([]);
    expect((await world.dnats()).filter((x) => x.port === 6881)).toHaveLength(2);
    expect((await world.natpmpc([])).externalAddress).toBe(m.externalAddress);
    while (((await d.state()).gatewayEpoch ?? 0) < 3) await sleep(500);
    const from = d.events.length;
    await world.stopMiniupnpd();
    await world.startMiniupnpd(["min_lifetime=2"]);
    await d.waitFor(isEvent("gateway-restart"), 10_000, from);
    await d.stop();
    // The deletions reach the gateway even when its answers come after stop() stopped waiting (a loaded machine).
    let left = (await world.dnats()).filter((x) => x.port === 6881);
    for (let i = 0; i < 20 && left.length; i++) { await sleep(250); left = (await world.dnats()).filter((x) => x.port === 6881); }
    expect(left).toEqual([]);
  });

  it("PCP lifetimes are clamped to min_lifetime (default 120 s); NAT-PMP's are granted as asked", async () => {
    await world.stopMiniupnpd();
    await world.startMiniupnpd(); // no min_lifetime line
    const pcp = mapper({ protocol: "pcp", lifetime: 60 });
    expect((await pcp.waitFor(isEvent("changed"))).event.mapping).toMatchObject({ protocol: "pcp", lifetime: 120 });
    await pcp.stop();
    const natpmp = mapper({ protocol: "natpmp", lifetime: 60 });
    expect((await natpmp.waitFor(isEvent("changed"))).event.mapping).toMatchObject({ protocol: "natpmp", lifetime: 60 });
    await natpmp.stop();
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

const LISTEN = `
import socket, sys
port = int(sys.argv[1])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", port)); u.settimeout(4)
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); t.bind(("0.0.0.0", port)); t.listen(1); t.settimeout(4)
print("ready", flush=True)
got = {}
try:
    got["udp"] = u.recvfrom(100)[0] == b"hello"
except Exception: got["udp"] = False
try:
    c, _ = t.accept(); got["tcp"] = c.recv(100) == b"hello"
except Exception: got["tcp"] = False
print("udp" if got["udp"] else "-", "tcp" if got["tcp"] else "-", flush=True)
`;

const SEND = `
import socket, sys
addr, port = sys.argv[1], int(sys.argv[2])
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"hello", (addr, port))
try:
    s = socket.create_connection((addr, port), timeout=3); s.sendall(b"hello"); s.close()
except Exception: pass
`;

/** A datagram and a TCP connection from the peer to the gateway's external address reach the client. */
async function reachable(world: World, port: number): Promise<{ udp: boolean; tcp: boolean }> {
  const listener = spawn("ip", ["netns", "exec", world.ns.cl, "python3", "-c", LISTEN, String(port)]);
  let out = "";
  const ready = new Promise<void>((resolve) =>
    listener.stdout.on("data", (chunk) => {
      out += chunk;
      if (out.includes("ready")) resolve();
    }),
  );
  const done = new Promise<void>((resolve) => listener.once("exit", () => resolve()));
  try {
    await ready;
    await run("ip", ["netns", "exec", world.ns.out, "python3", "-c", SEND, EXTERNAL, String(port)]);
    await done;
  } finally {
    if (listener.exitCode === null) listener.kill("SIGKILL");
  }
  const last = out.trim().split("\n").at(-1) ?? "";
  return { udp: last.includes("udp"), tcp: last.includes("tcp") };
}
