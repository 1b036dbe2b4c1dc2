// Throwaway network namespaces (rehearsals, tests, and the readback that
// status and diff compare with). Each is named sg-<pid>-<n>, so a later run can
// recognise the leftovers of a crashed one (its pid is gone) and remove them,
// and never touches a namespace it did not create. Nothing here links a
// namespace to the machine's own network.
import { processAlive, run, runChecked, type RunOptions, type RunResult } from "./run.js";

const PREFIX = "sg-";
let counter = 0;

export class Netns {
  constructor(readonly name: string) {}

  /** Runs a program inside the namespace. */
  exec(command: string, args: readonly string[], options?: RunOptions): Promise<RunResult> {
    return run("ip", ["netns", "exec", this.name, command, ...args], options);
  }

  execChecked(command: string, args: readonly string[], options?: RunOptions): Promise<RunResult> {
    return runChecked("ip", ["netns", "exec", this.name, command, ...args], options);
  }
}

export async function createNetns(): Promise<Netns> {
  await removeStaleNamespaces();
  const name = `${PREFIX}${process.pid}-${counter++}`;
  await runChecked("ip", ["netns", "add", name]);
  const ns = new Netns(name);
  await ns.execChecked("ip", ["link", "set", "lo", "up"]);
  return ns;
}

export async function deleteNetns(ns: Netns): Promise<void> {
  await run("ip", ["netns", "del", ns.name]);
}

/** Creates namespaces, runs fn, and removes them whatever happens. */
export async function withNetns<T>(count: number, fn: (...ns: Netns[]) => Promise<T>): Promise<T> {
  const created: Netns[] = [];
  try {
    for (let i = 0; i < count; i++) created.push(await createNetns());
    return await fn(...created);
  } finally {
    for (const ns of created) await deleteNetns(ns);
  }
}

/** Removes sg-<pid>-* namespaces whose creating process no longer exists. */
export async function removeStaleNamespaces(): Promise<void> {
  const list = await run("ip", ["netns", "list"]);
  for (const line of list.stdout.split("\n")) {
    const name = line.split(" ")[0] ?? "";
    const m = /^sg-(\d+)-\d+$/.exec(name);
    if (m && !processAlive(Number(m[1]))) await run("ip", ["netns", "del", name]);
  }
}
