// Ends the run with one plain line, "tests: N passed, N failed", that any CI can read.
import type { Reporter } from "vitest/reporters";
import type { RunnerTestFile, RunnerTask } from "vitest";

function count(tasks: RunnerTask[], acc = { passed: 0, failed: 0, skipped: 0 }) {
  for (const t of tasks) {
    if (t.type === "suite") count(t.tasks, acc);
    else if (t.result?.state === "pass") acc.passed++;
    else if (t.result?.state === "fail") acc.failed++;
    else acc.skipped++;
  }
  return acc;
}

export default class SummaryReporter implements Reporter {
  onFinished(files: RunnerTestFile[] = []): void {
    const { passed, failed, skipped } = count(files);
    process.stdout.write(`\ntests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}\n`);
  }
}
