// A real swarm through an applied policy: qbittorrent-nox or
// transmission-daemon seeds behind swarmgate (on the host itself, or on a LAN
// host behind a swarmgate gateway), opentracker and aria2c are on the
// internet side, and aria2c cannot accept connections — so the file arrives
// only if the policy lets the leecher reach the seeder's peer port.
import { describe, expect, test } from "vitest";
import { onPath } from "../src/system/run.js";
import {
  Sandbox, applyPolicy, gatewayPolicy, hostPolicy, listening, startSwarm, until, type SeederKind, type TransferResult,
} from "./helpers/swarm.js";

// scripts/test-programs.sh installs them; namespaces need root.
const PROGRAMS = ["opentracker", "mktorrent", "qbittorrent-nox", "transmission-daemon", "aria2c", "nft", "curl"];
const runnable = process.getuid?.() === 0 && PROGRAMS.every(onPath);

type Backend = "nft" | "iptables";
interface Case { where: "host" | "gateway"; seeder: SeederKind; peerPort: number; policyPorts: number | string; timeoutMs: number; backend?: Backend }

/** Builds the sandbox, applies the policy, seeds, and runs one download; the sandbox's report explains a failure. */
async function swarm(c: Case, check: (r: TransferResult, seeder: string, report: string) => void): Promise<void> {
  const sb = new Sandbox();
  try {
    const policy = c.where === "host" ? hostPolicy({ ports: c.policyPorts, client: c.seeder }) : gatewayPolicy({ ports: c.policyPorts });
    const s = await startSwarm(sb, { where: c.where, seeder: c.seeder, peerPort: c.peerPort, policy, backend: c.backend });
    const r = await s.transfer(c.timeoutMs);
    if (process.env.SWARM_VERBOSE) console.log(`${c.where} ${c.seeder} ${c.backend ?? "nft"} policy ${c.policyPorts}: ok=${r.ok} bytes=${r.bytes} ${r.seconds} s${sb.report()}`);
    // The seeder is there and listening: what decides is the firewall.
    expect(await listening(s.net.seederNs, s.seeder.peerPort), `${c.seeder} does not listen on ${s.seeder.peerPort}${sb.report()}`).toBe(true);
    check(r, `${s.net.seederPublicAddress}:${s.seeder.peerPort}`, sb.report());
  } catch (e) {
    // Assertions carry the report already; a setup step that failed gets it here.
    if ((e as Error).message.includes(`${sb.tag} phases`)) throw e;
    throw new Error(`${(e as Error).message}\n${sb.report()}`, { cause: e });
  } finally {
    await sb.close();
  }
}

const arrives = (r: TransferResult, seeder: string, report: string) => {
  expect(r.ok, `the file did not arrive intact (aria2c exit ${r.code}, ${r.bytes} bytes in ${r.seconds} s)${report}`).toBe(true);
  expect(r.handshakes, report).toEqual([seeder]);
};
const blocked = (r: TransferResult, seeder: string, report: string) => {
  // The tracker did hand out the seeder and aria2c tried it: what stopped the transfer is the firewall.
  expect(r.dialed, `aria2c never tried the seeder${report}`).toContain(seeder);
  expect(r.handshakes, `a peer connection got through a closed port${report}`).toEqual([]);
  expect(r.ok, `the file arrived through a closed port${report}`).toBe(false);
  expect(r.bytes, `bytes arrived through a closed port${report}`).toBe(0);
};

/** Runs side by side and fails with every failure (each with its sandbox's report), not only the first. */
async function sideBySide(runs: Record<string, () => Promise<void>>): Promise<void> {
  const names = Object.keys(runs);
  const results = await Promise.allSettled(Object.values(runs).map((f) => f()));
  const failed = results.flatMap((r, i) => r.status === "rejected" ? [`${names[i]}: ${(r.reason as Error).message}`] : []);
  if (failed.length) throw new Error(failed.join("\n\n"));
}

/** The same swarm twice: with the seeder's port open (the file arrives) and closed (nothing arrives). */
const openAndClosed = (open: Case, closed: Case) =>
  sideBySide({ "port open": () => swarm(open, arrives), "port closed": () => swarm(closed, blocked) });

/** The seeder moves its port through its own interface; the old policy keeps it out, the policy re-applied with the new port lets it in. */
async function moved(kind: SeederKind): Promise<void> {
  const sb = new Sandbox();
  try {
    const s = await startSwarm(sb, { where: "host", seeder: kind, peerPort: 6881, policy: hostPolicy({ ports: 6881, client: kind }) });
    await s.seeder.setPeerPort(6890);
    await sb.step(`${kind} listens on 6890`, () => until("the new port", 5_000, async () => (await listening(s.net.seederNs, 6890)) || undefined));
    await s.seeder.reannounce(s.torrent);
    blocked(await s.transfer(10_000), `${s.net.seederPublicAddress}:6890`, sb.report());
    await sb.step("swarmgate apply, new port", () => applyPolicy(sb, s.net.firewallNs, hostPolicy({ ports: 6890, client: kind })));
    arrives(await s.transfer(30_000), `${s.net.seederPublicAddress}:6890`, sb.report());
  } catch (e) {
    if ((e as Error).message.includes(`${sb.tag} phases`)) throw e;
    throw new Error(`${(e as Error).message}\n${sb.report()}`, { cause: e });
  } finally {
    await sb.close();
  }
}

describe.skipIf(!runnable).concurrent("a real swarm through an applied policy", () => {
  test.each(["qbittorrent", "transmission"] as const)("host running %s: the file arrives through the peer port the policy opens, and nothing when it opens another", async (seeder) => {
    const peerPort = seeder === "qbittorrent" ? 6881 : 51413;
    await openAndClosed({ where: "host", seeder, peerPort, policyPorts: peerPort, timeoutMs: 30_000 },
      { where: "host", seeder, peerPort, policyPorts: peerPort + 1, timeoutMs: 15_000 });
  }, 80_000);

  test.each(["nft", "iptables"] as const)("gateway (%s): the file arrives from the LAN seeder when the forwarded range has its port, and nothing when it does not", async (backend) => {
    await openAndClosed({ where: "gateway", seeder: "qbittorrent", peerPort: 6885, policyPorts: "6881-6889", timeoutMs: 30_000, backend },
      { where: "gateway", seeder: "qbittorrent", peerPort: 6885, policyPorts: "6890-6899", timeoutMs: 15_000, backend });
  }, 80_000);

  test("a seeder that moves its port (qBittorrent's Web API, Transmission's RPC) is kept out by the old policy and let in by the policy re-applied with the new port", async () => {
    await sideBySide({ qbittorrent: () => moved("qbittorrent"), transmission: () => moved("transmission") });
  }, 80_000);
});
