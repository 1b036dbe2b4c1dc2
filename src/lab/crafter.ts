// Talking to the packet crafter (craft.py): one Debian python3 per network
// namespace, batches of packets as JSON lines, an answer per batch saying
// which were sent.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** One packet as craft.py builds it (see its header). */
export interface CraftSpec {
  family: 4 | 6;
  src: string;
  dst: string;
  proto: "tcp" | "udp" | "icmp" | "icmpv6";
  sport?: number;
  dport?: number;
  /** scapy's letters: "S", "SA", "PA", "" (none), "FPU" … */
  flags?: string;
  seq?: number;
  ack?: number;
  payload?: number;
  /** IPv4 identification or IPv6 flow label: how the receiving side tells packets apart. */
  tag: number;
  icmp?: { type: number; code: number; quote: CraftSpec };
  echo?: { type: number; id: number; seq: number };
  /** ICMPv6 neighbour solicitation (135) of the destination or advertisement (136) of the source. */
  nd?: { type: 135 | 136 };
}

/** Debian's python, which has scapy; the first python3 on PATH may be another. */
const PYTHON = "/usr/bin/python3";

/** craft.py beside this module (running from sources), or in src/ when running from dist/. */
function craftPath(): string {
  for (const rel of ["./craft.py", "../../src/lab/craft.py"]) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(p)) return p;
  }
  throw new Error("src/lab/craft.py is missing");
}

export class Crafter {
  private next = 1;
  private readonly waiting = new Map<number, (sent: boolean[]) => void>();
  private readonly child: ChildProcess;
  readonly ready: Promise<void>;

  /** `link IFACE MAC`: frames past the sender's own netfilter; `raw MARK`: through its output hook. */
  constructor(netns: string, mode: ["link", string, string] | ["raw", number]) {
    this.child = spawn("ip", ["netns", "exec", netns, PYTHON, craftPath(), ...mode.map(String)], { stdio: ["pipe", "pipe", "inherit"] });
    let started: () => void;
    this.ready = new Promise((resolve, reject) => {
      started = resolve;
      this.child.on("error", reject);
      this.child.on("exit", (code) => {
        // Batches still waiting count as not sent: the caller's counts show it.
        for (const resolve of this.waiting.values()) resolve([]);
        this.waiting.clear();
        reject(new Error(`packet crafter in ${netns} exited (${code})`));
      });
    });
    // Awaited later; a crafter that dies before then must not be an unhandled rejection meanwhile.
    this.ready.catch(() => {});
    createInterface({ input: this.child.stdout! }).on("line", (line) => {
      const msg = JSON.parse(line) as { ready?: boolean; id?: number; sent?: boolean[] };
      if (msg.ready) { started(); return; }
      const resolve = this.waiting.get(msg.id!);
      this.waiting.delete(msg.id!);
      resolve?.(msg.sent ?? []);
    });
  }

  private ask(message: Record<string, unknown>): Promise<boolean[]> {
    const id = this.next++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.child.stdin!.write(`${JSON.stringify({ id, ...message })}\n`);
    });
  }

  /** Sends every packet in order; for each, whether it went out. */
  send(packets: CraftSpec[]): Promise<boolean[]> {
    return packets.length === 0 ? Promise.resolve([]) : this.ask({ packets });
  }

  /** Builds every round's packets ahead (the crafter does it while the caller does other things). */
  async prepare(rounds: CraftSpec[][]): Promise<void> {
    await this.ask({ prepare: rounds });
  }

  /** Sends the prepared round; for each of its packets, whether it went out. */
  round(n: number): Promise<boolean[]> {
    return this.ask({ round: n });
  }

  stop(): void {
    this.child.stdin!.end();
    this.child.kill();
  }
}
