// Runs one PortMapper (the built one, from dist/) inside a namespace for the
// real-gateway tests and the bench: options as JSON in argv[2]; every event
// is printed as one JSON line; stdin "state" prints the state, "stop" stops
// the mapper (deleting its mappings) and exits.

import { createInterface } from "node:readline";
import { PortMapper } from "../../dist/portmap/index.js";

const options = JSON.parse(process.argv[2] ?? "{}");
const print = (msg) => process.stdout.write(`${JSON.stringify({ at: Date.now(), ...msg })}\n`);
const mapper = new PortMapper({ ...options, onEvent: (event) => print({ event }) });
mapper.start();
print({ started: true });

const input = createInterface({ input: process.stdin });
// The test or bench that started us is gone: delete the mappings and go too.
input.on("close", async () => {
  await mapper.stop();
  process.exit(0);
});
input.on("line", async (line) => {
  if (line === "state") print({ state: mapper.state() });
  if (line === "stop") {
    await mapper.stop();
    print({ exit: true });
    process.exit(0);
  }
});
process.on("SIGTERM", async () => {
  await mapper.stop();
  process.exit(0);
});
