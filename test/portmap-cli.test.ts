// `swarmgate portmap` against Debian's real miniupnpd (test/helpers/portmap-lab.mjs):
// the client namespace has a vpn policy applied whose tunnel is its link to
// the gateway. portmap must obtain the mapping, open the mapped port in the
// firewall in place, tell the client (here a --hook that records the port),
// show the mapping in status, and a peer on the far side must then reach the
// client through the gateway's external address. After miniupnpd restarts
// the mapping must be renewed or made again by the new daemon.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, expect, test } from "vitest";
import { createWorld, EXTERNAL, INSIDE, type World } from "./helpers/portmap-lab.mjs";
import { MAIN, ROOT } from "./helpers/cli-in-netns.js";

const PROBE = join(ROOT, "test", "helpers", "tcp-probe.mjs");
const ready = process.getuid?.() === 0 && existsSync("/usr/sbin/miniupnpd");
let world: World | undefined;
const children: ChildProcess[] = [];

beforeAll(async () => { if (ready) world = await createWorld(`cli${process.pid % 10000}`); }, 60_000);
afterAll(async () => { for (const c of children) c.kill("SIGKILL"); await world?.destroy(); });

function inNs(ns: string, args: string[]): ChildProcess {
  const child = spawn("ip", ["netns", "exec", ns, ...args], { stdio: ["pipe", "pipe", "pipe"] });
  children.push(child);
  return child;
}

/** Every line a child prints, kept, so that waiting for one never loses another. */
function lines(child: ChildProcess) {
  const seen: string[] = [];
  const waiting: (() => void)[] = [];
  createInterface({ input: child.stdout! }).on("line", (l) => { seen.push(l); for (const w of waiting.splice(0)) w(); });
  let from = 0;
  return (pattern: RegExp, ms = 15_000): Promise<string> => new Promise((resolve, reject) => {
    const look = () => {
      const i = seen.findIndex((l, k) => k >= from && pattern.test(l));
      if (i >= 0) { from = i + 1; clearTimeout(timer); resolve(seen[i]!); return; }
      waiting.push(look);
    };
    const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} in ${ms} ms; saw:\n${seen.join("\n")}`)), ms);
    look();
  });
}

async function cli(ns: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = inNs(ns, [process.execPath, MAIN, ...args]);
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => { stdout += d; });
  child.stderr!.on("data", (d) => { stderr += d; });
  const code = await new Promise<number | null>((r) => child.on("close", r));
  return { code, stdout, stderr };
}

test.skipIf(!ready)("portmap maps the client's port at the real miniupnpd, opens it in place, moves the client, and maps again after a restart", async () => {
  const w = world!;
  const cl = w.ns.cl;
  // A physical interface beside the "tunnel" (the link to the gateway), inside the client namespace only.
  for (const args of [["link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"], ["addr", "add", "192.168.99.2/24", "dev", "eth0"], ["link", "set", "eth0", "up"], ["link", "set", "eth0p", "up"]]) {
    await new Promise<void>((done, fail) => { const c = inNs(cl, ["ip", ...args]); c.on("close", (code) => (code === 0 ? done() : fail(new Error(`ip ${args.join(" ")}`)))); });
  }
  await w.startMiniupnpd();
  const root = mkdtempSync(join(tmpdir(), "sg-portmap-"));
  mkdirSync(join(root, "etc"));
  writeFileSync(join(root, "etc", "passwd"), "root:x:0:0::/root:/bin/sh\n");
  const conf = join(root, "root", ".config", "qBittorrent", "qBittorrent.conf");
  mkdirSync(join(root, "root", ".config", "qBittorrent"), { recursive: true });
  writeFileSync(conf, "[BitTorrent]\nSession\\Port=41001\n");
  // The hook is the "client": it writes the port it is told into the client's config, as qBittorrent would.
  const hook = join(root, "set-port.sh");
  writeFileSync(hook, `#!/bin/sh\nprintf '[BitTorrent]\\nSession\\\\Port=%s\\n' "$1" > '${conf}'\necho "$1" >> '${join(root, "ports")}'\n`);
  chmodSync(hook, 0o755);
  const policy = join(root, "policy.yaml");
  writeFileSync(policy, `version: 1
host:
  interface: eth0
  addresses: [192.168.99.2/24]
clients:
  - {name: qb, ports: auto}
outbound:
  peers: true
  dns: [192.168.99.1]
vpn:
  interface: sgpcl
  endpoints: ["${INSIDE}:51820/udp"]
  scope: machine
  port_forwarding: {protocol: natpmp, gateway: ${INSIDE}}
`);
  const sd = mkdtempSync(join(tmpdir(), "sg-state-"));
  const common = ["--clients-root", root, "--state-dir", sd];
  const applied = await cli(cl, ["apply", policy, "-b", "nft", ...common]);
  expect(applied.code, applied.stderr).toBe(0);

  const server = inNs(cl, [process.execPath, PROBE, "serve", "41001"]);
  await lines(server)(/ready/);
  const portmap = inNs(cl, [process.execPath, MAIN, "portmap", policy, "--lifetime", "4", "--hook", hook, ...common]);
  let log = "";
  portmap.stderr!.on("data", (d) => { log += d; });
  const line = lines(portmap);
  const first = await line( /→ client qb listens on 41001; firewall/);
  expect(first).toMatch(/mapped by NAT-PMP at 192\.168\.77\.1 \(100\.128\.77\.1:41001\)/);
  expect(readFileSync(join(root, "ports"), "utf8").trim()).toBe("41001");
  const set = await cli(cl, ["status", policy, "--json", ...common]);
  const status = JSON.parse(set.stdout);
  expect(status.portmap).toMatchObject({ protocol: "natpmp", externalAddress: EXTERNAL, externalPort: 41001, client: "qb" });
  expect(status.drift.inSync).toBe(true);
  // A peer beyond the gateway reaches the client through the external address: the mapping and the firewall agree.
  const peer = inNs(w.ns.out, [process.execPath, PROBE, "try", EXTERNAL, "41001", "6000"]);
  expect(await new Promise((r) => peer.on("close", r))).toBe(0);

  // miniupnpd restarts: the mapping is renewed or made again by the new daemon (status shows the answer), and still reaches.
  await w.stopMiniupnpd();
  const restarted = Date.now();
  await w.startMiniupnpd();
  const answeredSince = async () => {
    for (let i = 0; i < 90; i++) {
      const r = JSON.parse((await cli(cl, ["status", policy, "--json", ...common])).stdout).portmap;
      if (r && Date.parse(r.obtainedAt) > restarted && !r.failures) return r;
      await new Promise((res) => setTimeout(res, 500));
    }
    throw new Error(`no answered renewal after the restart; portmap said:\n${log}`);
  };
  expect(await answeredSince()).toMatchObject({ externalPort: 41001, externalAddress: EXTERNAL });
  const again = inNs(w.ns.out, [process.execPath, PROBE, "try", EXTERNAL, "41001", "6000"]);
  expect(await new Promise((r) => again.on("close", r))).toBe(0);

  portmap.kill("SIGTERM");
  await line(/stopped; the mapping is deleted/, 10_000);
  expect(existsSync(join(sd, "portmap.json"))).toBe(false);
  expect(log).toBe("");
}, 120_000);
