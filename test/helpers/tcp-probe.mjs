// Real TCP connections for kernel tests, run inside a namespace with
// `ip netns exec NS node tcp-probe.mjs …`:
//   serve PORT…          echo server on every port (IPv4 and IPv6); prints "ready"
//   try ADDR PORT MS     one new connection: exit 0 when it opens within MS, 1 otherwise
//   hold ADDR PORT       one connection kept open: prints "open", then echoes each
//                        stdin line through it and prints what came back ("echo LINE")
import { createConnection, createServer } from "node:net";
import { createInterface } from "node:readline";

const [mode, ...rest] = process.argv.slice(2);
if (mode === "serve") {
  let waiting = rest.length;
  for (const port of rest.map(Number)) {
    createServer((s) => s.pipe(s)).listen({ port, host: "::", ipv6Only: false }, () => { if (--waiting === 0) console.log("ready"); });
  }
} else if (mode === "try") {
  const [host, port, ms] = rest;
  const s = createConnection({ host, port: Number(port) });
  const timer = setTimeout(() => { s.destroy(); process.exit(1); }, Number(ms));
  s.on("connect", () => { clearTimeout(timer); s.end(); process.exit(0); });
  s.on("error", () => process.exit(1));
} else if (mode === "hold") {
  const [host, port] = rest;
  const s = createConnection({ host, port: Number(port) });
  s.setEncoding("utf8");
  s.on("connect", () => console.log("open"));
  s.on("data", (d) => { for (const line of d.split("\n").filter(Boolean)) console.log(`echo ${line}`); });
  s.on("error", (e) => { console.log(`error ${e.message}`); process.exit(1); });
  s.on("close", () => process.exit(0));
  createInterface({ input: process.stdin }).on("line", (line) => s.write(`${line}\n`));
} else {
  console.error("usage: tcp-probe.mjs serve PORT… | try ADDR PORT MS | hold ADDR PORT");
  process.exit(2);
}
