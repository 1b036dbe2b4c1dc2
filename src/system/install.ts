// Persistence: a systemd unit that applies the policy at boot, before the
// network comes up (network-pre.target), and an /etc/swarmgate/policy.yaml
// when there is none. `root` prefixes every path so tests never touch /etc.
import { copyFileSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { userError } from "../errors.js";
import { writeFilesAtomically } from "./files.js";

export const UNIT_NAME = "swarmgate.service";
export const POLICY_PATH = "/etc/swarmgate/policy.yaml";

export interface InstallPaths { root: string; unitDir: string; policy: string; stateDir: string }

export function installPaths(root = "/", stateDir = "/var/lib/swarmgate"): InstallPaths {
  return { root, unitDir: join(root, "etc/systemd/system"), policy: join(root, POLICY_PATH), stateDir };
}

export function unitText(policy: string, stateDir: string, backend?: string): string {
  const main = fileURLToPath(new URL("../cli/main.js", import.meta.url));
  const cli = `${process.execPath} ${main}`;
  const b = backend ? ` --backend ${backend}` : "";
  return `# Installed by swarmgate install; swarmgate uninstall removes it.
[Unit]
Description=swarmgate firewall (${policy})
Documentation=file://${resolve(dirname(main), "../../README.md")}
DefaultDependencies=no
Wants=network-pre.target
Before=network-pre.target shutdown.target
After=local-fs.target
Conflicts=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
# At boot nobody is logged in over SSH: the lockout guard has nothing to protect.
ExecStart=${cli} apply ${policy} --force --state-dir ${stateDir}${b}
ExecReload=${cli} apply ${policy} --force --state-dir ${stateDir}${b}
ExecStop=${cli} stop --state-dir ${stateDir}

[Install]
WantedBy=sysinit.target
`;
}

export function install(paths: InstallPaths, policyFrom: string | undefined, backend?: string): { unit: string; policyWritten: boolean } {
  try {
    let policyWritten = false;
    if (!existsSync(paths.policy)) {
      const from = policyFrom ?? fileURLToPath(new URL("../../examples/standalone.yaml", import.meta.url));
      mkdirSync(dirname(paths.policy), { recursive: true });
      copyFileSync(from, paths.policy);
      policyWritten = true;
    }
    mkdirSync(paths.unitDir, { recursive: true });
    const unit = join(paths.unitDir, UNIT_NAME);
    // The unit names the policy where it will be at boot, without the test root.
    writeFilesAtomically([{ path: unit, text: unitText(POLICY_PATH === paths.policy ? POLICY_PATH : paths.policy, paths.stateDir, backend) }]);
    return { unit, policyWritten };
  } catch (e) {
    if ((e as { code?: string }).code === "OUTPUT_WRITE") throw e;
    throw userError("INSTALL_FAILED", `cannot install: ${(e as Error).message}`);
  }
}

export function uninstall(paths: InstallPaths): string | undefined {
  const unit = join(paths.unitDir, UNIT_NAME);
  if (!existsSync(unit)) return undefined;
  rmSync(unit);
  return unit;
}
