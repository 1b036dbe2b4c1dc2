// `swarmgate follow`: keeps the firewall on the ports the BitTorrent clients
// use. It watches the directories of the configs that `ports: auto` reads
// (clients save by writing a new file and renaming it, so the file itself may
// vanish for a moment) and looks at the listening sockets every --interval
// (UDP's; TCP's at most once a second, as they are dear to read); when a
// client's port moves, the firewall follows in place (system/follow.ts) and
// one line says so. Between looks only those sockets are read: the client
// scan and the policy are read again only when they change or a config
// directory does, and the kernel is read and changed only when a port really
// moved.
import { watch, type FSWatcher } from "node:fs";
import { dirname } from "node:path";
import { SwarmgateError } from "../errors.js";
import { formatPortRange } from "../net/port.js";
import type { Policy } from "../policy/types.js";
import { requireRoot } from "../system/apply.js";
import { followStep, readAhead } from "../system/follow.js";
import { DEFAULT_STATE_DIR, StateDir } from "../system/state.js";
import { readSockets } from "../clients/sockets.js";
import { forgetDetection, loadPolicyHere } from "./policy-path.js";
import type { CommonOptions } from "./report.js";

export interface FollowOptions extends CommonOptions { stateDir?: string; wait?: number | string; interval?: number; once?: boolean }

/** Coalesces the bursts of events one save makes (new file, rename, delete). */
const SETTLE_MS = 5;

/** Which ports of a protocol are listened on in this namespace now: when unchanged, no client moved without its config. */
function socketFingerprint(protocol: "tcp" | "udp"): string {
  return [...new Set([...readSockets("/proc", protocol).values()].map((s) => s.port))].sort((a, b) => a - b).join(",");
}

/** TCP's tables cost a thousand times UDP's to read (sockets.ts): read at every tick, they alone were 1% of a CPU. */
const TCP_EVERY_MS = 1000;
/**
 * After sockets change, TCP's are read at every tick for this long: a client moves its listeners one
 * after the other (qBittorrent's UDP may be on the new port before its TCP is), and the look that the
 * first change caused must be followed at once by the one the second causes.
 */
const HOT_MS = 3000;

const message = (e: unknown): string => (e instanceof SwarmgateError ? e.diagnostics.map((d) => `${d.line !== undefined ? `${d.file ?? ""}:${d.line}:${d.column}: ` : ""}${d.message}`).join("; ") : (e as Error).message);

export async function runFollow(file: string | undefined, o: FollowOptions): Promise<number> {
  requireRoot("follow", "changes the firewall");
  const stateDir = o.stateDir ?? process.env.SWARMGATE_STATE_DIR ?? DEFAULT_STATE_DIR;
  const path = file ?? new StateDir(stateDir).record()?.policy;
  if (!path) throw new SwarmgateError([{ code: "FOLLOW_REFUSED", message: "nothing is applied and no policy was given: apply a policy with ports: auto first" }]);
  const say = (line: string) => process.stdout.write(o.json ? `${JSON.stringify({ at: new Date().toISOString(), message: line })}\n` : `swarmgate follow: ${line}\n`);
  const options = { stateDir, waitMs: o.wait !== undefined ? Number(o.wait) * 1000 : 60_000 };

  const watchers = new Map<string, FSWatcher>();
  let settle: NodeJS.Timeout | undefined;
  /** Until then TCP's sockets are read at every tick (HOT_MS). */
  let hotUntil = 0;
  let request = () => {};
  let inForce: Record<string, string> | undefined;
  let lastProblem = "";
  /** A problem is said once while it lasts, and its end is said too. */
  const problem = (why: string) => { if (why !== lastProblem) say(`keeps the ports in force: ${why}`); lastProblem = why; };
  const recovered = () => { if (lastProblem) say("reads the clients again"); lastProblem = ""; };
  const describe = (p: Policy, key: string) => {
    const c = p.clients.find((x) => x.path === key)!;
    return `${key} ${c.name}: ${formatPortRange(c.ports)} (${c.auto!.source})`;
  };
  /** One look: the policy loaded again (which reads the clients), and the kernel only when a port moved. */
  const look = async (): Promise<"moved" | "same" | "failed"> => {
    let policy: Policy;
    // The kernel is read while the clients are: a step that follows needs it at once.
    const ahead = readAhead(stateDir);
    try {
      forgetDetection();
      policy = await loadPolicyHere(path);
    } catch (e) {
      problem(message(e));
      return "failed";
    }
    const wanted = Object.fromEntries(policy.clients.filter((c) => c.auto).map((c) => [c.path, formatPortRange(c.ports)]));
    if (inForce && JSON.stringify(wanted) === JSON.stringify(inForce)) { recovered(); return "same"; }
    try {
      const step = await followStep(policy, { ...options, ahead });
      const moved = Object.keys(step.ports).filter((k) => inForce?.[k] !== undefined && inForce[k] !== step.ports[k]);
      if (!inForce) say(`following ${path}: ${Object.keys(step.ports).map((k) => describe(policy, k)).join("; ") || "no client has ports: auto"}${step.outcome === "moved" ? `; the firewall was moved to them in ${step.ms.toFixed(0)} ms` : ""}`);
      else for (const k of moved) say(`${k} ${policy.clients.find((c) => c.path === k)!.name}: ${inForce[k]} → ${step.ports[k]} (${policy.clients.find((c) => c.path === k)!.auto!.source}); firewall changed in place in ${step.ms.toFixed(0)} ms`);
      inForce = step.ports;
      recovered();
      watchConfigs(policy);
      return step.outcome === "moved" ? "moved" : "same";
    } catch (e) {
      problem(message(e));
      return "failed";
    }
  };

  if (o.once) {
    const r = await look();
    if (o.json) process.stdout.write(`${JSON.stringify({ ok: r !== "failed", outcome: r, ports: inForce ?? null, ...(lastProblem && { problem: lastProblem }) })}\n`);
    return r === "failed" ? 2 : 0;
  }

  // Looks run one at a time; a reason to look that comes during one asks for one more after it.
  let running: Promise<unknown> | undefined;
  let again = false;
  request = () => {
    if (running) { again = true; return; }
    running = look().finally(() => {
      running = undefined;
      if (again) { again = false; request(); }
    });
  };

  function watchConfigs(policy: Policy) {
    if (o.once) return;
    const dirs = new Set(policy.clients.flatMap((c) => (c.auto?.config ? [dirname(c.auto.config)] : [])));
    for (const [dir, w] of watchers) if (!dirs.has(dir)) { w.close(); watchers.delete(dir); }
    for (const dir of dirs) {
      if (watchers.has(dir)) continue;
      try {
        const w = watch(dir, { persistent: false }, () => { hotUntil = Date.now() + HOT_MS; clearTimeout(settle); settle = setTimeout(request, SETTLE_MS); });
        w.on("error", () => { w.close(); watchers.delete(dir); }); // the directory went away: the interval still looks
        watchers.set(dir, w);
      } catch { /* not watchable (gone, or no inotify): the interval still looks */ }
    }
  }

  // A client that moves through its API may not write its config (Transmission 3.00 does not): the sockets
  // tell, so they are read often and the full look runs only when they changed, or when the last look failed
  // (a config that does not read yet). Every client listens on UDP as well when it has uTP or DHT on, so UDP
  // is read at every tick; TCP, a thousand times dearer, at most once a second (or every tick, if longer).
  const sockets = { udp: socketFingerprint("udp"), tcp: socketFingerprint("tcp") };
  let lastTcp = Date.now();
  let lastRetry = 0;
  const interval = setInterval(() => {
    const udp = socketFingerprint("udp");
    // 50 ms of slack: a tick a second after the last read, a little early, still reads.
    const tcpDue = Date.now() < hotUntil || Date.now() - lastTcp >= TCP_EVERY_MS - 50;
    const tcp = tcpDue ? socketFingerprint("tcp") : sockets.tcp;
    if (tcpDue) lastTcp = Date.now();
    // A failed look is tried again at most once a second: a broken config must not cost a full look every tick.
    const retry = (lastProblem !== "" || !inForce) && Date.now() - lastRetry >= 1000;
    const changed = udp !== sockets.udp || tcp !== sockets.tcp;
    if (changed || retry) {
      if (changed) hotUntil = Date.now() + HOT_MS;
      Object.assign(sockets, { udp, tcp });
      if (retry) lastRetry = Date.now();
      request();
    }
  }, (o.interval ?? 0.25) * 1000);
  request();
  await new Promise<void>((done) => {
    const stop = () => { clearInterval(interval); clearTimeout(settle); for (const w of watchers.values()) w.close(); done(); };
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
  await running;
  say("stopped; the firewall keeps the ports it has");
  return 0;
}
