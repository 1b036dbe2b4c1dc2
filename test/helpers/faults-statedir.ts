// Faults of the state directory: no room (bytes or inodes), read-only, and
// the leftovers of a process that died while writing its journal. The state
// directory of these trials is a small tmpfs on a temporary directory of the
// test machine's own mount namespace — ip netns exec sees it, and it is
// unmounted whatever happens. Nothing in it is the machine's firewall.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, statfsSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { run } from "../../src/system/run.js";
import { afterNext, outputProblems } from "./faults-judge.js";
import { printed, slot, swarmgateIn } from "./faults-run.js";
import { SCENARIOS, type Scenario } from "./faults-scenarios.js";
import { judge, report, settled, withTrial, type Trial } from "./faults-trial.js";
import type { Backend, World } from "./faults-world.js";

export type Room = { bytes: number } | { inodes: number } | "read-only";

async function checked(command: string, args: string[]): Promise<void> {
  const r = await run(command, args);
  if (r.code !== 0) throw new Error(`${command} ${args.join(" ")}: ${r.stderr.trim()}`);
}

/** Leaves `room` free on the tmpfs at `dir` (the filler files go in `fill`, which freeing removes). */
async function useUp(dir: string, room: Room): Promise<void> {
  const fill = join(dir, "fill");
  mkdirSync(fill, { recursive: true });
  if (room === "read-only") await checked("mount", ["-o", "remount,ro", dir]);
  else if ("bytes" in room) {
    const s = statfsSync(dir);
    writeFileSync(join(fill, "bytes"), Buffer.alloc(Math.max(0, s.bavail * s.bsize - room.bytes)));
  } else {
    for (let i = statfsSync(dir).ffree; i > room.inodes; i--) writeFileSync(join(fill, String(i)), "");
  }
}

/**
 * Copies the trial's state directory onto a fresh tmpfs, and gives `fn` the
 * way to take the room away (`useUp`) and to give it back (`free`).
 */
export async function withTmpfs<T>(t: Trial, fn: (dir: string, use: (room: Room) => Promise<void>, free: () => Promise<void>) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "sg-fault-tmpfs-"));
  await checked("mount", ["-t", "tmpfs", "-o", "size=1m,nr_inodes=64,mode=0700", "tmpfs", dir]);
  let readOnly = false;
  try {
    copyTree(t.sd, dir);
    const use = async (room: Room) => { readOnly = room === "read-only"; await useUp(dir, room); };
    const free = async () => {
      if (readOnly) await checked("mount", ["-o", "remount,rw", dir]);
      await run("rm", ["-rf", "--", join(dir, "fill")]);
    };
    return await fn(dir, use, free);
  } finally {
    await run("umount", ["-l", dir]);
    rmdirSync(dir);
  }
}

function copyTree(from: string, to: string): void {
  for (const name of readdirSync(from, { recursive: true, withFileTypes: true })) {
    if (!name.isFile()) continue;
    const src = join(name.parentPath, name.name);
    const dst = join(to, src.slice(from.length + 1));
    mkdirSync(dirname(dst), { recursive: true, mode: 0o700 });
    writeFileSync(dst, readFileSync(src), { mode: 0o600 });
  }
}

/** A command on a state directory with no room: it may refuse (old state) or succeed (new), never half; then `stop` while still full; then status once there is room. */
async function noRoom(t: Trial, s: Scenario, room: Room): Promise<string[]> {
  return withTmpfs(t, async (dir, use, free) => {
    await use(room);
    const sd = { ...t, sd: dir };
    const ran = await s.run(sd, {}, false);
    await settled(t.ns, 3000);
    const j = await judge(t, [s.old, s.new]);
    const problems = [...j.problems, ...outputProblems(s, ran.main, false, j.label)];
    if (ran.main.code === 2 && !/STATE_UNWRITABLE|STATE_UNREADABLE/.test(ran.main.stderr)) problems.push("a refusal for want of room without STATE_UNWRITABLE");
    const outputs = [...ran.outputs];
    if (s.op === "apply" && j.label) {
      // Defect 7: a stop that cannot write its backup must not take the rules away and leave forwarding on.
      const stop = await swarmgateIn(t.ns, ["stop", "--state-dir", dir], {});
      outputs.push(printed("stop, still no room", ["stop"], stop));
      const k = await judge(t, stop.code === 0 ? ["none"] : [j.label]);
      problems.push(...k.problems.map((p) => `after stop with no room (exit ${stop.code}): ${p}`));
      if (stop.code !== 0) problems.push(...outputProblems({ ...s, old: j.label, new: "none" }, stop, false, k.label).map((p) => `stop with no room: ${p}`));
    }
    await free();
    problems.push(...brokenBackups(dir));
    const now = (await judge(t, ["none", "gateway", "standalone"])).label;
    const next = await afterNext(sd, s, now);
    return problems.length || next.problems.length ? [await report(sd, `${s.name} with the state directory ${describeRoom(room)}`, [...problems, ...next.problems], [...outputs, next.output])] : [];
  });
}

export function roomTrial(world: World, backend: Backend, s: Scenario, room: Room): Promise<string[]> {
  return slot(() => withTrial(world, backend, s.setup, (t) => noRoom(t, s, room)));
}

const scenario = (n: string) => SCENARIOS.find((s) => s.name === n)!;

/**
 * The rooms tried: none at all; some (a backup fits, a journal only in part);
 * one inode; read-only. Fewer for stop and rollback: the matrix is paid for
 * in CPU seconds.
 */
export const ROOM_CASES: readonly (readonly [Scenario, Room])[] = [
  [scenario("apply gateway → host"), { bytes: 0 }],
  [scenario("apply gateway → host"), { bytes: 20480 }],
  [scenario("apply gateway → host"), { inodes: 1 }],
  [scenario("apply gateway → host"), "read-only"],
  [scenario("stop"), { bytes: 8192 }],
  [scenario("stop"), { inodes: 0 }],
  [scenario("rollback"), { bytes: 20480 }],
  [scenario("rollback"), "read-only"],
];

export const describeRoom = (room: Room) => (room === "read-only" ? "read-only" : "bytes" in room ? `${room.bytes} bytes free` : `${room.inodes} inodes free`);

/** Every backup must be whole: a truncated one is found only when someone rolls back to it. */
function brokenBackups(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(dir, "backups"))) {
    if (!name.endsWith(".json") || name.startsWith(".")) continue;
    try { JSON.parse(readFileSync(join(dir, "backups", name), "utf8")); } catch { out.push(`backups/${name} is not whole JSON (a truncated backup was kept)`); }
  }
  return out;
}

/**
 * A journal temporary file left by a process that died while writing it
 * (half of it, or all of it but not yet renamed): the kernel was not touched,
 * so it must be ignored — never read as a journal.
 */
async function tempJournal(t: Trial, whole: boolean): Promise<string[]> {
  const journal = readFileSync(join(t.sd, "applied.json"), "utf8"); // a real journal: apply none → gateway, recovery "undo"
  writeFileSync(join(t.sd, ".journal.json.999999.tmp"), whole ? journal : journal.slice(0, Math.floor(journal.length / 2)), { mode: 0o600 });
  const s = SCENARIOS.find((x) => x.name === "apply gateway → host")!;
  const problems: string[] = [];
  const status = await swarmgateIn(t.ns, ["status", "--state-dir", t.sd], {});
  const j = await judge(t, ["gateway"]);
  problems.push(...j.problems);
  if (status.code !== 0 || /interrupted|STATE_CORRUPT/.test(status.stderr)) problems.push(`status read the temporary file as a journal (exit ${status.code})`);
  const ran = await s.run(t, {}, false);
  const k = await judge(t, ["standalone"]);
  problems.push(...k.problems, ...outputProblems(s, ran.main, false, k.label));
  return problems.length ? [await report(t, `a ${whole ? "whole" : "half-written"} .journal.json.<pid>.tmp`, problems, [printed("status", ["status"], status), ...ran.outputs])] : [];
}

export function tempJournalTrial(world: World, backend: Backend, whole: boolean): Promise<string[]> {
  return slot(() => withTrial(world, backend, ["gateway"], (t) => tempJournal(t, whole)));
}
