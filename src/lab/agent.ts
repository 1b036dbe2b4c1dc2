// The probe agent: one Node process per sandbox namespace (started with
// `ip netns exec`, since Node cannot switch namespaces itself). It reads JSON
// commands on stdin and answers with JSON lines on stdout:
//   {id, op:"listen", proto, port, addresses} → {id, ok}
//   {id, op:"tcp"|"udp", host, port, bind?, sport?, timeout}
//                                           → {id, result:"open", by, seenFrom} | {id, result:"blocked"|"refused"|"error", detail}
//   {id, op:"ping", host, bind?, timeout}   → {id, result:"open"|"blocked"}
//   {id, op:"fire", proto, host, port, bind, sport} → {id, sent}  (one packet, no waiting)
// Listeners answer every TCP connection and UDP datagram with their node name
// and the address they saw the client as, so a forwarded flow shows where it
// arrived and whether it was masqueraded.
import { spawn } from "node:child_process";
import * as dgram from "node:dgram";
import * as net from "node:net";
import { createInterface } from "node:readline";

const NODE = process.argv[2] ?? "?";

interface Command { id: number; op: string; proto?: "tcp" | "udp"; host?: string; port?: number; sport?: number; bind?: string; addresses?: string[]; timeout?: number }
type Reply = Record<string, unknown>;

const send = (r: Reply): void => { process.stdout.write(`${JSON.stringify(r)}\n`); };
const unmap = (a: string | undefined): string => (a ?? "").replace(/^::ffff:/, "");
const answer = (remote: string | undefined): string => JSON.stringify({ by: NODE, seenFrom: unmap(remote) });

function listen(c: Command): Promise<Reply> {
  return new Promise((resolve) => {
    const fail = (e: Error) => resolve({ id: c.id, ok: false, detail: e.message });
    if (c.proto === "tcp") {
      const server = net.createServer((s) => { s.on("error", () => {}); s.end(answer(s.remoteAddress)); });
      server.on("error", fail).listen({ port: c.port, host: "::", ipv6Only: false }, () => resolve({ id: c.id, ok: true }));
      return;
    }
    // One UDP socket per address: a wildcard socket would answer from whichever
    // address routing picks, and the client (and conntrack) would not see its reply.
    let pending = c.addresses!.length;
    for (const address of c.addresses!) {
      const sock = dgram.createSocket(net.isIPv6(address) ? "udp6" : "udp4");
      sock.on("message", (_m, rinfo) => sock.send(answer(rinfo.address), rinfo.port, rinfo.address));
      sock.on("error", fail).bind({ port: c.port, address }, () => { if (--pending === 0) resolve({ id: c.id, ok: true }); });
    }
  });
}

function parseAnswer(id: number, text: string): Reply {
  try {
    const a = JSON.parse(text) as { by: string; seenFrom: string };
    return { id, result: "open", by: a.by, seenFrom: a.seenFrom };
  } catch {
    return { id, result: "error", detail: `unexpected answer ${text.slice(0, 40)}` };
  }
}

function tcp(c: Command): Promise<Reply> {
  return new Promise((resolve) => {
    let data = "";
    const s = net.connect({ host: c.host!, port: c.port!, ...(c.bind && { localAddress: c.bind }), ...(c.sport && { localPort: c.sport }) });
    const timer = setTimeout(() => { s.destroy(); resolve({ id: c.id, result: "blocked", detail: "no answer (timeout)" }); }, c.timeout);
    s.on("data", (d) => { data += d; });
    s.on("end", () => { clearTimeout(timer); resolve(parseAnswer(c.id, data)); });
    s.on("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const refused = e.code === "ECONNREFUSED";
      resolve({ id: c.id, result: refused ? "refused" : "error", detail: e.code ?? e.message });
    });
  });
}

function udp(c: Command): Promise<Reply> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket(net.isIPv6(c.host!) ? "udp6" : "udp4");
    const done = (r: Reply) => { clearTimeout(timer); sock.close(); resolve(r); };
    const timer = setTimeout(() => done({ id: c.id, result: "blocked", detail: "no answer (timeout)" }), c.timeout);
    sock.on("message", (m) => done(parseAnswer(c.id, m.toString())));
    sock.on("error", (e: NodeJS.ErrnoException) => done({ id: c.id, result: e.code === "ECONNREFUSED" ? "refused" : "error", detail: e.code ?? e.message }));
    // Like a real client (DHT, DNS), resend until answered: a first datagram can
    // be lost while neighbour discovery or ARP is still resolving the next hop.
    let resend: NodeJS.Timeout | undefined;
    sock.on("close", () => clearInterval(resend));
    sock.bind({ port: c.sport ?? 0, ...(c.bind && { address: c.bind }) }, () => {
      sock.connect(c.port!, c.host!, () => {
        sock.send("probe");
        resend = setInterval(() => sock.send("probe"), 300);
      });
    });
  });
}

function ping(c: Command): Promise<Reply> {
  return new Promise((resolve) => {
    const wait = String(Math.max(1, Math.ceil((c.timeout ?? 1000) / 1000)));
    const from = c.bind ? ["-I", c.bind] : [];
    const p = spawn("ping", [net.isIPv6(c.host!) ? "-6" : "-4", "-n", "-c", "1", "-W", wait, ...from, c.host!], { stdio: "ignore" });
    p.on("error", (e) => resolve({ id: c.id, result: "error", detail: e.message }));
    p.on("close", (code) => resolve({ id: c.id, result: code === 0 ? "open" : "blocked", detail: code === 0 ? "echo reply" : "no echo reply" }));
  });
}

/**
 * Sends one packet that opens a connection (a TCP SYN, a UDP datagram, an
 * ICMP echo request) and does not wait for an answer: the far side's capture
 * tells whether it arrived. Replies {sent:false} when the source address or
 * port cannot be bound.
 */
const UNSENT = new Set(["EADDRINUSE", "EADDRNOTAVAIL", "EINVAL"]);

function fire(c: Command): Promise<Reply> {
  return new Promise((resolve) => {
    if (c.proto === "tcp") {
      const s = net.connect({ host: c.host!, port: c.port!, ...(c.bind && { localAddress: c.bind }), ...(c.sport && { localPort: c.sport }) });
      const settle = setTimeout(() => resolve({ id: c.id, sent: true }), 50);
      s.on("error", (e: NodeJS.ErrnoException) => {
        // Only a failed bind means nothing went out; refused (a RST came back)
        // and EPERM (this machine's own firewall dropped it) are packets sent.
        if (UNSENT.has(e.code ?? "")) { clearTimeout(settle); resolve({ id: c.id, sent: false, detail: e.code }); }
      });
      setTimeout(() => s.destroy(), 400);
    } else if (c.proto === "udp") {
      const sock = dgram.createSocket(net.isIPv6(c.host!) ? "udp6" : "udp4");
      sock.on("error", (e: NodeJS.ErrnoException) => { sock.close(); resolve({ id: c.id, sent: !UNSENT.has(e.code ?? ""), detail: e.code }); });
      sock.bind({ port: c.sport ?? 0, ...(c.bind && { address: c.bind }) }, () => {
        sock.send("probe", c.port!, c.host!, (e) => {
          sock.close();
          resolve({ id: c.id, sent: !e || !UNSENT.has((e as NodeJS.ErrnoException).code ?? ""), ...(e && { detail: e.message }) });
        });
      });
    } else {
      ping({ ...c, timeout: 1000 }).then(() => {}, () => {});
      resolve({ id: c.id, sent: true });
    }
  });
}

const ops: Record<string, (c: Command) => Promise<Reply>> = { listen, tcp, udp, ping, fire };

createInterface({ input: process.stdin }).on("line", (line) => {
  const c = JSON.parse(line) as Command;
  const op = ops[c.op];
  if (!op) { send({ id: c.id, result: "error", detail: `unknown op ${c.op}` }); return; }
  op(c).then(send, (e: Error) => send({ id: c.id, result: "error", detail: e.message }));
}).on("close", () => process.exit(0));
send({ id: 0, ready: NODE });
