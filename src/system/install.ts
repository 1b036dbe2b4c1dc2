// Persistence: a systemd unit that applies the policy at boot, before the
// network comes up (network-pre.target), and an /etc/swarmgate/policy.yaml
// when there is none. `root` prefixes every path written (for images and
// tests); the unit names every path as it will be at boot, without the root.
//
// Nothing reaches the unit unquoted: each argument of a command line is
// written per systemd.service(5), "COMMAND LINES" (a double-quoted word with
// `\` and `"` escaped; `$` doubled, since `$VAR` is substituted), and `%` is
// doubled everywhere, per systemd.unit(5), "SPECIFIERS". A path with a control
// character (a newline would start a new directive) is refused: INSTALL_FAILED.
import { closeSync, constants, existsSync, fstatSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { displayValue, SwarmgateError, userError, type Diagnostic } from "../errors.js";
import { loadPolicy, MAX_POLICY_BYTES } from "../policy/load.js";
import { writeFilesAtomically } from "./files.js";

export const UNIT_NAME = "swarmgate.service";
export const FOLLOW_UNIT_NAME = "swarmgate-follow.service";
export const PORTMAP_UNIT_NAME = "swarmgate-portmap.service";
export const POLICY_PATH = "/etc/swarmgate/policy.yaml";

export interface InstallPaths { root: string; unitDir: string; policy: string; stateDir: string }

export function installPaths(root = "/", stateDir = "/var/lib/swarmgate"): InstallPaths {
  return { root, unitDir: join(root, "etc/systemd/system"), policy: join(root, POLICY_PATH), stateDir };
}

/** One word of an ExecStart= line; plain words stay plain so the unit reads well. */
export function systemdArg(value: string): string {
  if (/^[A-Za-z0-9_/.,:@+=-]+$/.test(value)) return value;
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`).replace(/[%$]/g, (c) => c + c)}"`;
}

/** Refuses a path that would break the unit's line structure. */
function checkPath(what: string, path: string): void {
  if (/[\x00-\x1f\x7f-\x9f\u2028\u2029]/u.test(path)) {
    throw userError("INSTALL_FAILED", `the ${what} "${displayValue(path, 200)}" contains a control character; nothing was written`);
  }
}

function cliPaths() {
  const main = fileURLToPath(new URL("../cli/main.js", import.meta.url));
  return { node: process.execPath, main, readme: resolve(dirname(main), "../../README.md") };
}

export function unitText(policy: string, stateDir: string, backend?: string): string {
  const { node, main, readme } = cliPaths();
  for (const [what, path] of [["policy path", policy], ["state directory", stateDir], ["node path", node], ["swarmgate path", main], ["README path", readme]] as const) checkPath(what, path);
  if (backend !== undefined && backend !== "nft" && backend !== "iptables") throw userError("INSTALL_FAILED", `unknown backend "${displayValue(backend)}"`);
  const line = (...args: string[]) => [node, main, ...args].map(systemdArg).join(" ");
  const apply = line("apply", policy, "--force", "--state-dir", stateDir, ...(backend ? ["--backend", backend] : []));
  // A file: URL has no spaces (they are %20), and each % is then doubled for systemd.
  const doc = pathToFileURL(readme).href.replace(/%/g, "%%");
  return `# Installed by swarmgate install; swarmgate uninstall removes it.
[Unit]
Description=swarmgate firewall (${policy.replace(/%/g, "%%")})
Documentation=${doc}
DefaultDependencies=no
Wants=network-pre.target
Before=network-pre.target shutdown.target
After=local-fs.target
Conflicts=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
# At boot nobody is logged in over SSH: the lockout guard has nothing to protect.
ExecStart=${apply}
ExecReload=${apply}
ExecStop=${line("stop", "--state-dir", stateDir)}

[Install]
WantedBy=sysinit.target
`;
}

/** A long-running command beside the firewall unit (follow, portmap): started after it, stopped with it, restarted when it fails. */
export function followUnitText(policy: string, stateDir: string, command: "follow" | "portmap" = "follow"): string {
  const { node, main, readme } = cliPaths();
  for (const [what, path] of [["policy path", policy], ["state directory", stateDir], ["node path", node], ["swarmgate path", main], ["README path", readme]] as const) checkPath(what, path);
  const doc = pathToFileURL(readme).href.replace(/%/g, "%%");
  const what = command === "follow" ? "the firewall follows the BitTorrent clients' ports" : "the VPN provider's port forwarding for the client";
  return `# Installed by swarmgate install --${command}; swarmgate uninstall removes it.
[Unit]
Description=swarmgate ${command}: ${what} (${policy.replace(/%/g, "%%")})
Documentation=${doc}
After=${UNIT_NAME}
Requires=${UNIT_NAME}
PartOf=${UNIT_NAME}

[Service]
Type=simple
ExecStart=${[node, main, command, policy, "--state-dir", stateDir].map(systemdArg).join(" ")}
Restart=on-failure
RestartSec=5

[Install]
WantedBy=multi-user.target
`;
}

/** The policy file's bytes: a regular file, at most the loader's limit (never a FIFO that hangs). */
function readPolicyBytes(from: string): Buffer {
  let fd: number;
  try {
    fd = openSync(from, constants.O_RDONLY | constants.O_NONBLOCK); // opening a FIFO must not wait for a writer
  } catch (e) {
    throw userError("INSTALL_FAILED", `cannot read ${displayValue(from, 200)} (${(e as NodeJS.ErrnoException).code ?? "error"}); nothing was written`);
  }
  try {
    if (!fstatSync(fd).isFile()) throw userError("INSTALL_FAILED", `${displayValue(from, 200)} is not a regular file; nothing was written`);
    const buffer = Buffer.alloc(MAX_POLICY_BYTES + 1);
    let length = 0;
    for (let n = 1; n > 0 && length < buffer.length; length += n) n = readSync(fd, buffer, length, buffer.length - length, null);
    return buffer.subarray(0, length);
  } finally {
    closeSync(fd);
  }
}

/** Diagnostics about a temporary copy, told about the file the user named. */
function renamed(e: unknown, temp: string, file: string): unknown {
  if (!(e instanceof SwarmgateError)) return e;
  const fix = (d: Diagnostic): Diagnostic => (d.file === temp ? { ...d, file } : d);
  return new SwarmgateError(e.diagnostics.map(fix), e.exitCode);
}

/**
 * The policy's text, validated by the loader: the bytes are read once, and a
 * private copy of exactly those bytes is what the loader checks, so what is
 * installed is what was validated.
 */
function validatedPolicy(from: string): string {
  const bytes = readPolicyBytes(from);
  const dir = mkdtempSync(join(tmpdir(), "swarmgate-install-"));
  const copy = join(dir, "policy.yaml");
  try {
    writeFileSync(copy, bytes);
    loadPolicy(copy);
  } catch (e) {
    throw renamed(e, copy, from);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return bytes.toString("utf8"); // valid UTF-8 (the loader checked), so this round-trips exactly
}

export function install(paths: InstallPaths, policyFrom: string | undefined, backend?: string, options: { follow?: boolean; portmap?: boolean } = {}): { unit: string; followUnit?: string; portmapUnit?: string; policyWritten: boolean } {
  for (const [what, path] of [["root", paths.root], ["state directory", paths.stateDir], ["policy", policyFrom ?? ""]] as const) checkPath(what, path);
  // The unit runs with / as its working directory: a relative state directory means the one here.
  const stateDir = isAbsolute(paths.stateDir) ? paths.stateDir : resolve(paths.stateDir);
  const unit = join(paths.unitDir, UNIT_NAME);
  const files = [{ path: unit, text: unitText(POLICY_PATH, stateDir, backend) }];
  const followUnit = options.follow ? join(paths.unitDir, FOLLOW_UNIT_NAME) : undefined;
  if (followUnit) files.push({ path: followUnit, text: followUnitText(POLICY_PATH, stateDir) });
  const portmapUnit = options.portmap ? join(paths.unitDir, PORTMAP_UNIT_NAME) : undefined;
  if (portmapUnit) files.push({ path: portmapUnit, text: followUnitText(POLICY_PATH, stateDir, "portmap") });
  // An existing policy stays, but the unit would fail at boot with an invalid one.
  if (existsSync(paths.policy)) loadPolicy(paths.policy);
  else files.unshift({ path: paths.policy, text: validatedPolicy(policyFrom ?? fileURLToPath(new URL("../../examples/standalone.yaml", import.meta.url))) });
  try {
    for (const f of files) mkdirSync(dirname(f.path), { recursive: true });
  } catch (e) {
    throw userError("INSTALL_FAILED", `cannot install: ${(e as Error).message}`);
  }
  writeFilesAtomically(files); // all or none
  return { unit, ...(followUnit && { followUnit }), ...(portmapUnit && { portmapUnit }), policyWritten: files.some((f) => f.path === paths.policy) };
}

export function uninstall(paths: InstallPaths): string | undefined {
  for (const name of [FOLLOW_UNIT_NAME, PORTMAP_UNIT_NAME]) {
    const extra = join(paths.unitDir, name);
    if (existsSync(extra)) rmSync(extra);
  }
  const unit = join(paths.unitDir, UNIT_NAME);
  if (!existsSync(unit)) return undefined;
  rmSync(unit);
  return unit;
}
