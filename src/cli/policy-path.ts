import { existsSync } from "node:fs";
import { detectClients, type Detection } from "../clients/index.js";
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

/** The clients found on this machine (configs below --clients-root), once per command. */
let detected: Detection | undefined;
export function detectHere(): Detection {
  const root = clientsRoot();
  return (detected ??= detectClients(root === undefined ? {} : { root }));
}

/** Look again (follow asks every second). */
export function forgetDetection(): void { detected = undefined; }

/** How the commands load a policy: `ports: auto` asks the clients found on this machine. */
export function policyOptions(): LoadOptions {
  return { autoPorts: resolverOf(detectHere) };
}

/** A policy as every command loads it. */
export function loadPolicyHere(path: string): Policy {
  return loadPolicy(path, policyOptions());
}
