import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Namespace tests spawn real tools; give them room but keep the suite fast.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Most tests wait on the kernel, real programs and timeouts, not on the CPU: three at a time on two cores.
    maxWorkers: 3,
    minWorkers: 1,
    globalSetup: ["./test/helpers/global-tmp.ts"],
    reporters: ["default", "./test/summary-reporter.ts"],
  },
});
