// Running the swarmgate command inside a test namespace, as apply tests must:
// never against the machine's own firewall.
import { spawn } from "node:child_process";
import type { Netns } from "../../src/system/netns.js";
import { MAIN, ROOT } from "./cli.js";

export { MAIN, ROOT };

export interface CliResult { code: number | null; stdout: string; stderr: string }

export function swarmgate(ns: Netns, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolvePromise) => {
    const child = spawn("ip", ["netns", "exec", ns.name, process.execPath, MAIN, ...args], { cwd: ROOT, env: { ...process.env, SSH_CONNECTION: "", ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => { stdout += d; });
    child.stderr.on("data", (d) => { stderr += d; });
    child.on("close", (code) => resolvePromise({ code, stdout, stderr }));
  });
}
