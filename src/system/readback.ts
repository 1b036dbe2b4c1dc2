// What a ruleset looks like once the kernel holds it: loaded into a throwaway
// network namespace with the very plan apply uses, and read back with the
// backend's own reader, so that comparisons with the live objects (status,
// diff) use the spelling the kernel gives back (nft rewrites text as it lists).
//
// That round trip costs a namespace, a load and a listing, so what the kernel
// listed for a text is remembered (readback.json: two digests). When the text
// a policy compiles to is the one remembered, and the kernel lists now what it
// listed then, the two agree without a sandbox. A digest that does not match —
// another policy, another nft that spells rules differently, a drifted table —
// means the round trip, whose answer is remembered in turn.
import { createHash } from "node:crypto";
import type { KernelBackend, Owned } from "../backend/kernel-types.js";
import { withNetns } from "./netns.js";
import type { StateDir } from "./state.js";

/** The objects `expected` (as the backend writes them) become once the kernel holds them. */
export async function expectedOwned(backend: KernelBackend, expected: Owned): Promise<Owned> {
  return withNetns(1, async (ns) => {
    for (const { step } of backend.plan(expected, backend.empty())) {
      await ns.execChecked(step.command, step.args, step.input === undefined ? {} : { input: step.input });
    }
    const outputs = [];
    for (const step of backend.readSteps) outputs.push(await ns.exec(step.command, step.args));
    return backend.parseOwned(outputs);
  });
}

/** Counters and handles removed: what stays the same while traffic flows. */
export function normalize(owned: Owned): string[] {
  return Object.values(owned).join("\n").split("\n")
    .map((l) => l.replace(/counter packets \d+ bytes \d+/, "counter").replace(/^\[\d+:\d+\] /, "").replace(/ # handle \d+$/, "").trimEnd())
    .filter((l) => l.trim() !== "" && !l.startsWith("#"));
}

/**
 * `text`: what was written, so that the next change can be made in place
 * (kernel-types.ts, plan); `shape`: the digest of the listing without its
 * followed ports (PortMover), so that follow can check that a port move left
 * everything else alone.
 */
interface Spelling { backend: string; written: string; listed: string; text?: Owned; shape?: string }

const digest = (text: string): string => createHash("sha256").update(text).digest("hex");
const writtenDigest = (o: Owned): string => digest(JSON.stringify(o));
const listedDigest = (o: Owned): string => digest(normalize(o).join("\n"));
export const shapeDigest = (backend: KernelBackend, listed: Owned): string => digest(backend.portMover?.withoutPorts(listed) ?? "");

/** Remembers that the kernel listed `listed` for `written`; a cache, so a failure to write it is no error. */
export function rememberSpelling(state: StateDir | undefined, backend: KernelBackend, written: Owned, listed: Owned): void {
  try {
    state?.write("readback.json", { backend: backend.name, written: writtenDigest(written), listed: listedDigest(listed), text: written, ...(backend.portMover && { shape: shapeDigest(backend, listed) }) } satisfies Spelling);
  } catch { /* the next status does the round trip again */ }
}

/** Whether `live` is what the kernel listed when it was given `written`, as remembered. */
export function listedAsRemembered(state: StateDir | undefined, backend: KernelBackend, written: Owned, live: Owned): boolean {
  let s: Spelling | undefined;
  try { s = state?.read<Spelling>("readback.json"); } catch { return false; }
  return !!s && s.backend === backend.name && s.written === writtenDigest(written) && s.listed === listedDigest(live);
}

/** The remembered write of this backend, with its text intact (undefined when there is none, or it does not add up). */
function rememberedWrite(state: StateDir | undefined, backend: KernelBackend): (Spelling & { text: Owned }) | undefined {
  let s: Spelling | undefined;
  try { s = state?.read<Spelling>("readback.json"); } catch { return undefined; }
  return s?.text && s.backend === backend.name && s.written === writtenDigest(s.text) ? { ...s, text: s.text } : undefined;
}

/** What swarmgate wrote for the objects the kernel lists as `live`, when they are what it listed right after that write. */
export function writtenFor(state: StateDir | undefined, backend: KernelBackend, live: Owned): Owned | undefined {
  const s = rememberedWrite(state, backend);
  return s && s.listed === listedDigest(live) ? s.text : undefined;
}

/**
 * What swarmgate last wrote and the shape the kernel listed for it, as
 * remembered, without reading the kernel: where a guarded port move starts.
 */
export function lastWritten(state: StateDir, backend: KernelBackend): { text: Owned; shape: string } | undefined {
  const s = rememberedWrite(state, backend);
  return s?.shape ? { text: s.text, shape: s.shape } : undefined;
}
