// One BitTorrent peer-wire connection (BEP 3) held open by a test, run inside
// a namespace with `ip netns exec NS node swarm-wire.mjs ADDR PORT INFOHASH [FROM]`
// (FROM: the local address to connect from):
// it connects, exchanges handshakes, says it is interested and waits to be
// unchoked, then keeps the connection. Each SIGUSR1 (or stdin line "get")
// asks for the first 16 KiB block of piece 0 on that same connection. It prints one line
// per event:
//   handshake PEERID_HEX | unchoked | block SHA256_HEX LENGTH | closed | error MESSAGE
// No extension bits are set, so the other side sends only BEP 3 messages.
import { createHash, randomBytes } from "node:crypto";
import { createConnection } from "node:net";
import { createInterface } from "node:readline";

const [host, port, infoHash, from] = process.argv.slice(2);
if (!host || !port || !/^[0-9a-f]{40}$/i.test(infoHash ?? "")) {
  console.error("usage: swarm-wire.mjs ADDR PORT INFOHASH_HEX [FROM]");
  process.exit(2);
}
const BLOCK = 16 * 1024;
const say = (line) => process.stdout.write(`${line}\n`);
const message = (id, payload = Buffer.alloc(0)) => {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(payload.length + 1, 0);
  head[4] = id;
  return Buffer.concat([head, payload]);
};

const s = createConnection({ host, port: Number(port), ...(from && { localAddress: from }) });
let buf = Buffer.alloc(0);
let shaken = false;
s.on("connect", () => {
  const peerId = Buffer.from(`-SG0001-${randomBytes(6).toString("hex")}`); // 20 bytes
  s.write(Buffer.concat([Buffer.from([19]), Buffer.from("BitTorrent protocol"), Buffer.alloc(8), Buffer.from(infoHash, "hex"), peerId]));
});
s.on("data", (d) => {
  buf = Buffer.concat([buf, d]);
  if (!shaken) {
    if (buf.length < 68) return;
    if (buf[0] !== 19 || buf.toString("latin1", 1, 20) !== "BitTorrent protocol" || buf.toString("hex", 28, 48) !== infoHash.toLowerCase()) {
      say("error not a handshake for this torrent");
      process.exit(1);
    }
    say(`handshake ${buf.toString("hex", 48, 68)}`);
    shaken = true;
    buf = buf.subarray(68);
    s.write(message(2)); // interested
  }
  while (buf.length >= 4) {
    const len = buf.readUInt32BE(0);
    if (buf.length < 4 + len) return;
    const id = len > 0 ? buf[4] : -1;
    const payload = buf.subarray(5, 4 + len);
    buf = buf.subarray(4 + len);
    if (id === 1) say("unchoked");
    else if (id === 7) say(`block ${createHash("sha256").update(payload.subarray(8)).digest("hex")} ${payload.length - 8}`);
  }
});
s.on("error", (e) => { say(`error ${e.message}`); process.exit(1); });
s.on("close", () => { say("closed"); process.exit(0); });
const request = () => {
  const p = Buffer.alloc(12);
  p.writeUInt32BE(0, 0); // piece
  p.writeUInt32BE(0, 4); // begin
  p.writeUInt32BE(BLOCK, 8);
  s.write(message(6, p));
};
process.on("SIGUSR1", request);
createInterface({ input: process.stdin }).on("line", (line) => { if (line.trim() === "get") request(); });
