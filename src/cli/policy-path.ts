import { existsSync } from "node:fs";
import { userError } from "../errors.js";

export const DEFAULT_POLICY_PATHS = ["./swarmgate.yaml", "/etc/swarmgate/policy.yaml"];

/** The policy named on the command line, else the first default that exists. */
export function resolvePolicyPath(given: string | undefined): string {
  if (given !== undefined) return given;
  const found = DEFAULT_POLICY_PATHS.find((p) => existsSync(p));
  if (found) return found;
  throw userError("POLICY_NOT_FOUND", `no policy given and none found at ${DEFAULT_POLICY_PATHS.join(" or ")}; pass a file, e.g. swarmgate check examples/standalone.yaml`);
}
