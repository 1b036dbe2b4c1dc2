// A real swarm through an applied policy: qbittorrent-nox or
// transmission-daemon seeds behind swarmgate (on the host itself, or on a LAN
// host behind a swarmgate gateway), opentracker and aria2c are on the
// internet side, and aria2c cannot accept connections — so the file arrives
// only if the policy lets the leecher reach the seeder's peer port.
import { describe, expect, test } from "vitest";
import { onPath } from "../src/system/run.js";
import { Sandbox, gatewayPolicy, hostPolicy, listening, startSwarm, type SeederKind, type TransferResult } from "./helpers/swarm.js";

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

/** The same swarm twice side by side: with the seeder's port open (the file arrives) and closed (nothing arrives). */
async function openAndClosed(open: Case, closed: Case): Promise<void> {
  const results = await Promise.allSettled([swarm(open, arrives), swarm(closed, blocked)]);
  const failed = results.flatMap((r, i) => r.status === "rejected" ? [`${i === 0 ? "port open" : "port closed"}: ${(r.reason as Error).message}`] : []);
  if (failed.length) throw new Error(failed.join("\n\n"));
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
});
