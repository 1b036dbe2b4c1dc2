// Real sockets for the VPN lab (test/helpers/vpn-lab.ts), run inside a
// namespace, possibly as another user (setpriv):
//   serve TCP_PORTS UDP_PORTS ADDRS
//                               echo servers, e.g. "7001,53" "7002,53" "100.128.77.2,2001:db8:77::2":
//                               TCP on [::] (IPv4 too), UDP on each address, so that a reply
//                               leaves from the address the request went to (an unbound
//                               socket answers from the outgoing interface's address, which
//                               conntrack on the asking side does not take for a reply);
//                               prints "ready"
//   probe MS JSON               JSON: [{name, proto: "tcp"|"udp", addr, port}]; tries each
//                               target at once (a TCP echo, or a UDP datagram sent up to
//                               three times until its echo comes back) and prints
//                               {name: true|false} after at most MS milliseconds.
//   agent                       the same, many times: reads {id, ms, targets} lines on stdin
//                               and answers each with {id, results} (no process start per probe)
import { createConnection, createServer } from "node:net";
import { createSocket } from "node:dgram";
import { createInterface } from "node:readline";

const [mode, ...rest] = process.argv.slice(2);

function serve(tcpPorts, udpPorts, addrs) {
  let waiting = tcpPorts.length + udpPorts.length * addrs.length;
  const done = () => { if (--waiting === 0) console.log("ready"); };
  for (const port of tcpPorts) {
    createServer((s) => { s.on("error", () => {}); s.pipe(s); }).listen({ port, host: "::", ipv6Only: false }, done);
  }
  for (const port of udpPorts) {
    for (const addr of addrs) {
      const sock = createSocket(addr.includes(":") ? "udp6" : "udp4");
      sock.on("message", (msg, from) => sock.send(msg, from.port, from.address));
      sock.bind(port, addr, done);
    }
  }
}

// A probe's packets all belong to its own counting window: a TCP probe that got
// its echo closes the connection and waits for the close (FIN both ways) before
// it answers, and a UDP socket stays open a while to swallow late duplicate
// echoes (else the kernel answers them with port-unreachables, counted later).
function tcpProbe(addr, port, ms) {
  return new Promise((resolve) => {
    const s = createConnection({ host: addr, port });
    let done = false;
    const finish = (ok) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (!ok) { s.destroy(); resolve(false); return; }
      const cap = setTimeout(() => { s.destroy(); resolve(true); }, 300);
      s.once("close", () => { clearTimeout(cap); resolve(true); });
      s.end();
    };
    const timer = setTimeout(() => finish(false), ms);
    s.on("connect", () => s.write("sgv\n"));
    s.on("data", () => finish(true));
    s.on("error", () => finish(false));
  });
}

function udpProbe(addr, port, ms) {
  return new Promise((resolve) => {
    const sock = createSocket(addr.includes(":") ? "udp6" : "udp4");
    const timers = [];
    let done = false;
    const finish = (ok) => {
      if (done) return;
      done = true;
      for (const t of timers) clearTimeout(t);
      setTimeout(() => sock.close(), 1000);
      resolve(ok);
    };
    sock.on("message", () => finish(true));
    sock.on("error", () => {}); // EPERM from a dropping output hook: keep waiting for the timeout
    const send = () => sock.send("sgv", port, addr, () => {});
    send();
    timers.push(setTimeout(send, ms / 4), setTimeout(send, ms / 2), setTimeout(() => finish(false), ms));
  });
}

async function probeAll(ms, targets) {
  const results = await Promise.all(targets.map((t) => (t.proto === "tcp" ? tcpProbe : udpProbe)(t.addr, t.port, ms)));
  return Object.fromEntries(targets.map((t, i) => [t.name, results[i]]));
}

if (mode === "serve") {
  const ports = (s) => (s ? s.split(",").filter(Boolean).map(Number) : []);
  serve(ports(rest[0]), ports(rest[1]), rest[2].split(","));
} else if (mode === "probe") {
  const ms = Number(rest[0]);
  const targets = JSON.parse(rest[1]);
  console.log(JSON.stringify(await probeAll(ms, targets)));
  process.exit(0);
} else if (mode === "agent") {
  createInterface({ input: process.stdin }).on("line", async (line) => {
    const { id, ms, targets } = JSON.parse(line);
    console.log(JSON.stringify({ id, results: await probeAll(ms, targets) }));
  }).on("close", () => process.exit(0));
  console.log(JSON.stringify({ ready: true }));
} else {
  console.error("usage: vpn-probe.mjs serve TCP_PORTS UDP_PORTS ADDRS | probe MS JSON | agent");
  process.exit(2);
}
