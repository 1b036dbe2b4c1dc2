// The one way swarmgate runs other programs: an argument array (never a shell
// string) and input on stdin.
import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import { userError } from "../errors.js";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string;
  /** Milliseconds before the process is killed. */
  timeout?: number;
  /** Extra environment variables for the child. */
  env?: Record<string, string>;
}

export function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ["pipe", "pipe", "pipe"],
      timeout: options.timeout ?? 60_000,
      env: options.env ? { ...process.env, ...options.env } : process.env,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => { stdout += d; });
    child.stderr.setEncoding("utf8").on("data", (d: string) => { stderr += d; });
    child.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT") reject(userError("TOOL_MISSING", `${command} is not installed (on Debian: apt-get install ${packageOf(command)})`));
      else reject(userError("TOOL_FAILED", `${command} could not be started (${e.code ?? e.message})`));
    });
    child.on("close", (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
    child.stdin.on("error", () => { /* the tool may exit before reading all input; its status tells */ });
    child.stdin.end(options.input ?? "");
  });
}

/** Like run, but a non-zero exit is an error carrying the tool's own message. */
export async function runChecked(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const result = await run(command, args, options);
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(" ")} exited with ${result.code}: ${result.stderr.trim() || result.stdout.trim()}`);
  }
  return result;
}

/** The Debian package that has a tool. */
export function packageOf(command: string): string {
  if (command === "nft") return "nftables";
  if (command.includes("tables")) return "iptables";
  if (command === "ip") return "iproute2";
  return command;
}

/** Whether a process exists (EPERM: it does, owned by someone else). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Whether a program is on the PATH, where spawn will look for it. */
export function onPath(command: string): boolean {
  const dirs = (process.env.PATH ?? "").split(delimiter).filter(Boolean);
  return dirs.some((dir) => {
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Runs one planned step of a backend (its ruleset on stdin). */
export function runStep(step: { command: string; args: readonly string[]; input?: string }): Promise<RunResult> {
  return run(step.command, step.args, step.input === undefined ? {} : { input: step.input });
}
