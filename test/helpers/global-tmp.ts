// One temporary directory for the whole run: every test's mkdtemp (and every
// program a test starts, which inherits TMPDIR) lands below it, and it is
// removed when the run ends, whether the tests passed or not.
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), "sg-test-run-"));
  // As /tmp is: tests run clients and probes as other users, below directories they make here.
  chmodSync(dir, 0o1777);
  process.env.TMPDIR = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}
