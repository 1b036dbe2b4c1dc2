// Everything that reads or changes the machine's firewall, each change in one
// transaction: nft -f, or iptables-restore per address family.
import { emitNft } from "../backend/nft.js";
import { userError } from "../errors.js";
import type { Ruleset } from "../ir/ruleset.js";
import { TABLE_NAME } from "../compile/index.js";
import { planRestore } from "./iptables-plan.js";
import { onPath, run, runChecked } from "./run.js";

export type Backend = "nft" | "iptables";
const SAVE = { 4: "iptables-save", 6: "ip6tables-save" } as const;
const RESTORE = { 4: "iptables-restore", 6: "ip6tables-restore" } as const;

/** nft when it is installed and iptables is absent or its nf_tables variant; else iptables. */
export async function detectBackend(): Promise<Backend> {
  if (onPath("nft")) {
    if (!onPath("iptables")) return "nft";
    const v = await run("iptables", ["--version"]);
    if (v.stdout.includes("nf_tables")) return "nft";
  }
  if (onPath("iptables-restore")) return "iptables";
  throw userError("TOOL_MISSING", "neither nft nor iptables-restore is installed (on Debian: apt-get install nftables)");
}

/** The whole current ruleset, as the backup of an apply. */
export async function snapshot(backend: Backend): Promise<{ suffix: string; text: string }[]> {
  if (backend === "nft") return [{ suffix: "nft", text: (await runChecked("nft", ["list", "ruleset"])).stdout }];
  return Promise.all(([4, 6] as const).map(async (f) => ({ suffix: `v${f}`, text: (await runChecked(SAVE[f], [])).stdout })));
}

async function restoreInput(command: string, args: string[], input: string): Promise<void> {
  const r = await run(command, args, { input });
  if (r.code !== 0) throw userError("LOAD_FAILED", `${command} refused the ruleset, and the previous one is still in force: ${r.stderr.trim() || r.stdout.trim()}`);
}

/** Replaces swarmgate's table or chains with the ruleset, one transaction per family. */
export async function load(backend: Backend, ruleset: Ruleset): Promise<void> {
  if (backend === "nft") return restoreInput("nft", ["-f", "-"], emitNft(ruleset));
  for (const f of [4, 6] as const) {
    const plan = planRestore(ruleset, f, (await runChecked(SAVE[f], [])).stdout);
    if (plan) await restoreInput(RESTORE[f], ["-w", "--noflush"], plan);
  }
}

/** Loads a ruleset text someone else wrote (tests inject failures this way). */
export async function loadText(backend: Backend, text: string): Promise<void> {
  await restoreInput(backend === "nft" ? "nft" : RESTORE[4], backend === "nft" ? ["-f", "-"] : ["-w", "--noflush"], text);
}

/** Removes swarmgate's table (nft) or chains (iptables); both when no backend is named. */
export async function remove(only?: Backend): Promise<void> {
  if (only !== "iptables" && onPath("nft") && (await run("nft", ["list", "table", "inet", TABLE_NAME])).code === 0) {
    await restoreInput("nft", ["-f", "-"], `delete table inet ${TABLE_NAME}\n`);
  }
  if (only === "nft" || !onPath("iptables-restore")) return;
  for (const f of [4, 6] as const) {
    const save = await run(SAVE[f], []);
    if (save.code !== 0) continue;
    const plan = planRestore(undefined, f, save.stdout);
    if (plan) await restoreInput(RESTORE[f], ["-w", "--noflush"], plan);
  }
}

/** Puts a backup back: the whole ruleset as it was, in one transaction per family. */
export async function restore(backend: Backend, parts: Map<string, string>): Promise<void> {
  if (backend === "nft") return restoreInput("nft", ["-f", "-"], `flush ruleset\n${parts.get("nft") ?? ""}`);
  for (const f of [4, 6] as const) {
    const text = parts.get(`v${f}`) ?? "";
    // Tables the backup does not mention keep their rules; swarmgate's chains in them must still go.
    const tablesInBackup = new Set([...text.matchAll(/^\*(\S+)/gm)].map((m) => m[1]!));
    const now = await run(SAVE[f], []);
    const leftovers = planRestore(undefined, f, now.stdout.split(/^(?=\*)/m).filter((s) => !tablesInBackup.has(/^\*(\S+)/.exec(s)?.[1] ?? "")).join(""));
    if (text.trim()) await restoreInput(RESTORE[f], ["-w"], text);
    if (leftovers) await restoreInput(RESTORE[f], ["-w", "--noflush"], leftovers);
  }
}

/** Swarmgate's rules as the kernel holds them, with counters: nft text, or iptables-save -c lines. */
export async function live(backend: Backend): Promise<string | undefined> {
  if (backend === "nft") {
    const r = await run("nft", ["list", "table", "inet", TABLE_NAME]);
    return r.code === 0 ? r.stdout : undefined;
  }
  const saves = await Promise.all(([4, 6] as const).map(async (f) => (await run(SAVE[f], ["-c"])).stdout));
  const text = swarmgateLines(saves);
  return /^:SWARMGATE-/m.test(text) ? text : undefined;
}

/** Swarmgate's chains and rules (and the table headers) from iptables-save outputs. */
export function swarmgateLines(saves: string[]): string {
  return saves.map((s) => s.split("\n").filter((l) => l.includes("SWARMGATE-") || l.startsWith("*")).join("\n")).join("\n");
}

/** Whether swarmgate's rules are loaded, and by which backend. */
export async function loadedBackend(): Promise<Backend | undefined> {
  if (onPath("nft") && (await run("nft", ["list", "table", "inet", TABLE_NAME])).code === 0) return "nft";
  if (onPath("iptables") && (await run("iptables", ["-w", "-S", "SWARMGATE-INPUT"])).code === 0) return "iptables";
  return undefined;
}
