// Running the real swarmgate CLI inside a trial's namespace, with the fake
// tools first in its PATH, and a handle to kill it; plus the small pieces the
// matrix shares: a bound on parallel trials and a seeded PRNG.
import { spawn, type ChildProcess } from "node:child_process";
import type { Netns } from "../../src/system/netns.js";
import { MAIN, ROOT } from "./cli.js";

export interface CliResult { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }
export interface Running { child: ChildProcess; done: Promise<CliResult>; stderr(): string }

/** Starts `swarmgate ARGS` in the namespace (ip netns exec keeps the environment, the fake PATH included). */
export function start(ns: Netns, args: readonly string[], env: Record<string, string>): Running {
  const child = spawn("ip", ["netns", "exec", ns.name, process.execPath, MAIN, ...args], { cwd: ROOT, env: { ...process.env, SSH_CONNECTION: "", ...env } });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => { stdout += d; });
  child.stderr!.on("data", (d) => { stderr += d; });
  const done = new Promise<CliResult>((resolve) => child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, done, stderr: () => stderr };
}

export const swarmgateIn = (ns: Netns, args: readonly string[], env: Record<string, string>) => start(ns, args, env).done;

/** What a command printed, for a failure report. */
export function printed(label: string, args: readonly string[], r: CliResult): string {
  return `$ swarmgate ${args.join(" ")}   [${label}]\nexit ${r.code}${r.signal ? ` (${r.signal})` : ""}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** At most `limit` trials at once across every test of the file: a 2-core machine. */
export function pool(limit: number): <T>(job: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(job: () => Promise<T>) => {
    // A finishing job hands its slot straight to the next waiter, so the limit is never overshot.
    if (active < limit) active++;
    else await new Promise<void>((r) => waiting.push(r));
    try { return await job(); } finally {
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  };
}

/** The one bound for every trial of the file (SG_FAULT_PARALLEL overrides it). */
export const slot = pool(Number(process.env.SG_FAULT_PARALLEL) || 6);

/** The project's seedable generator (the differential test's), so a failing trial replays with its seed. */
export { prng } from "../../src/lab/differential.js";
