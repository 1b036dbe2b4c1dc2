// Talking to the probe agents: one process per namespace, commands as JSON
// lines, answers matched to commands by id.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";

export interface ProbeAnswer {
  result: "open" | "blocked" | "refused" | "error";
  by?: string;
  seenFrom?: string;
  detail?: string;
}

/** The compiled agent: beside this module in dist/, or in dist/ when running from sources. */
function agentPath(): string {
  const here = fileURLToPath(new URL("./agent.js", import.meta.url));
  if (existsSync(here)) return here;
  const built = fileURLToPath(new URL("../../dist/lab/agent.js", import.meta.url));
  if (existsSync(built)) return built;
  throw new Error("the probe agent is not built; run npm run build");
}

export class Agent {
  private next = 1;
  private readonly waiting = new Map<number, (r: Record<string, unknown>) => void>();
  private readonly child: ChildProcess;
  readonly ready: Promise<void>;

  /** With `as`, the agent runs as that user (setpriv), so that its sockets are that user's: the kill switch matches the socket's owner. */
  constructor(readonly netns: string, readonly node: string, readonly as?: { uid: number; gid: number }) {
    const user = as ? ["setpriv", `--reuid=${as.uid}`, `--regid=${as.gid}`, "--clear-groups"] : [];
    this.child = spawn("ip", ["netns", "exec", netns, ...user, process.execPath, agentPath(), node], { stdio: ["pipe", "pipe", "inherit"] });
    let started: () => void;
    this.ready = new Promise((resolve, reject) => {
      started = resolve;
      this.child.on("error", reject);
      this.child.on("exit", (code) => reject(new Error(`probe agent in ${node} exited (${code})`)));
    });
    createInterface({ input: this.child.stdout! }).on("line", (line) => {
      const msg = JSON.parse(line) as Record<string, unknown>;
      if (msg.ready) { started(); return; }
      const resolve = this.waiting.get(msg.id as number);
      this.waiting.delete(msg.id as number);
      resolve?.(msg);
    });
  }

  call(command: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = this.next++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.child.stdin!.write(`${JSON.stringify({ ...command, id })}\n`);
    });
  }

  /** TCP listens on every address; UDP binds each of the node's addresses. */
  async listen(proto: "tcp" | "udp", port: number, addresses: string[]): Promise<void> {
    const r = await this.call({ op: "listen", proto, port, addresses });
    if (!r.ok) throw new Error(`cannot listen on ${proto} ${port} in ${this.node}: ${String(r.detail)}`);
  }

  probe(op: "tcp" | "udp" | "ping", host: string, port: number | undefined, timeout: number, sport: number | undefined, bind: string): Promise<ProbeAnswer> {
    return this.call({ op, host, port, timeout, sport, bind }) as Promise<unknown> as Promise<ProbeAnswer>;
  }

  /** One packet, fire and forget; false when it could not be sent. */
  async fire(proto: "tcp" | "udp" | "icmp", host: string, port: number | undefined, sport: number | undefined, bind: string): Promise<boolean> {
    const r = await this.call({ op: "fire", proto, host, port, sport, bind });
    return r.sent === true;
  }

  stop(): void {
    this.child.stdin!.end();
    this.child.kill();
  }
}
