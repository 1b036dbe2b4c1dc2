// Backends by name. Adding one is a file in this folder (its printer, and for
// a backend swarmgate can load into the kernel, its kernel side) and a line here.
import { userError } from "../errors.js";
import type { Ruleset } from "../ir/ruleset.js";
import { iptablesBackend } from "./iptables.js";
import type { KernelBackend } from "./kernel-types.js";
import { BACKEND_NAMES, KERNEL_BACKEND_NAMES, type BackendName, type KernelBackendName } from "./names.js";
import { nftBackend } from "./nft.js";
import { scriptBackend } from "./script.js";
import type { Artifact, Backend, EmitOptions } from "./types.js";

export const BACKENDS = {
  nft: nftBackend,
  iptables: iptablesBackend,
  script: scriptBackend,
} as const satisfies Record<BackendName, Backend>;

export { BACKEND_NAMES, KERNEL_BACKEND_NAMES, type BackendName, type KernelBackendName };

/** The backends apply, stop, rollback, status and rehearse load into the kernel, loaded on demand. */
export const KERNEL_BACKENDS = {
  nft: async () => (await import("./nft-kernel.js")).nftKernel,
  iptables: async () => (await import("./iptables-kernel.js")).iptablesKernel,
} as const satisfies Record<KernelBackendName, () => Promise<KernelBackend>>;

export function isKernelBackend(name: string): name is KernelBackendName {
  return Object.hasOwn(KERNEL_BACKENDS, name);
}

export async function kernelBackend(name: string): Promise<KernelBackend> {
  if (!isKernelBackend(name)) throw userError("BACKEND_UNKNOWN", `unknown backend "${name}" for the kernel (choose ${KERNEL_BACKEND_NAMES.join(", ")})`);
  return KERNEL_BACKENDS[name]();
}

export function backendByName(name: string): Backend {
  if (!Object.hasOwn(BACKENDS, name)) throw userError("BACKEND_UNKNOWN", `unknown backend "${name}" (choose ${BACKEND_NAMES.join(", ")})`);
  return BACKENDS[name as BackendName];
}

export function emit(ruleset: Ruleset, backend: BackendName | string, options?: EmitOptions): Artifact[] {
  return backendByName(backend).emit(ruleset, options);
}
