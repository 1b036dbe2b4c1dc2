// How each backend's output is loaded into the kernel: the commands, their
// arguments and the ruleset text they read on stdin. One transaction each.
import { emitIptables } from "../backend/iptables.js";
import { emitNft } from "../backend/nft.js";
import type { Ruleset } from "../ir/ruleset.js";

export type LoadBackend = "nft" | "iptables";
export interface LoadStep { command: string; args: string[]; input: string }

export function loadSteps(backend: LoadBackend, ruleset: Ruleset): LoadStep[] {
  if (backend === "nft") return [{ command: "nft", args: ["-f", "-"], input: emitNft(ruleset) }];
  return [
    { command: "iptables-restore", args: ["--noflush"], input: `${emitIptables(ruleset, 4)}\n` },
    { command: "ip6tables-restore", args: ["--noflush"], input: `${emitIptables(ruleset, 6)}\n` },
  ];
}
