// One request to the gateway and the checks on its answer: the NAT-PMP
// external address, a NAT-PMP mapping, a PCP MAP. Each reports the gateway's
// epoch before judging the result code, since error replies carry it too.

import { exchange, type Clock, type RetransmitSchedule, type Transport } from "./client.js";
import {
  NATPMP_RESULT,
  decodeExternalAddressReply,
  decodeMapReply,
  encodeExternalAddressRequest,
  encodeMapRequest,
  natpmpResultName,
  type TransportProtocol,
} from "./natpmp.js";
import { PCP_RESULT, decodePcpReply, encodePcpMapRequest, pcpResultName, type PcpMapRequest } from "./pcp.js";

export type PortmapProtocol = "pcp" | "natpmp";

export interface RequestContext {
  readonly transport: Transport;
  readonly clock: Clock;
  readonly gateway: string;
  readonly internalPort: number;
  readonly signal: AbortSignal;
  readonly natpmpSchedule: RetransmitSchedule;
  /** A fresh PCP schedule per request (it carries the previous interval). */
  readonly pcpSchedule: () => RetransmitSchedule;
  readonly onEpoch: (protocol: PortmapProtocol, serverSeconds: number) => void;
}

/** One mapping as granted. */
export interface Granted {
  readonly externalPort: number;
  /** PCP says it with every mapping; NAT-PMP only in its own request. */
  readonly externalAddress: string | undefined;
  readonly lifetime: number;
}

/** The gateway answered with an error result. */
export class GatewayError extends Error {}

/** The gateway does not speak PCP version 2. */
export class NotPcpError extends Error {}

export async function natpmpExternalAddress(ctx: RequestContext): Promise<string> {
  const r = await exchange({
    transport: ctx.transport,
    clock: ctx.clock,
    request: encodeExternalAddressRequest(),
    accept: (d) => decodeExternalAddressReply(d.bytes, d.from, ctx.gateway),
    schedule: ctx.natpmpSchedule,
    signal: ctx.signal,
  });
  ctx.onEpoch("natpmp", r.epoch);
  if (r.resultCode !== NATPMP_RESULT.SUCCESS || r.externalAddress === undefined) {
    throw new GatewayError(`NAT-PMP external address: ${natpmpResultName(r.resultCode)}`);
  }
  return r.externalAddress;
}

/** Maps (or with lifetime 0 deletes) one NAT-PMP mapping. */
export async function natpmpMap(
  ctx: RequestContext,
  protocol: TransportProtocol,
  suggested: number,
  lifetime: number,
): Promise<Granted> {
  const req = { protocol, internalPort: ctx.internalPort, suggestedExternalPort: suggested, lifetime };
  const r = await exchange({
    transport: ctx.transport,
    clock: ctx.clock,
    request: encodeMapRequest(req),
    accept: (d) => decodeMapReply(d.bytes, d.from, ctx.gateway, req),
    schedule: ctx.natpmpSchedule,
    signal: ctx.signal,
  });
  ctx.onEpoch("natpmp", r.epoch);
  if (r.resultCode !== NATPMP_RESULT.SUCCESS) {
    throw new GatewayError(`NAT-PMP ${protocol} mapping: ${natpmpResultName(r.resultCode)}`);
  }
  return { externalPort: r.externalPort, externalAddress: undefined, lifetime: r.lifetime };
}

/** Maps (or with lifetime 0 deletes) one PCP mapping, identified by its nonce. */
export async function pcpMap(
  ctx: RequestContext,
  nonce: Uint8Array,
  protocol: TransportProtocol,
  suggested: number,
  address: string | undefined,
  lifetime: number,
): Promise<Granted> {
  const req: PcpMapRequest = {
    nonce,
    protocol,
    internalPort: ctx.internalPort,
    suggestedExternalPort: suggested,
    suggestedExternalAddress: address,
    lifetime,
    clientAddress: ctx.transport.localAddress(),
  };
  const r = await exchange({
    transport: ctx.transport,
    clock: ctx.clock,
    request: encodePcpMapRequest(req),
    accept: (d) => decodePcpReply(d.bytes, d.from, ctx.gateway, req),
    schedule: ctx.pcpSchedule(),
    signal: ctx.signal,
  });
  if (r.kind === "unsupported-version") {
    throw new NotPcpError(`the gateway answered PCP with UNSUPP_VERSION (it speaks version ${r.serverVersion})`);
  }
  ctx.onEpoch("pcp", r.epoch);
  if (r.resultCode !== PCP_RESULT.SUCCESS) throw new GatewayError(`PCP ${protocol} MAP: ${pcpResultName(r.resultCode)}`);
  return { externalPort: r.externalPort, externalAddress: r.externalAddress, lifetime: r.lifetime };
}
