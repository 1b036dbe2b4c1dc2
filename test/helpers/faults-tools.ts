// Fake firewall tools for the fault-injection matrix: a directory of wrapper
// scripts, put first in the PATH of a swarmgate process (ip netns exec and the
// detached confirm timer keep the environment). Each wrapper counts its calls
// in the trial's own directory ($SG_FAULT_DIR) and fails call $SG_FAULT_N of
// tool $SG_FAULT_TOOL the way a refusing tool does — exit 1, a message on
// stderr, its stdin read and discarded — and otherwise execs the real tool.
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const FAULT_TOOLS = ["nft", "iptables-restore", "ip6tables-restore", "iptables-save", "ip6tables-save", "sysctl"] as const;
export type FaultTool = (typeof FAULT_TOOLS)[number];

/**
 * The wrapper's text: fixed, with only the tool's name and the real tool's
 * absolute path in it (both checked). It forks nothing unless it fails: the
 * matrix runs it thousands of times on two cores. Calls within one trial are
 * sequential (the waiting apply and its timer never run tools at once), so
 * the count needs no lock.
 */
function wrapper(tool: FaultTool, real: string): string {
  return `#!/bin/sh
# Fake ${tool} for swarmgate's fault-injection tests.
if [ -n "$SG_FAULT_DIR" ]; then
  n=0
  [ -f "$SG_FAULT_DIR/${tool}.count" ] && read -r n <"$SG_FAULT_DIR/${tool}.count"
  n=$((n + 1))
  echo "$n" >"$SG_FAULT_DIR/${tool}.count"
  echo "${tool} #$n [$$] $*" >>"$SG_FAULT_DIR/calls.log"
  if [ "$SG_FAULT_TOOL" = '${tool}' ] && { [ "$SG_FAULT_N" = "$n" ] || { [ -n "$SG_FAULT_ONWARDS" ] && [ "$n" -ge "$SG_FAULT_N" ]; }; }; then
    cat >/dev/null
    echo "${tool}: injected fault on call $n" >&2
    echo "  FAILED (injected)" >>"$SG_FAULT_DIR/calls.log"
    exit 1
  fi
fi
exec '${real}' "$@"
`;
}

/** Where the real tool lives, found once with `command -v` (through a shell: it is a shell builtin). */
function realPath(tool: FaultTool): string {
  const r = spawnSync("sh", ["-c", 'command -v "$1"', "sh", tool], { encoding: "utf8" });
  const path = r.stdout.trim();
  if (r.status !== 0 || !/^\/[A-Za-z0-9._/+-]+$/.test(path)) throw new Error(`cannot find the real ${tool} (${path || r.stderr})`);
  return path;
}

let built: string | undefined;

/** The directory of wrappers, built once per test process. */
export function fakeToolsDir(): string {
  if (built && existsSync(built)) return built;
  const dir = mkdtempSync(join(tmpdir(), "sg-faketools-"));
  for (const tool of FAULT_TOOLS) {
    const file = join(dir, tool);
    writeFileSync(file, wrapper(tool, realPath(tool)));
    chmodSync(file, 0o755);
  }
  built = dir;
  return dir;
}

/** Removes the wrappers (after the file's last trial). */
export function removeFakeTools(): void {
  if (built) rmSync(built, { recursive: true, force: true });
  built = undefined;
}

/** A fault to inject: call `n` of `tool` fails (and with `onwards`, every later call too: a tool that stays broken). */
export interface Fault { tool: FaultTool; n: number; onwards?: boolean }

/** The environment of a swarmgate process whose tool calls are counted in `countDir` (and one of them fails). */
export function faultEnv(countDir: string, fault?: Fault): Record<string, string> {
  return {
    PATH: `${fakeToolsDir()}:${process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin"}`,
    SG_FAULT_DIR: countDir,
    SG_FAULT_TOOL: fault?.tool ?? "",
    SG_FAULT_N: fault ? String(fault.n) : "",
    SG_FAULT_ONWARDS: fault?.onwards ? "1" : "",
  };
}

/** How many times each tool was called so far in a trial. */
export function callCounts(countDir: string): Record<FaultTool, number> {
  const read = (t: FaultTool) => {
    try { return Number(readFileSync(join(countDir, `${t}.count`), "utf8").trim()) || 0; } catch { return 0; }
  };
  return Object.fromEntries(FAULT_TOOLS.map((t) => [t, read(t)])) as Record<FaultTool, number>;
}

/** How many tool calls a trial has made so far (one line each in the log, plus the failure notes). */
export function totalCalls(countDir: string): number {
  return Object.values(callCounts(countDir)).reduce((a, b) => a + b, 0);
}

/** The calls made so far, one line each (for failure reports). */
export function callLog(countDir: string): string {
  try { return readFileSync(join(countDir, "calls.log"), "utf8"); } catch { return "(no calls)"; }
}
