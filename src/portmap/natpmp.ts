// NAT-PMP (RFC 6886) messages as pure encoders and decoders. A reply is
// trusted only after every field a client can check has been checked: its
// length, version, opcode (128 + the request's), and that it came from the
// gateway's port 5351 (RFC 6886 §3.1: a client MUST discard anything else).

import { formatAddress, parseAddress } from "../net/address.js";

export const NATPMP_PORT = 5351;
export const NATPMP_VERSION = 0;

export type TransportProtocol = "udp" | "tcp";

/** Request opcodes (RFC 6886 §3.2, §3.3); a reply's opcode is 128 + these. */
export const NATPMP_OPCODE = { externalAddress: 0, mapUdp: 1, mapTcp: 2 } as const;

/** Result codes (RFC 6886 §3.5). */
export const NATPMP_RESULT = {
  SUCCESS: 0,
  UNSUPPORTED_VERSION: 1,
  NOT_AUTHORIZED: 2,
  NETWORK_FAILURE: 3,
  OUT_OF_RESOURCES: 4,
  UNSUPPORTED_OPCODE: 5,
} as const;

const RESULT_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(NATPMP_RESULT).map(([name, code]) => [code, name]),
);

export function natpmpResultName(code: number): string {
  return RESULT_NAMES[code] ?? `UNKNOWN_${code}`;
}

export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

export interface MapRequest {
  readonly protocol: TransportProtocol;
  readonly internalPort: number;
  /** 0 lets the gateway choose; miniupnpd then tries the internal port. */
  readonly suggestedExternalPort: number;
  /** Seconds; 0 deletes the mapping (RFC 6886 §3.4). */
  readonly lifetime: number;
}

export interface ExternalAddressReply {
  readonly kind: "external-address";
  readonly resultCode: number;
  readonly epoch: number;
  /** Undefined unless the result is SUCCESS (the field is then meaningless). */
  readonly externalAddress: string | undefined;
}

export interface MapReply {
  readonly kind: "map";
  readonly protocol: TransportProtocol;
  readonly resultCode: number;
  readonly epoch: number;
  readonly internalPort: number;
  readonly externalPort: number;
  readonly lifetime: number;
}

export type NatPmpReply = ExternalAddressReply | MapReply;

export type DecodeErrorCode =
  | "SOURCE" // not from the gateway's address and port 5351
  | "SHORT"
  | "LENGTH"
  | "VERSION"
  | "OPCODE"
  | "MISMATCH"; // well-formed, but not the reply to the request sent

export type Decoded<T> = { ok: true; value: T } | { ok: false; code: DecodeErrorCode; message: string };

export function reject<T>(code: DecodeErrorCode, message: string): Decoded<T> {
  return { ok: false, code, message };
}

export function encodeExternalAddressRequest(): Uint8Array {
  return Uint8Array.of(NATPMP_VERSION, NATPMP_OPCODE.externalAddress);
}

export function encodeMapRequest(req: MapRequest): Uint8Array {
  checkPort(req.internalPort, "internal port", false);
  checkPort(req.suggestedExternalPort, "suggested external port", true);
  checkU32(req.lifetime, "lifetime");
  const bytes = new Uint8Array(12);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, NATPMP_VERSION);
  view.setUint8(1, req.protocol === "udp" ? NATPMP_OPCODE.mapUdp : NATPMP_OPCODE.mapTcp);
  // bytes 2-3 reserved, zero
  view.setUint16(4, req.internalPort);
  // RFC 6886 §3.4: a deletion MUST carry suggested external port 0.
  view.setUint16(6, req.lifetime === 0 ? 0 : req.suggestedExternalPort);
  view.setUint32(8, req.lifetime);
  return bytes;
}

/** Checks that a datagram came from the gateway's NAT-PMP/PCP port. */
export function checkSource(from: Endpoint, gateway: string): string | undefined {
  const a = parseAddress(from.address);
  const g = parseAddress(gateway);
  const same = a !== undefined && g !== undefined && a.family === g.family && a.value === g.value;
  if (!same || from.port !== NATPMP_PORT) {
    return `reply from ${from.address}:${from.port}, expected ${gateway}:${NATPMP_PORT}`;
  }
  return undefined;
}

/**
 * Decodes a reply to `requestOpcode` (0, 1 or 2). Error replies may be cut
 * after the epoch (8 bytes, as for UNSUPPORTED_VERSION); a SUCCESS reply must
 * be whole (12 bytes for the address, 16 for a mapping).
 */
export function decodeNatPmpReply(
  bytes: Uint8Array,
  from: Endpoint,
  gateway: string,
  requestOpcode: number,
): Decoded<NatPmpReply> {
  const bad = checkSource(from, gateway);
  if (bad !== undefined) return reject("SOURCE", bad);
  if (bytes.length < 8) return reject("SHORT", `${bytes.length} bytes, a NAT-PMP reply has at least 8`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint8(0);
  if (version !== NATPMP_VERSION) return reject("VERSION", `version ${version}, expected 0`);
  const opcode = view.getUint8(1);
  if (opcode !== 128 + requestOpcode) return reject("OPCODE", `opcode ${opcode}, expected ${128 + requestOpcode}`);
  const resultCode = view.getUint16(2);
  const epoch = view.getUint32(4);
  const full = requestOpcode === NATPMP_OPCODE.externalAddress ? 12 : 16;
  if (bytes.length !== full && !(resultCode !== NATPMP_RESULT.SUCCESS && bytes.length === 8)) {
    return reject("LENGTH", `${bytes.length} bytes, expected ${full}`);
  }
  if (requestOpcode === NATPMP_OPCODE.externalAddress) {
    const externalAddress =
      resultCode === NATPMP_RESULT.SUCCESS ? formatAddress({ family: 4, value: BigInt(view.getUint32(8)) }) : undefined;
    return { ok: true, value: { kind: "external-address", resultCode, epoch, externalAddress } };
  }
  const whole = bytes.length === 16;
  return {
    ok: true,
    value: {
      kind: "map",
      protocol: requestOpcode === NATPMP_OPCODE.mapUdp ? "udp" : "tcp",
      resultCode,
      epoch,
      internalPort: whole ? view.getUint16(8) : 0,
      externalPort: whole ? view.getUint16(10) : 0,
      lifetime: whole ? view.getUint32(12) : 0,
    },
  };
}

/** Decodes a mapping reply and checks it answers the mapping that was asked for. */
export function decodeMapReply(bytes: Uint8Array, from: Endpoint, gateway: string, req: MapRequest): Decoded<MapReply> {
  const opcode = req.protocol === "udp" ? NATPMP_OPCODE.mapUdp : NATPMP_OPCODE.mapTcp;
  const d = decodeNatPmpReply(bytes, from, gateway, opcode);
  if (!d.ok) return d;
  const r = d.value as MapReply;
  if (r.resultCode === NATPMP_RESULT.SUCCESS && r.internalPort !== req.internalPort) {
    return reject("MISMATCH", `reply for internal port ${r.internalPort}, asked for ${req.internalPort}`);
  }
  return { ok: true, value: r };
}

export function decodeExternalAddressReply(
  bytes: Uint8Array,
  from: Endpoint,
  gateway: string,
): Decoded<ExternalAddressReply> {
  const d = decodeNatPmpReply(bytes, from, gateway, NATPMP_OPCODE.externalAddress);
  return d.ok ? { ok: true, value: d.value as ExternalAddressReply } : d;
}

/** The gateway's epoch as last seen: its seconds since start of epoch and our clock (ms) then. */
export interface EpochSample {
  readonly serverSeconds: number;
  readonly clientMs: number;
}

/**
 * RFC 6886 §3.6: the client expects the gateway's clock to have advanced by
 * at least 7/8 of the time its own clock did; a value more than 2 s below
 * that estimate means the gateway lost its mappings (rebooted).
 */
export function natpmpEpochLost(prev: EpochSample, cur: EpochSample): boolean {
  const elapsed = Math.max(0, (cur.clientMs - prev.clientMs) / 1000);
  const expected = prev.serverSeconds + (elapsed * 7) / 8;
  return cur.serverSeconds < expected - 2;
}

function checkPort(port: number, what: string, zeroAllowed: boolean): void {
  if (!Number.isInteger(port) || port < (zeroAllowed ? 0 : 1) || port > 65535) {
    throw new RangeError(`${what} ${port} is not a port number`);
  }
}

export function checkU32(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`${what} ${n} is out of range`);
}

export { checkPort };
