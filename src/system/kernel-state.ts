// What the kernel holds of swarmgate's: its objects in every backend whose
// tools are installed, and the kernel settings it manages. Backups, journals
// and verification all speak in these terms, never in whole rulesets.
import { KERNEL_BACKEND_NAMES, kernelBackend, type KernelBackendName } from "../backend/registry.js";
import type { KernelBackend, Owned } from "../backend/kernel-types.js";
import { userError } from "../errors.js";
import { onPath, run, runStep } from "./run.js";
import { readSettings } from "./sysctl.js";
import { realpathSync } from "node:fs";
import { basename, delimiter, join } from "node:path";

export interface KernelState {
  owned: Partial<Record<KernelBackendName, Owned>>;
  sysctl: Record<string, string>;
}

/** The kernel backends usable on this machine (their tools are on the PATH). */
export async function installedBackends(): Promise<KernelBackend[]> {
  const all = await Promise.all(KERNEL_BACKEND_NAMES.map(kernelBackend));
  return all.filter((b) => b.tools.every(onPath));
}

/**
 * Which iptables the machine has, from where its `iptables` leads (Debian's
 * alternatives: xtables-nft-multi or xtables-legacy-multi) — a program not
 * run is a program that costs nothing; undefined when the name does not say.
 */
function iptablesVariant(): "nf_tables" | "legacy" | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter).filter(Boolean)) {
    let target: string;
    try { target = basename(realpathSync(join(dir, "iptables"))); } catch { continue; }
    return /nft/.test(target) ? "nf_tables" : /legacy/.test(target) ? "legacy" : undefined;
  }
  return undefined;
}

/** nft when it is installed and iptables is absent or its nf_tables variant; else iptables. */
export async function detectBackend(): Promise<KernelBackendName> {
  if (onPath("nft")) {
    if (!onPath("iptables")) return "nft";
    const variant = iptablesVariant() ?? ((await run("iptables", ["--version"])).stdout.includes("nf_tables") ? "nf_tables" : "legacy");
    if (variant === "nf_tables") return "nft";
  }
  if (onPath("iptables-restore")) return "iptables";
  throw userError("TOOL_MISSING", "neither nft nor iptables-restore is installed (on Debian: apt-get install nftables)");
}

/** Reading changes nothing, so every listing runs at once: the waits overlap (apply reads twice, status once). */
export async function readOwned(backend: KernelBackend): Promise<Owned> {
  return backend.parseOwned(await Promise.all(backend.readSteps.map(runStep)));
}

export async function readState(backends: readonly KernelBackend[]): Promise<KernelState> {
  const read = await Promise.all(backends.map(readOwned));
  const owned: KernelState["owned"] = {};
  backends.forEach((b, i) => { owned[b.name] = read[i]!; });
  return { owned, sysctl: readSettings() };
}

/** Whether the objects of `a` and `b` agree (chains, policies, each rule's intent), unit by unit. */
export function sameOwned(backend: KernelBackend, a: Owned, b: Owned): boolean {
  return JSON.stringify(backend.signature(a)) === JSON.stringify(backend.signature(b));
}

export function isEmpty(owned: Owned | undefined): boolean {
  return !owned || Object.values(owned).every((t) => t.trim() === "");
}

/** The backend whose objects are loaded, if any. */
export function loadedIn(state: KernelState): KernelBackendName | undefined {
  return KERNEL_BACKEND_NAMES.find((n) => !isEmpty(state.owned[n]));
}
