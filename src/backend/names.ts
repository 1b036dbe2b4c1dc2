// The backends' names alone, so that the CLI can offer them as choices
// without loading any backend at start-up; registry.ts checks that it
// registers exactly these.
export const BACKEND_NAMES = ["nft", "iptables", "script"] as const;
export const KERNEL_BACKEND_NAMES = ["nft", "iptables"] as const;

export type BackendName = (typeof BACKEND_NAMES)[number];
export type KernelBackendName = (typeof KERNEL_BACKEND_NAMES)[number];
