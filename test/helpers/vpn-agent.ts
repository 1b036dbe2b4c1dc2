// A long-running prober (vpn-probe.mjs agent) inside a namespace as one user:
// started once, asked many times, so a probe costs no node start (~0.3 s, and
// far more on a loaded 2-core machine).
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";

const PROBE = join(import.meta.dirname, "vpn-probe.mjs");

export interface User { uid: number; gid: number }
export interface Target { name: string; proto: "tcp" | "udp"; addr: string; port: number }

export class ProbeAgent {
  private next = 0;
  private readonly waiting = new Map<number, (r: Record<string, boolean>) => void>();
  private stderr = "";

  private constructor(readonly child: ChildProcess) {
    child.stderr!.on("data", (d) => { this.stderr += d; });
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const msg = JSON.parse(line) as { id?: number; results?: Record<string, boolean> };
      if (msg.id === undefined) return;
      this.waiting.get(msg.id)?.(msg.results!);
      this.waiting.delete(msg.id);
    });
  }

  /** Starts the agent in `ns` as `who` (setpriv, no supplementary groups) or as root. */
  static async start(ns: string, who: User | "root"): Promise<ProbeAgent> {
    const as = who === "root" ? [] : ["setpriv", `--reuid=${who.uid}`, `--regid=${who.gid}`, "--clear-groups"];
    const child = spawn("ip", ["netns", "exec", ns, ...as, process.execPath, PROBE, "agent"], { stdio: ["pipe", "pipe", "pipe"] });
    const agent = new ProbeAgent(child);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`probe agent did not start: ${agent.stderr}`)), 10_000);
      child.stdout!.once("data", () => { clearTimeout(t); resolve(); });
      child.once("exit", () => { clearTimeout(t); reject(new Error(`probe agent exited: ${agent.stderr}`)); });
    });
    return agent;
  }

  /** Tries every target at once; which answered within ms. */
  ask(ms: number, targets: readonly Target[]): Promise<Record<string, boolean>> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`probe agent gave no answer: ${this.stderr}`)), ms + 10_000);
      this.waiting.set(id, (r) => { clearTimeout(t); resolve(r); });
      this.child.stdin!.write(`${JSON.stringify({ id, ms, targets })}\n`);
    });
  }
}
