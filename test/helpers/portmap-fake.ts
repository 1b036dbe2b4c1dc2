// A fake clock and a fake NAT-PMP/PCP gateway for the mapper's tests. The
// gateway builds its replies byte by byte from the RFCs' layouts (not with the
// encoders under test) and keeps mappings the way RFC 6886 §3.3 asks: an
// existing mapping of the same internal port is returned as it is.

import type { Clock, Datagram, Transport } from "../../src/portmap/client.js";

export class FakeClock implements Clock {
  private t = 1_000_000;
  private seq = 0;
  private timers: { at: number; id: number; fn: () => void }[] = [];

  now(): number {
    return this.t;
  }

  setTimer(ms: number, fn: () => void): () => void {
    const id = this.seq++;
    this.timers.push({ at: this.t + ms, id, fn });
    return () => {
      this.timers = this.timers.filter((x) => x.id !== id);
    };
  }

  /** Runs every timer due within ms, in order, letting promises settle between them. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await settle();
      const due = this.timers.filter((x) => x.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (due === undefined) break;
      this.timers = this.timers.filter((x) => x !== due);
      this.t = due.at;
      due.fn();
    }
    this.t = end;
    await settle();
  }
}

export async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
}

export interface Sent {
  readonly at: number;
  readonly bytes: Uint8Array;
}

const GATEWAY = "192.168.77.1";
const CLIENT = "192.168.77.2";

export class FakeGateway implements Transport {
  readonly gateway = GATEWAY;
  sent: Sent[] = [];
  /** "both": NAT-PMP and PCP; "natpmp-only": answers PCP with NAT-PMP's UNSUPPORTED_VERSION; "silent-pcp": ignores PCP. */
  mode: "both" | "natpmp-only" | "silent-pcp" = "both";
  drop = false;
  /** Result code for the next mapping requests (one each), then SUCCESS again. */
  failures: number[] = [];
  externalAddress = "100.128.77.1";
  taken = { udp: new Set<number>(), tcp: new Set<number>() };
  maps = new Map<string, number>();
  /** Epochs to answer with next (one each), before the true one. */
  epochs: number[] = [];
  /** Cap on granted lifetimes (seconds). */
  maxLifetime = Infinity;
  private start: number;
  private handler: ((d: Datagram) => void) | undefined;

  constructor(private readonly clock: FakeClock) {
    this.start = clock.now();
  }

  localAddress(): string {
    return CLIENT;
  }

  onReceive(h: ((d: Datagram) => void) | undefined): void {
    this.handler = h;
  }

  close(): void {}

  /** Loses every mapping and starts a new epoch. */
  restart(): void {
    this.start = this.clock.now();
    this.maps.clear();
  }

  /** Requests sent since index `from`, decoded to a short text each. */
  requests(from = 0): string[] {
    return this.sent.slice(from).map((s) => describe(s.bytes));
  }

  send(bytes: Uint8Array): void {
    this.sent.push({ at: this.clock.now(), bytes: Uint8Array.from(bytes) });
    if (this.drop) return;
    const reply = this.answer(bytes);
    if (reply === undefined) return;
    queueMicrotask(() => this.handler?.({ bytes: reply, from: { address: GATEWAY, port: 5351 } }));
  }

  private epoch(): number {
    return this.epochs.shift() ?? Math.floor((this.clock.now() - this.start) / 1000);
  }

  private answer(req: Uint8Array): Uint8Array | undefined {
    const v = new DataView(req.buffer, req.byteOffset, req.byteLength);
    if (req[0] === 0) return this.natpmp(req, v);
    if (this.mode === "silent-pcp") return undefined;
    if (this.mode === "natpmp-only") return bytes(0, 128 + req[1]!, 0, 1, ...u32(this.epoch()));
    const protocol = req[36] === 17 ? "udp" : "tcp";
    const iport = v.getUint16(40);
    const lifetime = v.getUint32(4);
    const rc = this.failures.shift() ?? 0;
    let eport = 0;
    let granted = 0;
    if (rc === 0 && lifetime === 0) this.maps.delete(`${protocol}:${iport}`);
    else if (rc === 0) {
      eport = this.allocate(protocol, iport, v.getUint16(42));
      granted = Math.min(lifetime, this.maxLifetime);
    }
    const out = Uint8Array.from(req);
    out[1] = 0x80 | req[1]!;
    out[2] = 0;
    out[3] = rc;
    out.set(u32(granted), 4);
    out.set(u32(this.epoch()), 8);
    out.fill(0, 12, 24);
    out.set([eport >> 8, eport & 255], 42);
    out.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...this.externalAddress.split(".").map(Number)], 44);
    return out;
  }

  private natpmp(req: Uint8Array, v: DataView): Uint8Array {
    const op = req[1]!;
    if (op === 0) return bytes(0, 128, 0, 0, ...u32(this.epoch()), ...this.externalAddress.split(".").map(Number));
    const protocol = op === 1 ? "udp" : "tcp";
    const iport = v.getUint16(4);
    const lifetime = v.getUint32(8);
    const rc = this.failures.shift() ?? 0;
    if (rc !== 0) return bytes(0, 128 + op, 0, rc, ...u32(this.epoch()), iport >> 8, iport & 255, 0, 0, 0, 0, 0, 0);
    let eport = 0;
    let granted = 0;
    if (lifetime === 0) this.maps.delete(`${protocol}:${iport}`);
    else {
      eport = this.allocate(protocol, iport, v.getUint16(6));
      granted = Math.min(lifetime, this.maxLifetime);
    }
    return bytes(0, 128 + op, 0, 0, ...u32(this.epoch()), iport >> 8, iport & 255, eport >> 8, eport & 255, ...u32(granted));
  }

  private allocate(protocol: "udp" | "tcp", iport: number, suggested: number): number {
    const key = `${protocol}:${iport}`;
    const existing = this.maps.get(key);
    if (existing !== undefined) return existing;
    let p = suggested || iport;
    while (this.taken[protocol].has(p)) p++;
    this.maps.set(key, p);
    return p;
  }
}

function bytes(...xs: number[]): Uint8Array {
  return Uint8Array.from(xs);
}

function u32(n: number): number[] {
  return [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
}

function describe(b: Uint8Array): string {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b[0] === 0 && b[1] === 0) return "natpmp addr";
  if (b[0] === 0) return `natpmp ${b[1] === 1 ? "udp" : "tcp"} ${v.getUint16(4)}->${v.getUint16(6)} life ${v.getUint32(8)}`;
  return `pcp ${b[36] === 17 ? "udp" : "tcp"} ${v.getUint16(40)}->${v.getUint16(42)} life ${v.getUint32(4)}`;
}
