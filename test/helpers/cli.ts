// Running the built swarmgate command as a separate process, the way a user does.
import { execFile } from "node:child_process";
import { join, resolve } from "node:path";
import { promisify } from "node:util";

export const ROOT = resolve(import.meta.dirname, "..", "..");
export const MAIN = join(ROOT, "dist", "cli", "main.js");

export interface CliOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** Run through another program (setpriv …) that then starts node. */
  via?: { command: string; args: string[] };
}

export async function cli(args: string[], o: CliOptions = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const command = o.via?.command ?? process.execPath;
  const prefix = o.via ? [...o.via.args, process.execPath] : [];
  try {
    const { stdout, stderr } = await promisify(execFile)(command, [...prefix, MAIN, ...args], { cwd: o.cwd ?? ROOT, env: { ...process.env, ...o.env } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}
