// Nothing of a VPN lab outlives it: not when a test times out (vitest ends the
// worker while the test still runs, and its `finally` may never come), not when
// the worker is killed (the next lab removes what a dead run left).
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { afterAll } from "vitest";
import { processAlive, run } from "../../src/system/run.js";
import { wgName, wgSocket } from "./vpn-wireguard.js";

export interface Destroyable {
  destroy(): Promise<void>;
  /** Kills its processes and removes its namespaces without waiting (for an exiting process). */
  destroySync(): void;
}

export const live = new Set<Destroyable>();

// Registered on the test file that imports the lab (helpers are imported while it is collected).
afterAll(async () => {
  for (const lab of [...live]) await lab.destroy();
});
process.once("exit", () => {
  for (const lab of live) lab.destroySync();
});

/** SIGKILLs, by pid, every process still running in one of our namespaces. */
export async function killInside(ns: string): Promise<void> {
  const pids = (await run("ip", ["netns", "pids", ns])).stdout.split("\n").filter(Boolean).map(Number);
  for (const pid of pids) {
    try { process.kill(pid, "SIGKILL"); } catch { /* gone already */ }
  }
}

export function deleteNamespacesSync(names: string[]): void {
  for (const n of names) spawnSync("ip", ["netns", "del", n]);
}

/** Removes the sgv-<pid>-<n>-* namespaces of dead processes, what still runs in them, and their wireguard-go sockets. */
export async function removeStaleLabs(): Promise<void> {
  const list = await run("ip", ["netns", "list"]);
  for (const line of list.stdout.split("\n")) {
    const name = line.split(" ")[0] ?? "";
    const m = /^sgv-(\d+)-(\d+)-\w+$/.exec(name);
    if (!m || processAlive(Number(m[1]))) continue;
    await killInside(name); // its wireguard-go would outlive the namespace
    await run("ip", ["netns", "del", name]);
    for (const side of ["h", "s"] as const) rmSync(wgSocket(wgName(Number(m[1]), Number(m[2]), side)), { force: true });
  }
}
