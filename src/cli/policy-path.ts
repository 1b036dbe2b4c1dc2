import { existsSync } from "node:fs";
import type { Detection, DetectOptions } from "../clients/index.js";
import { userError } from "../errors.js";
import { clientsRoot } from "./clients-root.js";
import { resolverOf } from "../policy/auto-ports.js";
import { loadPolicy, type LoadOptions } from "../policy/load.js";
import type { Policy } from "../policy/types.js";

export const DEFAULT_POLICY_PATHS = ["./swarmgate.yaml", "/etc/swarmgate/policy.yaml"];

/** The policy named on the command line, else the first default that exists. */
export function resolvePolicyPath(given: string | undefined): string {
  if (given !== undefined) return given;
  const found = DEFAULT_POLICY_PATHS.find((p) => existsSync(p));
  if (found) return found;
  throw userError("POLICY_NOT_FOUND", `no policy given and none found at ${DEFAULT_POLICY_PATHS.join(" or ")}; pass a file, e.g. swarmgate check examples/standalone.yaml`);
}

// Client detection is loaded only by the commands that need it (its modules cost a cold start some 40 ms).
let detect: ((o: DetectOptions) => Detection) | undefined;
export async function loadDetection(): Promise<void> {
  detect ??= (await import("../clients/index.js")).detectClients;
}

/** Thrown from inside a policy load that meets `ports: auto` before detection is loaded: load it, then load again. */
class DetectionNotLoaded extends Error {}

/** The clients found on this machine (configs below --clients-root), once per command; loadDetection() first. */
let detected: Detection | undefined;
export function detectHere(): Detection {
  if (!detect) throw new DetectionNotLoaded("client detection is not loaded");
  const root = clientsRoot();
  return (detected ??= detect(root === undefined ? {} : { root }));
}

/** Look again (follow asks every second). */
export function forgetDetection(): void { detected = undefined; }

/** How the commands load a policy: `ports: auto` asks the clients found on this machine. */
export function policyOptions(): LoadOptions {
  return { autoPorts: resolverOf(detectHere) };
}

/** A policy as every command loads it; a policy without `ports: auto` never loads client detection. */
export async function loadPolicyHere(path: string): Promise<Policy> {
  try {
    return loadPolicy(path, policyOptions());
  } catch (e) {
    if (!(e instanceof DetectionNotLoaded)) throw e;
    await loadDetection();
    return loadPolicy(path, policyOptions());
  }
}
