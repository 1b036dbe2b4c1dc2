// The swarm tests' sandbox: namespaces named sgs-<pid>-<n>-<role>, linked only
// to each other by veth pairs (never to the machine's own network, and with no
// default route out), and the long-running programs started inside them. Every
// namespace, process and temporary directory a Sandbox made goes away in
// close(), and each program's output is kept so that a failed assertion can
// show its last lines.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Netns } from "../../src/system/netns.js";
import { processAlive, run, runChecked } from "../../src/system/run.js";

let sandboxes = 0;
const live = new Set<ChildProcess>();
const liveNamespaces = new Set<string>();
const liveDirs = new Set<string>();
// A worker that exits mid-test (a timeout, a crash) must leave no daemon, namespace or directory behind.
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL");
  for (const name of liveNamespaces) spawnSync("ip", ["netns", "del", name]);
  if (!process.env.SWARM_KEEP) for (const d of liveDirs) rmSync(d, { recursive: true, force: true });
});

let staleRemoved: Promise<void> | undefined;

/** Removes the namespaces of earlier runs that died (sgs-<pid>-… with that pid gone), and what still runs in them. */
async function removeStaleSandboxes(): Promise<void> {
  const list = await run("ip", ["netns", "list"]);
  for (const line of list.stdout.split("\n")) {
    const name = line.split(" ")[0] ?? "";
    const m = /^sgs-(\d+)-\d+-/.exec(name);
    if (!m || processAlive(Number(m[1]))) continue;
    const pids = (await run("ip", ["netns", "pids", name])).stdout.split("\n").filter(Boolean);
    for (const pid of pids) {
      try { process.kill(Number(pid), "SIGKILL"); } catch { /* gone meanwhile */ }
    }
    await run("ip", ["netns", "del", name]);
  }
}

export class Proc {
  private out = "";
  readonly exited: Promise<number | null>;
  private done = false;

  constructor(readonly name: string, readonly child: ChildProcess) {
    live.add(child);
    const keep = (d: Buffer) => { this.out = (this.out + d.toString("utf8")).slice(-65536); };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    this.exited = new Promise((resolve) => {
      child.on("error", (e) => { keep(Buffer.from(`[could not start: ${e.message}]\n`)); });
      child.on("close", (code, signal) => {
        this.done = true;
        live.delete(child);
        resolve(code ?? (signal ? 128 : null));
      });
    });
  }

  get running(): boolean { return !this.done; }

  /** The last `lines` lines of what the program printed (stdout and stderr together). */
  tail(lines = 15): string {
    // Blank lines and aria2c's progress-summary frames say nothing about a failure.
    const noise = /^\s*$|^[=-]+$|^FILE: |Download Progress Summary/;
    const kept: string[] = [];
    let repeats = 0;
    for (const line of this.out.split("\n").filter((l) => !noise.test(l))) {
      if (line === kept.at(-1)?.replace(/ \(\d+ times\)$/, "")) kept[kept.length - 1] = `${line} (${++repeats + 1} times)`;
      else { kept.push(line); repeats = 0; }
    }
    return kept.slice(-lines).join("\n");
  }

  /** SIGTERM, then SIGKILL after `graceMs` (qbittorrent-nox takes 4-5 s to exit on SIGTERM). */
  async stop(graceMs = 1000): Promise<void> {
    if (this.done) return;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

export class Sandbox {
  readonly tag: string;
  private readonly namespaces: Netns[] = [];
  private readonly procs: Proc[] = [];
  private readonly notes: string[] = [];
  private readonly steps: string[] = [];
  private readonly dirs: string[] = [];

  constructor() { this.tag = `sgs-${process.pid}-${sandboxes++}`; }

  /** A new namespace with loopback up, named sgs-<pid>-<n>-<role>. */
  async netns(role: string): Promise<Netns> {
    await (staleRemoved ??= removeStaleSandboxes());
    const ns = new Netns(`${this.tag}-${role}`);
    await runChecked("ip", ["netns", "add", ns.name]);
    this.namespaces.push(ns);
    liveNamespaces.add(ns.name);
    await runChecked("ip", ["-n", ns.name, "link", "set", "lo", "up"]);
    return ns;
  }

  /** A veth pair created inside `a` with its peer moved straight into `b` (never in the root namespace). */
  async link(a: Netns, aIf: string, aAddrs: string[], b: Netns, bIf: string, bAddrs: string[]): Promise<void> {
    // `ip -n` enters only the network namespace (`ip netns exec` also builds a mount namespace: slow on a busy machine).
    await runChecked("ip", ["-n", a.name, "link", "add", aIf, "type", "veth", "peer", "name", bIf, "netns", b.name]);
    for (const [ns, ifname, addrs] of [[a, aIf, aAddrs], [b, bIf, bAddrs]] as const) {
      const lines = addrs.map((addr) => `addr add ${addr} dev ${ifname}${addr.includes(":") ? " nodad" : ""}`);
      await this.ip(ns, [...lines, `link set ${ifname} up`]);
    }
  }

  /** Runs `ip -n <ns> -batch -` with these lines (addresses, routes). */
  async ip(ns: Netns, lines: string[]): Promise<void> {
    await runChecked("ip", ["-n", ns.name, "-batch", "-"], { input: lines.join("\n") + "\n" });
  }

  /** A fresh temporary directory (world-readable, for programs that drop privileges). */
  dir(what: string): string {
    const d = mkdtempSync(join(tmpdir(), `${this.tag}-${what}-`));
    chmodSync(d, 0o755);
    this.dirs.push(d);
    liveDirs.add(d);
    return d;
  }

  /** Starts a long-running program inside `ns`; close() stops it. */
  start(ns: Netns, name: string, command: string, args: string[], env: Record<string, string> = {}): Proc {
    const child = spawn("ip", ["netns", "exec", ns.name, command, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
    const proc = new Proc(`${name} (${ns.name})`, child);
    this.procs.push(proc);
    return proc;
  }

  /** Runs one phase of a test and records how long it took (report() lists the phases). */
  async step<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const started = Date.now();
    try {
      return await fn();
    } finally {
      this.steps.push(`${what}: ${((Date.now() - started) / 1000).toFixed(2)} s`);
    }
  }

  /** Adds a line to what report() shows (the output of apply, for instance). */
  note(title: string, text: string): void {
    this.notes.push(`--- ${title}\n${text.trimEnd().split("\n").slice(-15).join("\n")}`);
  }

  /** The last lines of every program's output and every note: the message of a failed assertion. */
  report(): string {
    const logs = this.procs.map((p) => `--- ${p.name}${p.running ? "" : " (exited)"}\n${p.tail() || "(no output)"}`);
    return ["", ...(this.steps.length ? [`--- ${this.tag} phases\n${this.steps.join("\n")}`] : []), ...this.notes, ...logs].join("\n");
  }

  async close(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.stop()));
    for (const ns of this.namespaces.splice(0)) {
      await run("ip", ["netns", "del", ns.name]);
      liveNamespaces.delete(ns.name);
    }
    // SWARM_KEEP=1 keeps the configs, logs and downloads for a look afterwards.
    for (const d of this.dirs.splice(0)) {
      if (!process.env.SWARM_KEEP) rmSync(d, { recursive: true, force: true });
      liveDirs.delete(d);
    }
  }
}

/** Waits until `probe` returns a value (not undefined), polling every `everyMs`; throws `what` on timeout. */
export async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Whether something in `ns` listens on TCP `port`. */
export async function listening(ns: Netns, port: number): Promise<boolean> {
  const r = await run("ss", ["-N", ns.name, "-Hltn", `sport = :${port}`]);
  return r.stdout.trim() !== "";
}

/**
 * Waits until every interface of `ns` has its IPv6 link-local address and
 * none is still tentative: the kernel adds the link-local address a moment
 * after the link comes up, and duplicate address detection takes ~1-2 s more.
 * qbittorrent-nox started before that sees the address change, reopens its
 * sockets and marks its tracker "skipping tracker announce (unreachable)"
 * for good.
 */
export async function addressesSettled(ns: Netns, timeoutMs = 10_000): Promise<void> {
  type Link = { ifname: string; addr_info: { family: string; scope: string; tentative?: boolean }[] };
  await until(`the IPv6 link-local addresses of ${ns.name} to be ready`, timeoutMs, async () => {
    const links = JSON.parse((await runChecked("ip", ["-j", "-n", ns.name, "addr", "show"])).stdout) as Link[];
    const ready = links.every((l) => l.ifname === "lo" ||
      (l.addr_info.some((a) => a.family === "inet6" && a.scope === "link") && l.addr_info.every((a) => !a.tentative)));
    return ready ? true : undefined;
  }, 100);
}
