// Backends by name. Adding one is a file in this folder and a line here.
import { userError } from "../errors.js";
import type { Ruleset } from "../ir/ruleset.js";
import { iptablesBackend } from "./iptables.js";
import { nftBackend } from "./nft.js";
import { scriptBackend } from "./script.js";
import type { Artifact, Backend, EmitOptions } from "./types.js";

export const BACKENDS = {
  nft: nftBackend,
  iptables: iptablesBackend,
  script: scriptBackend,
} as const satisfies Record<string, Backend>;

export type BackendName = keyof typeof BACKENDS;
export const BACKEND_NAMES = Object.keys(BACKENDS) as BackendName[];

export function backendByName(name: string): Backend {
  const backend = (BACKENDS as Record<string, Backend>)[name];
  if (!backend) throw userError("BACKEND_UNKNOWN", `unknown backend "${name}" (choose ${BACKEND_NAMES.join(", ")})`);
  return backend;
}

export function emit(ruleset: Ruleset, backend: BackendName | string, options?: EmitOptions): Artifact[] {
  return backendByName(backend).emit(ruleset, options);
}
