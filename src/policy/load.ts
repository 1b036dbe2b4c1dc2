// Reading a policy file: size and encoding guards, YAML (or JSON) parsing with
// positions, then the section readers and the whole-policy checks. All
// problems come back together in one SwarmgateError.
import { readFileSync, statSync } from "node:fs";
import { isScalar, LineCounter, parseDocument, type Node } from "yaml";
import { SwarmgateError, userError, type Diagnostic } from "../errors.js";
import { Reader } from "./reader.js";
import {
  DEFAULT_LOG, readAdmin, readClients, readForward, readGateway, readHost, readIcmp, readLog, readOutbound, TOP_KEYS,
} from "./sections.js";
import { checkPolicy } from "./semantic.js";
import type { Outbound, Policy } from "./types.js";

export const MAX_POLICY_BYTES = 1024 * 1024;

export function loadPolicy(file: string): Policy {
  let size: number;
  try {
    size = statSync(file).size;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw userError("POLICY_NOT_FOUND", "no such policy file", { file });
    throw userError("POLICY_UNREADABLE", `cannot read the policy file (${code ?? "error"})`, { file });
  }
  if (size > MAX_POLICY_BYTES) {
    throw userError("POLICY_TOO_LARGE", `the policy file is ${size} bytes; the limit is ${MAX_POLICY_BYTES} (1 MiB)`, { file });
  }
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw userError("POLICY_UNREADABLE", `cannot read the policy file (${(e as NodeJS.ErrnoException).code ?? "error"})`, { file });
  }
  return parsePolicy(decode(bytes, file), file);
}

/** UTF-8 text or an error: a NUL byte or invalid UTF-8 means this is not a policy. */
function decode(bytes: Buffer, file: string): string {
  const nul = bytes.indexOf(0);
  try {
    if (nul >= 0) throw new Error("NUL");
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes).replace(/^\uFEFF/, "");
  } catch {
    throw userError("POLICY_BINARY", "this is a binary file, not a YAML or JSON policy", { file });
  }
}

export function parsePolicy(text: string, file = "<policy>"): Policy {
  if (Buffer.byteLength(text) > MAX_POLICY_BYTES) {
    throw userError("POLICY_TOO_LARGE", `the policy is larger than ${MAX_POLICY_BYTES} bytes (1 MiB)`, { file });
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true });
  const r = new Reader(file, text, lineCounter, doc);
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const code = e.code === "DUPLICATE_KEY" ? "POLICY_DUPLICATE_KEY" : "POLICY_SYNTAX";
      r.error(code, `${code === "POLICY_SYNTAX" ? "not valid YAML: " : ""}${firstLine(e.message)}`, r.positionOf(e.pos[0]));
    }
    throw new SwarmgateError(r.diagnostics);
  }
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) {
    throw userError("POLICY_EMPTY", "the policy file is empty; start from examples/standalone.yaml", { file });
  }
  const draft = readTop(r, doc.contents as Node);
  if (draft) checkPolicy(r, draft);
  if (r.diagnostics.length > 0 || !draft) throw new SwarmgateError(sortByPosition(r.diagnostics));
  return { ...draft, source: { file, text, positions: r.positions } };
}

function readTop(r: Reader, root: Node): Omit<Policy, "source"> | undefined {
  const m = r.map(root, "", TOP_KEYS, ["version"]);
  if (!m) return undefined;
  const entry = (k: string) => m.get(k);
  const version = entry("version");
  if (version) {
    const v = r.scalar(version.node, "version", "the number 1", version.keyNode);
    if (v !== undefined && v !== 1) r.error("POLICY_BAD_VERSION", `policy version ${JSON.stringify(v)} is not supported; this swarmgate reads version 1`, version.node);
  }
  const hostE = entry("host");
  const gwE = entry("gateway");
  if (hostE && gwE) {
    const later = (hostE.keyNode.range?.[0] ?? 0) > (gwE.keyNode.range?.[0] ?? 0) ? hostE : gwE;
    r.error("POLICY_ROLE", 'a policy describes either a "host" or a "gateway", not both', later.keyNode);
  }
  if (!hostE && !gwE) r.error("POLICY_ROLE", 'the policy needs a "host" section (a machine running a client) or a "gateway" section (a NAT router)', root);
  const host = hostE ? readHost(r, hostE.node, hostE.keyNode) : undefined;
  const gateway = gwE && !hostE ? readGateway(r, gwE.node, gwE.keyNode) : undefined;
  const fwE = entry("forward");
  if (fwE && hostE && !gwE) r.error("POLICY_ROLE", '"forward" needs a "gateway" section; a host does not forward', fwE.keyNode);
  const role = gwE && !hostE ? "gateway" : "host";
  const sec = <T>(key: string, read: (n: Entry["node"], where: Node) => T, fallback: T): T => {
    const e = entry(key);
    return e ? read(e.node, e.keyNode) : fallback;
  };
  const implicitOutbound: Outbound = {
    path: "outbound", any: role === "gateway", implicit: true, peers: false, trackers: [], dns: [],
  };
  return {
    version: 1,
    role,
    ...(host && { host }),
    ...(gateway && { gateway }),
    clients: sec("clients", (n, w) => readClients(r, n, w), []),
    outbound: sec("outbound", (n, w) => readOutbound(r, n, w), implicitOutbound),
    admin: sec("admin", (n, w) => readAdmin(r, n, w), []),
    forward: sec("forward", (n, w) => readForward(r, n, w), []),
    icmp: sec("icmp", (n, w) => readIcmp(r, n, w), "allow"),
    log: sec("log", (n, w) => readLog(r, n, w), DEFAULT_LOG),
  };
}

type Entry = { node: Node | null };

function firstLine(s: string): string {
  return s.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
}

function sortByPosition(d: Diagnostic[]): Diagnostic[] {
  return [...d].sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
}


