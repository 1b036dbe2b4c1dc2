// PCP (RFC 6887) MAP requests and replies as pure encoders and decoders.
// Addresses travel as 16 bytes; an IPv4 address as IPv4-mapped IPv6
// (::ffff:a.b.c.d, RFC 6887 §5). A NAT-PMP-only gateway answers a PCP request
// with a NAT-PMP "unsupported version" reply (RFC 6887 Appendix A), which the
// decoder reports so that the client can fall back.

import { formatAddress, parseAddress } from "../net/address.js";
import {
  checkPort,
  checkSource,
  checkU32,
  reject,
  type Decoded,
  type EpochSample,
  type Endpoint,
  type TransportProtocol,
} from "./natpmp.js";

export const PCP_VERSION = 2;
export const PCP_OPCODE_MAP = 1;
export const PCP_MAX_LENGTH = 1100;
const MAP_LENGTH = 60;

/** Result codes (RFC 6887 §7.4). */
export const PCP_RESULT = {
  SUCCESS: 0,
  UNSUPP_VERSION: 1,
  NOT_AUTHORIZED: 2,
  MALFORMED_REQUEST: 3,
  UNSUPP_OPCODE: 4,
  UNSUPP_OPTION: 5,
  MALFORMED_OPTION: 6,
  NETWORK_FAILURE: 7,
  NO_RESOURCES: 8,
  UNSUPP_PROTOCOL: 9,
  USER_EX_QUOTA: 10,
  CANNOT_PROVIDE_EXTERNAL: 11,
  ADDRESS_MISMATCH: 12,
  EXCESSIVE_REMOTE_PEERS: 13,
} as const;

const RESULT_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(PCP_RESULT).map(([name, code]) => [code, name]),
);

export function pcpResultName(code: number): string {
  return RESULT_NAMES[code] ?? `UNKNOWN_${code}`;
}

const IANA_PROTOCOL: Record<TransportProtocol, number> = { udp: 17, tcp: 6 };

export interface PcpMapRequest {
  /** 12 bytes, random, kept for the renewals and the deletion of one mapping (RFC 6887 §11.1). */
  readonly nonce: Uint8Array;
  readonly protocol: TransportProtocol;
  readonly internalPort: number;
  readonly suggestedExternalPort: number;
  /** IPv4 address, or undefined for "any" (::ffff:0.0.0.0). */
  readonly suggestedExternalAddress?: string | undefined;
  /** Seconds; 0 deletes. */
  readonly lifetime: number;
  /** The client's own source address toward the server; the server compares it with the packet's. */
  readonly clientAddress: string;
}

export interface PcpMapReply {
  readonly kind: "map";
  readonly resultCode: number;
  readonly lifetime: number;
  readonly epoch: number;
  readonly protocol: TransportProtocol;
  readonly internalPort: number;
  readonly externalPort: number;
  readonly externalAddress: string;
}

/** The server does not speak PCP version 2: `serverVersion` 0 means NAT-PMP. */
export interface PcpUnsupportedVersion {
  readonly kind: "unsupported-version";
  readonly serverVersion: number;
}

export type PcpReply = PcpMapReply | PcpUnsupportedVersion;

export function encodePcpMapRequest(req: PcpMapRequest): Uint8Array {
  if (req.nonce.length !== 12) throw new RangeError("a PCP mapping nonce has 12 bytes");
  checkPort(req.internalPort, "internal port", false);
  checkPort(req.suggestedExternalPort, "suggested external port", true);
  checkU32(req.lifetime, "lifetime");
  const bytes = new Uint8Array(MAP_LENGTH);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, PCP_VERSION);
  view.setUint8(1, PCP_OPCODE_MAP); // R bit 0: a request
  view.setUint32(4, req.lifetime);
  bytes.set(addressBytes(req.clientAddress), 8);
  bytes.set(req.nonce, 24);
  view.setUint8(36, IANA_PROTOCOL[req.protocol]);
  view.setUint16(40, req.internalPort);
  view.setUint16(42, req.suggestedExternalPort);
  bytes.set(addressBytes(req.suggestedExternalAddress ?? "0.0.0.0"), 44);
  return bytes;
}

/** Decodes a reply to `req`, checking its source, framing, opcode, nonce, protocol and port. */
export function decodePcpReply(bytes: Uint8Array, from: Endpoint, gateway: string, req: PcpMapRequest): Decoded<PcpReply> {
  const bad = checkSource(from, gateway);
  if (bad !== undefined) return reject("SOURCE", bad);
  if (bytes.length < 4) return reject("SHORT", `${bytes.length} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint8(0);
  if (version === 0) {
    // NAT-PMP's reply to a version it does not know: 0, 128 + op, result 1, epoch.
    if (bytes.length >= 8 && view.getUint8(1) === 128 + PCP_OPCODE_MAP && view.getUint16(2) === 1) {
      return { ok: true, value: { kind: "unsupported-version", serverVersion: 0 } };
    }
    return reject("VERSION", "a NAT-PMP reply that is not 'unsupported version'");
  }
  if (bytes.length < 24) return reject("SHORT", `${bytes.length} bytes, a PCP reply has at least 24`);
  if (bytes.length > PCP_MAX_LENGTH || bytes.length % 4 !== 0) {
    return reject("LENGTH", `${bytes.length} bytes: more than ${PCP_MAX_LENGTH} or not a multiple of 4`);
  }
  const rOpcode = view.getUint8(1);
  if (rOpcode !== (0x80 | PCP_OPCODE_MAP)) return reject("OPCODE", `R/opcode byte ${rOpcode}, expected ${0x80 | PCP_OPCODE_MAP}`);
  const resultCode = view.getUint8(3);
  if (version !== PCP_VERSION) {
    if (resultCode === PCP_RESULT.UNSUPP_VERSION) return { ok: true, value: { kind: "unsupported-version", serverVersion: version } };
    return reject("VERSION", `version ${version}, expected ${PCP_VERSION}`);
  }
  if (bytes.length < MAP_LENGTH) return reject("SHORT", `${bytes.length} bytes, a MAP reply has at least ${MAP_LENGTH}`);
  if (!sameBytes(bytes.subarray(24, 36), req.nonce)) return reject("MISMATCH", "mapping nonce differs from the request's");
  const protocol = view.getUint8(36);
  if (protocol !== IANA_PROTOCOL[req.protocol]) return reject("MISMATCH", `protocol ${protocol}, asked for ${req.protocol}`);
  const internalPort = view.getUint16(40);
  if (internalPort !== req.internalPort) return reject("MISMATCH", `internal port ${internalPort}, asked for ${req.internalPort}`);
  return {
    ok: true,
    value: {
      kind: "map",
      resultCode,
      lifetime: view.getUint32(4),
      epoch: view.getUint32(8),
      protocol: req.protocol,
      internalPort,
      externalPort: view.getUint16(42),
      externalAddress: addressText(bytes.subarray(44, 60)),
    },
  };
}

/**
 * RFC 6887 §8.5: the server lost its state if its epoch went back by more than
 * a second, or if its clock and ours advanced by amounts that differ by more
 * than 2 s plus 1/16 of the elapsed time.
 */
export function pcpEpochLost(prev: EpochSample, cur: EpochSample): boolean {
  if (cur.serverSeconds < prev.serverSeconds - 1) return true;
  const clientDelta = (cur.clientMs - prev.clientMs) / 1000;
  const serverDelta = cur.serverSeconds - prev.serverSeconds;
  return clientDelta + 2 < serverDelta - serverDelta / 16 || serverDelta + 2 < clientDelta - clientDelta / 16;
}

/** 16 bytes: IPv6 as is, IPv4 as ::ffff:a.b.c.d. */
export function addressBytes(text: string): Uint8Array {
  const a = parseAddress(text);
  if (a === undefined) throw new RangeError(`${text} is not an IP address`);
  const value = a.family === 4 ? (0xffffn << 32n) | a.value : a.value;
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = Number((value >> BigInt(8 * (15 - i))) & 0xffn);
  return out;
}

/** The text of 16 address bytes; an IPv4-mapped address prints as IPv4. */
export function addressText(bytes: Uint8Array): string {
  let value = 0n;
  for (const b of bytes) value = (value << 8n) | BigInt(b);
  if (value >> 32n === 0xffffn) return formatAddress({ family: 4, value: value & 0xffffffffn });
  return formatAddress({ family: 6, value });
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
