// The long-running side of port mapping: keep one UDP and one TCP mapping of
// an internal port on the same external port, renew them at half their
// lifetime, never give up on loss or error (back off and try again), notice a
// gateway that lost its state (epoch, changed port or address) and map again,
// speak PCP when the gateway does and NAT-PMP otherwise, and delete the
// mappings on stop. Sockets and time come in through `openTransport` and
// `clock`, so tests drive it with a fake gateway and a fake clock.

import { randomBytes } from "node:crypto";
import { parseAddress } from "../net/address.js";
import {
  AbortedError,
  NoReplyError,
  natpmpSchedule,
  openUdpTransport,
  pcpSchedule,
  systemClock,
  type Clock,
  type Transport,
} from "./client.js";
import { checkPort, checkU32, natpmpEpochLost, type EpochSample, type TransportProtocol } from "./natpmp.js";
import { pcpEpochLost } from "./pcp.js";
import { NotPcpError, natpmpExternalAddress, natpmpMap, pcpMap, type PortmapProtocol, type RequestContext } from "./requests.js";


export interface Mapping {
  readonly protocol: PortmapProtocol;
  readonly externalAddress: string;
  /** The UDP mapping's external port (the one to listen on and open). */
  readonly externalPort: number;
  /** The TCP mapping's; equal to externalPort unless the gateway refused to make them equal. */
  readonly tcpExternalPort: number;
  readonly internalPort: number;
  /** Seconds granted (the shorter of the two mappings'). */
  readonly lifetime: number;
  /** Milliseconds (clock time) of the reply that made or renewed it. */
  readonly obtainedAt: number;
  readonly renewAt: number;
}

export type MapperEvent =
  | { readonly type: "renewed"; readonly mapping: Mapping }
  | { readonly type: "changed"; readonly mapping: Mapping; readonly previous: Mapping | undefined }
  | { readonly type: "retry"; readonly error: string; readonly failures: number; readonly delayMs: number }
  | { readonly type: "gateway-restart"; readonly reason: string }
  | { readonly type: "fallback"; readonly reason: string }
  | { readonly type: "deleted"; readonly protocol: PortmapProtocol; readonly confirmed: boolean }
  | { readonly type: "stopped" };

export interface MapperState {
  readonly phase: "starting" | "mapped" | "retrying" | "stopped";
  /** The protocol the gateway answered last (undefined until it answered). */
  readonly protocol: PortmapProtocol | undefined;
  readonly mapping: Mapping | undefined;
  /** When the current external address and port were first obtained (age = now - this). */
  readonly mappedSince: number | undefined;
  readonly expiresAt: number | undefined;
  /** The next request: the renewal, or the next retry after a failure. */
  readonly nextAttemptAt: number | undefined;
  readonly failures: number;
  readonly lastError: string | undefined;
  /** The gateway's seconds since the start of its epoch, as last seen. */
  readonly gatewayEpoch: number | undefined;
}

export interface PortMapperOptions {
  readonly gateway: string;
  readonly internalPort: number;
  /** Requested lifetime in seconds; default 60 (what VPN providers' gateways grant). */
  readonly lifetime?: number;
  /** "auto" (default) tries PCP and falls back to NAT-PMP. */
  readonly protocol?: "auto" | PortmapProtocol;
  /**
   * Called with each new external address or port. When it throws (or its
   * promise rejects) the round counts as failed and it is called again after
   * the back-off, so a consumer never misses a port.
   */
  readonly onMapping?: (m: Mapping) => void | Promise<void>;
  readonly onEvent?: (e: MapperEvent) => void;
  readonly openTransport?: (gateway: string) => Promise<Transport>;
  readonly clock?: Clock;
  readonly random?: () => number;
  readonly nonce?: () => Uint8Array;
  /** NAT-PMP sends per request (RFC 6886: 9, the last waiting 64 s). */
  readonly natpmpTries?: number;
  /** PCP sends before "auto" decides the gateway does not speak PCP. */
  readonly pcpProbeTries?: number;
  /** Back-off between failed rounds: doubles from retryInitialMs up to retryMaxMs. */
  readonly retryInitialMs?: number;
  readonly retryMaxMs?: number;
  /** How long stop() waits for the gateway to confirm the deletions (ms, default 2000). */
  readonly deleteTimeoutMs?: number;
}

export class PortMapper {
  private readonly o: PortMapperOptions;
  private readonly clock: Clock;
  private readonly lifetime: number;
  private readonly abort = new AbortController();
  private readonly nonces: Record<TransportProtocol, Uint8Array>;
  private transport: Transport | undefined;
  private loopDone: Promise<void> | undefined;
  private stopping = false;
  private phase: MapperState["phase"] = "starting";
  private active: PortmapProtocol | undefined;
  private tried: PortmapProtocol | undefined;
  private mapping: Mapping | undefined;
  /** The last mapping onMapping accepted. */
  private delivered: Mapping | undefined;
  private mappedSince: number | undefined;
  private nextAttemptAt: number | undefined;
  private failures = 0;
  private lastError: string | undefined;
  private epoch: { protocol: PortmapProtocol; sample: EpochSample } | undefined;
  private restart: string | undefined;
  private restartsInARow = 0;
  private answered = new Set<PortmapProtocol>();

  constructor(options: PortMapperOptions) {
    const g = parseAddress(options.gateway);
    if (g === undefined) throw new RangeError(`gateway ${options.gateway} is not an IP address`);
    checkPort(options.internalPort, "internal port", false);
    checkU32(options.lifetime ?? 60, "lifetime");
    if ((options.lifetime ?? 60) < 1) throw new RangeError("a lifetime of 0 would delete the mapping");
    this.o = options;
    this.clock = options.clock ?? systemClock;
    this.lifetime = options.lifetime ?? 60;
    const nonce = options.nonce ?? (() => new Uint8Array(randomBytes(12)));
    this.nonces = { udp: nonce(), tcp: nonce() };
  }

  /** Starts the loop; mappings arrive through onMapping. */
  start(): void {
    this.loopDone ??= this.loop();
  }

  /** Stops the loop and deletes the mappings (lifetime 0), then closes the socket. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    await this.loopDone;
    if (this.transport !== undefined) {
      const deadline = new AbortController();
      const cancel = this.clock.setTimer(this.o.deleteTimeoutMs ?? 2000, () => deadline.abort());
      for (const protocol of this.answered) await this.deleteAll(protocol, deadline.signal);
      cancel();
      this.transport.close();
    }
    this.phase = "stopped";
    this.nextAttemptAt = undefined;
    this.emit({ type: "stopped" });
  }

  state(): MapperState {
    return {
      phase: this.phase,
      protocol: this.active,
      mapping: this.mapping,
      mappedSince: this.mappedSince,
      expiresAt: this.mapping && this.mapping.obtainedAt + this.mapping.lifetime * 1000,
      nextAttemptAt: this.nextAttemptAt,
      failures: this.failures,
      lastError: this.lastError,
      gatewayEpoch: this.epoch?.sample.serverSeconds,
    };
  }

  private emit(e: MapperEvent): void {
    this.o.onEvent?.(e);
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      try {
        this.transport ??= await (this.o.openTransport ?? openUdpTransport)(this.o.gateway);
        const m = await this.round();
        this.failures = 0;
        this.lastError = undefined;
        this.phase = "mapped";
        await this.record(m);
        if (this.restart !== undefined) {
          // RFC 6886 §3.7: after a gateway restart, map everything again at once —
          // but not in a tight loop if the gateway's epoch jumps every time.
          this.emit({ type: "gateway-restart", reason: this.restart });
          this.restart = undefined;
          if (this.restartsInARow++ === 0) continue;
          await this.sleep(this.o.retryInitialMs ?? 1000);
          continue;
        }
        this.restartsInARow = 0;
        this.nextAttemptAt = m.renewAt;
        await this.sleep(m.renewAt - this.clock.now());
      } catch (err) {
        if (err instanceof AbortedError || this.stopping) break;
        this.failures++;
        this.lastError = err instanceof Error ? err.message : String(err);
        this.phase = "retrying";
        if (this.failures >= 2) {
          // A fresh socket picks up a changed source address (a tunnel re-created).
          this.transport?.close();
          this.transport = undefined;
        }
        const initial = this.o.retryInitialMs ?? 1000;
        const delayMs = Math.min(initial * 2 ** (this.failures - 1), this.o.retryMaxMs ?? 60_000);
        this.nextAttemptAt = this.clock.now() + delayMs;
        this.emit({ type: "retry", error: this.lastError, failures: this.failures, delayMs });
        await this.sleep(delayMs);
      }
    }
  }

  private async record(m: Mapping): Promise<void> {
    if (differs(this.mapping, m)) this.mappedSince = m.obtainedAt;
    this.mapping = m;
    const prev = this.delivered;
    if (!differs(prev, m)) return this.emit({ type: "renewed", mapping: m });
    this.emit({ type: "changed", mapping: m, previous: prev });
    await this.o.onMapping?.(m);
    this.delivered = m;
  }

  /** One round: both mappings (and, for NAT-PMP, the external address). */
  private async round(): Promise<Mapping> {
    const mode = this.o.protocol ?? "auto";
    const use = mode === "auto" ? (this.active ?? "pcp") : mode;
    if (use === "natpmp") return this.roundWith("natpmp");
    try {
      return await this.roundWith("pcp");
    } catch (err) {
      const silent = err instanceof NoReplyError && this.active === undefined;
      if (mode !== "auto" || !(err instanceof NotPcpError || silent)) throw err;
      const reason = err instanceof NotPcpError ? err.message : "no PCP reply";
      this.emit({ type: "fallback", reason });
      if (err instanceof NotPcpError) this.active = "natpmp";
      return this.roundWith("natpmp");
    }
  }

  private async roundWith(protocol: PortmapProtocol): Promise<Mapping> {
    if (this.tried !== protocol) this.epoch = undefined; // epochs of different protocols do not compare
    this.tried = protocol;
    const map = (p: TransportProtocol, port: number, address?: string, lifetime = this.lifetime) =>
      protocol === "pcp"
        ? pcpMap(this.ctx(), this.nonces[p], p, port, address, lifetime)
        : natpmpMap(this.ctx(), p, port, lifetime);
    const address = protocol === "natpmp" ? await natpmpExternalAddress(this.ctx()) : undefined;
    const prev = this.mapping?.protocol === protocol ? this.mapping : undefined;
    let udp = await map("udp", prev?.externalPort ?? this.o.internalPort, prev?.externalAddress);
    let tcp = await map("tcp", udp.externalPort, udp.externalAddress);
    // Peers learn one port: make TCP's equal UDP's, moving UDP if TCP could not follow.
    for (let i = 0; i < 2 && tcp.externalPort !== udp.externalPort; i++) {
      await map("udp", 0, undefined, 0);
      udp = await map("udp", tcp.externalPort, tcp.externalAddress);
      if (udp.externalPort !== tcp.externalPort) tcp = await map("tcp", udp.externalPort, udp.externalAddress);
    }
    this.active = protocol;
    const now = this.clock.now();
    const lifetime = Math.min(udp.lifetime, tcp.lifetime);
    return {
      protocol,
      externalAddress: address ?? udp.externalAddress ?? "",
      externalPort: udp.externalPort,
      tcpExternalPort: tcp.externalPort,
      internalPort: this.o.internalPort,
      lifetime,
      obtainedAt: now,
      renewAt: now + Math.max(1000, (lifetime * 1000) / 2),
    };
  }

  private seeEpoch(protocol: PortmapProtocol, serverSeconds: number): void {
    const cur = { serverSeconds, clientMs: this.clock.now() };
    const prev = this.epoch?.protocol === protocol ? this.epoch.sample : undefined;
    if (prev !== undefined && (protocol === "pcp" ? pcpEpochLost : natpmpEpochLost)(prev, cur)) {
      this.restart = `epoch ${serverSeconds} s, expected about ${prev.serverSeconds + Math.round((cur.clientMs - prev.clientMs) / 1000)} s`;
    }
    this.epoch = { protocol, sample: cur };
  }

  /** What one request needs: the socket, the clock, and where to report the epoch. */
  private ctx(signal: AbortSignal = this.abort.signal): RequestContext {
    const probing = (this.o.protocol ?? "auto") === "auto" && this.active === undefined;
    return {
      transport: this.transport!,
      clock: this.clock,
      gateway: this.o.gateway,
      internalPort: this.o.internalPort,
      signal,
      natpmpSchedule: natpmpSchedule(this.o.natpmpTries ?? 9),
      pcpSchedule: () => pcpSchedule(this.o.random, probing ? (this.o.pcpProbeTries ?? 3) : Infinity, (this.lifetime * 1000) / 2),
      onEpoch: (protocol, seconds) => {
        this.answered.add(protocol);
        this.seeEpoch(protocol, seconds);
      },
    };
  }

  /** Deletes both mappings; a gateway that does not confirm before `signal` is left to expire them. */
  private async deleteAll(protocol: PortmapProtocol, signal: AbortSignal): Promise<void> {
    let confirmed = 0;
    for (const p of ["udp", "tcp"] as const) {
      const port = p === "udp" ? this.mapping?.externalPort : this.mapping?.tcpExternalPort;
      const ctx = this.ctx(signal);
      const done = protocol === "pcp" ? pcpMap(ctx, this.nonces[p], p, port ?? 0, undefined, 0) : natpmpMap(ctx, p, 0, 0);
      confirmed += await done.then(
        () => 1,
        () => 0,
      );
    }
    this.emit({ type: "deleted", protocol, confirmed: confirmed === 2 });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.abort.signal.aborted) return resolve();
      const done = () => {
        cancel();
        this.abort.signal.removeEventListener("abort", done);
        resolve();
      };
      const cancel = this.clock.setTimer(Math.max(0, ms), done);
      this.abort.signal.addEventListener("abort", done);
    });
  }
}

function differs(a: Mapping | undefined, b: Mapping): boolean {
  return (
    a === undefined ||
    a.externalAddress !== b.externalAddress ||
    a.externalPort !== b.externalPort ||
    a.tcpExternalPort !== b.tcpExternalPort ||
    a.protocol !== b.protocol
  );
}

/** Creates and starts a mapper. */
export function startPortMapper(options: PortMapperOptions): PortMapper {
  const m = new PortMapper(options);
  m.start();
  return m;
}
