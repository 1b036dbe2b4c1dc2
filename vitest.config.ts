import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Namespace tests spawn real tools; give them room but keep the suite fast.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    globalSetup: ["./test/helpers/global-tmp.ts"],
    reporters: ["default", "./test/summary-reporter.ts"],
  },
});
