// A file to share and its .torrent: random data, a metainfo file written by the
// real mktorrent, and the info-hash read back from it (sha1 of the bencoded
// info dictionary exactly as the file holds it, which is why the reader keeps
// each value's byte span instead of re-encoding).
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runChecked } from "../../src/system/run.js";

export type BValue = number | Buffer | BValue[] | Map<string, BValue>;

interface Decoded { value: BValue; end: number; spans: Map<string, [number, number]> }

/** Reads one bencoded value at `at`; for a dictionary, `spans` has each key's value span. */
export function bdecode(buf: Buffer, at = 0): Decoded {
  const c = buf[at];
  if (c === 0x69) { // i<digits>e
    const e = buf.indexOf(0x65, at);
    if (e < 0) throw new Error(`bencode: unterminated integer at ${at}`);
    return { value: Number(buf.toString("latin1", at + 1, e)), end: e + 1, spans: new Map() };
  }
  if (c === 0x6c || c === 0x64) { // l…e, d…e
    const list: BValue[] = [];
    const dict = new Map<string, BValue>();
    const spans = new Map<string, [number, number]>();
    let p = at + 1;
    while (buf[p] !== 0x65) {
      if (p >= buf.length) throw new Error(`bencode: unterminated ${c === 0x6c ? "list" : "dictionary"} at ${at}`);
      if (c === 0x6c) {
        const item = bdecode(buf, p);
        list.push(item.value);
        p = item.end;
      } else {
        const key = bdecode(buf, p);
        if (!Buffer.isBuffer(key.value)) throw new Error(`bencode: dictionary key at ${p} is not a string`);
        const val = bdecode(buf, key.end);
        dict.set(key.value.toString("latin1"), val.value);
        spans.set(key.value.toString("latin1"), [key.end, val.end]);
        p = val.end;
      }
    }
    return { value: c === 0x6c ? list : dict, end: p + 1, spans };
  }
  const colon = buf.indexOf(0x3a, at);
  const len = Number(buf.toString("latin1", at, colon));
  if (colon < 0 || !Number.isInteger(len) || len < 0) throw new Error(`bencode: bad string length at ${at}`);
  return { value: buf.subarray(colon + 1, colon + 1 + len), end: colon + 1 + len, spans: new Map() };
}

/** The v1 info-hash of a .torrent file, as 40 lowercase hex digits. */
export function infoHash(metainfo: Buffer): string {
  const span = bdecode(metainfo).spans.get("info");
  if (!span) throw new Error("torrent has no info dictionary");
  return createHash("sha1").update(metainfo.subarray(span[0], span[1])).digest("hex");
}

export interface Torrent {
  /** The .torrent file. */
  file: string;
  /** The directory holding the complete data (a seeder's save path). */
  seedDir: string;
  name: string;
  size: number;
  infoHash: string;
  sha256: string;
}

export const sha256 = (data: Buffer): string => createHash("sha256").update(data).digest("hex");

/** Writes `size` random bytes to DIR/seed/NAME and a torrent for them announcing to `announce`. */
export async function makeTorrent(dir: string, announce: string, size = 3_000_000, name = "data.bin"): Promise<Torrent> {
  const seedDir = join(dir, "seed");
  mkdirSync(seedDir, { recursive: true });
  const data = randomBytes(size);
  writeFileSync(join(seedDir, name), data);
  const file = join(dir, `${name}.torrent`);
  // 256 KiB pieces (-l 18): a few MB make a dozen pieces.
  await runChecked("mktorrent", ["-l", "18", "-a", announce, "-o", file, join(seedDir, name)]);
  return { file, seedDir, name, size, infoHash: infoHash(readFileSync(file)), sha256: sha256(data) };
}

/** How many bytes of `got` equal the original, counted in 16 KiB blocks (random data has no zero blocks). */
export function intactBytes(original: Buffer, got: Buffer): number {
  const block = 16384;
  let n = 0;
  for (let at = 0; at < original.length; at += block) {
    const a = original.subarray(at, at + block);
    if (a.equals(got.subarray(at, at + block))) n += a.length;
  }
  return n;
}
