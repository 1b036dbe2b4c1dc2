// The UDP side of NAT-PMP and PCP: one socket connected to the gateway's
// port 5351 (so the kernel already drops datagrams from anyone else), and a
// request/reply exchange that retransmits on the RFCs' schedules. Time comes
// from an injectable clock, so tests run the schedules without sleeping.

import { createSocket, type Socket } from "node:dgram";
import { NATPMP_PORT, type Decoded, type Endpoint } from "./natpmp.js";

export interface Clock {
  /** Milliseconds, on the scale of Date.now(). */
  now(): number;
  /** Calls fn after ms; returns a function that cancels it. */
  setTimer(ms: number, fn: () => void): () => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
};

export interface Datagram {
  readonly bytes: Uint8Array;
  readonly from: Endpoint;
}

export interface Transport {
  readonly gateway: string;
  /** The address our datagrams leave from (PCP puts it in every request). */
  localAddress(): string;
  send(bytes: Uint8Array): void;
  /** Sets the one receiver of arriving datagrams (undefined: drop them). */
  onReceive(handler: ((d: Datagram) => void) | undefined): void;
  close(): void;
}

/** Opens a UDP socket connected to gateway:5351 (IPv4 or IPv6 by the address). */
export function openUdpTransport(gateway: string, port = NATPMP_PORT): Promise<Transport> {
  const socket: Socket = createSocket(gateway.includes(":") ? "udp6" : "udp4");
  let handler: ((d: Datagram) => void) | undefined;
  // ICMP errors (port unreachable while the daemon restarts) surface here; a
  // lost reply is what the retransmission schedule is for, so they are not fatal.
  socket.on("error", () => {});
  socket.on("message", (msg, rinfo) => {
    handler?.({ bytes: new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength), from: rinfo });
  });
  return new Promise((resolve, reject) => {
    socket.once("error", reject);
    socket.connect(port, gateway, () => {
      socket.off("error", reject);
      resolve({
        gateway,
        localAddress: () => socket.address().address,
        send: (bytes) => socket.send(bytes, (err) => void err),
        onReceive: (h) => {
          handler = h;
        },
        close: () => {
          handler = undefined;
          try {
            socket.close();
          } catch {
            // already closed
          }
        },
      });
    });
  });
}

/** Milliseconds to wait after send number `attempt` (0-based), or undefined to give up. */
export type RetransmitSchedule = (attempt: number) => number | undefined;

/** RFC 6886 §3.1: 250 ms, doubling, 9 tries in all by default. */
export function natpmpSchedule(tries = 9): RetransmitSchedule {
  return (attempt) => (attempt < tries ? 250 * 2 ** attempt : undefined);
}

/**
 * RFC 6887 §8.1.1: IRT 3 s, RT doubles with ±10% jitter, capped at MRT
 * (jittered too); MRC and MRD 0, so it never gives up unless `tries` says so.
 * MRT is the RFC's 1024 s unless `maxMs` is less: the mapper passes half the
 * mapping's lifetime, since a mapping that lapsed during an outage should
 * come back within half a lifetime of the gateway's return, not 17 minutes.
 */
export function pcpSchedule(random: () => number = Math.random, tries = Infinity, maxMs = 1024_000): RetransmitSchedule {
  const IRT = 3000;
  const MRT = Math.max(IRT, Math.min(1024_000, maxMs));
  const rand = () => 1 + (random() * 0.2 - 0.1);
  let rt = 0;
  return (attempt) => {
    if (attempt >= tries) return undefined;
    rt = attempt === 0 ? rand() * IRT : rand() * 2 * rt;
    if (rt > MRT) rt = rand() * MRT;
    return Math.round(rt);
  };
}

export class NoReplyError extends Error {
  constructor(readonly tries: number) {
    super(`no reply from the gateway after ${tries} tries`);
    this.name = "NoReplyError";
  }
}

export class AbortedError extends Error {
  constructor() {
    super("aborted");
    this.name = "AbortedError";
  }
}

export interface ExchangeOptions<T> {
  readonly transport: Transport;
  readonly clock: Clock;
  readonly request: Uint8Array;
  /** Decodes and checks a datagram; a rejected one is ignored (and reported). */
  readonly accept: (d: Datagram) => Decoded<T>;
  readonly schedule: RetransmitSchedule;
  readonly signal?: AbortSignal | undefined;
  readonly onRejected?: ((d: Datagram, reason: string) => void) | undefined;
}

/** Sends `request` until an acceptable reply arrives or the schedule gives up. */
export function exchange<T>(o: ExchangeOptions<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let attempt = 0;
    let cancelTimer = () => {};
    const finish = (fn: () => void) => {
      cancelTimer();
      o.transport.onReceive(undefined);
      o.signal?.removeEventListener("abort", onAbort);
      fn();
    };
    const onAbort = () => finish(() => reject(new AbortedError()));
    if (o.signal?.aborted) return reject(new AbortedError());
    o.signal?.addEventListener("abort", onAbort);
    o.transport.onReceive((d) => {
      const r = o.accept(d);
      if (r.ok) finish(() => resolve(r.value));
      else o.onRejected?.(d, `${r.code}: ${r.message}`);
    });
    const sendNext = () => {
      const wait = o.schedule(attempt);
      if (wait === undefined) return finish(() => reject(new NoReplyError(attempt)));
      attempt++;
      o.transport.send(o.request);
      cancelTimer = o.clock.setTimer(wait, sendNext);
    };
    sendNext();
  });
}
