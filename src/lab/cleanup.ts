// Teardown that must happen even on Ctrl-C: pending cleanups run on SIGINT and
// SIGTERM before the process exits.
const pending = new Set<() => Promise<void>>();
let installed = false;

export function onInterrupt(cleanup: () => Promise<void>): () => void {
  pending.add(cleanup);
  if (!installed) {
    installed = true;
    for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
      process.once(signal, () => {
        process.stderr.write(`\nswarmgate: ${signal}, removing the sandbox\n`);
        void Promise.allSettled([...pending].map((c) => c())).then(() => process.exit(130));
      });
    }
  }
  return () => { pending.delete(cleanup); };
}
