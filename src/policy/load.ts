// Reading a policy file: only a regular file, size and encoding guards, YAML
// (or JSON) parsing with positions and bounds on nesting and aliases, then the
// section readers and the whole-policy checks. All problems come back together
// in one SwarmgateError.
import { isScalar, type Node } from "yaml";
import { displayValue, SwarmgateError, userError, type Diagnostic } from "../errors.js";
import type { AutoPortResolver } from "./auto-ports.js";
import { passwdLookup, readVpn, type UserLookup } from "./vpn.js";
import { resolveAliases } from "./aliases.js";
import { MAX_YAML_DEPTH, parseYaml } from "./parse-yaml.js";
import { MAX_POLICY_BYTES, readPolicyFile } from "./read-file.js";
import { Reader } from "./reader.js";
import {
  DEFAULT_LOG, readAdmin, readClients, readForward, readGateway, readHost, readIcmp, readLog, readOutbound, TOP_KEYS,
} from "./sections.js";
import { checkPolicy } from "./semantic.js";
import type { Outbound, Policy } from "./types.js";

export { MAX_POLICY_BYTES };

export interface LoadOptions {
  /** How `ports: auto` reads a client's port (policy/auto-ports.ts); without it, `auto` is an error. */
  autoPorts?: AutoPortResolver;
  /** How vpn.users names become uids; the machine's /etc/passwd by default. */
  users?: UserLookup;
}

export function loadPolicy(file: string, options: LoadOptions = {}): Policy {
  return parsePolicy(decode(readPolicyFile(file), file), file, options);
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

export function parsePolicy(text: string, file = "<policy>", options: LoadOptions = {}): Policy {
  if (Buffer.byteLength(text) > MAX_POLICY_BYTES) {
    throw userError("POLICY_TOO_LARGE", `the policy is larger than ${MAX_POLICY_BYTES} bytes (1 MiB)`, { file });
  }
  const r = readSyntax(text, file);
  const root = r.doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) {
    throw userError("POLICY_EMPTY", "the policy file is empty; start from examples/standalone.yaml", { file });
  }
  if (options.autoPorts) r.reader.autoPorts = options.autoPorts;
  const draft = readTop(r.reader, root as Node, options.users ?? passwdLookup());
  if (draft) checkPolicy(r.reader, draft);
  if (r.reader.diagnostics.length > 0 || !draft) throw new SwarmgateError(sortByPosition(r.reader.diagnostics));
  return { ...draft, source: { file, text, positions: r.reader.positions } };
}

/** The document and a Reader over it, or every syntax-level problem thrown at once. */
function readSyntax(text: string, file: string) {
  const parsed = parseYaml(text);
  const aliases = parsed.doc ? resolveAliases(parsed.doc) : { targets: new Map(), problems: [] };
  const reader = new Reader(file, text, parsed.lineCounter, aliases.targets);
  const doc = parsed.doc;
  if (doc === undefined) {
    reader.error("POLICY_TOO_COMPLEX", `the policy nests deeper than ${MAX_YAML_DEPTH} levels; no policy needs that many`, reader.positionOf(parsed.tooDeepAt ?? 0));
    throw new SwarmgateError(reader.diagnostics);
  }
  for (const e of doc.errors) {
    const code = e.code === "DUPLICATE_KEY" ? "POLICY_DUPLICATE_KEY" : "POLICY_SYNTAX";
    reader.error(code, `${code === "POLICY_SYNTAX" ? "not valid YAML: " : ""}${displayValue(firstLine(e.message), 200)}`, reader.positionOf(e.pos[0]));
  }
  if (parsed.secondDocAt !== undefined) {
    reader.error("POLICY_SYNTAX", 'the file holds more than one YAML document ("---"); a policy is one', reader.positionOf(parsed.secondDocAt));
  }
  for (const p of aliases.problems) reader.error(p.code, p.message, p.node);
  if (reader.diagnostics.length > 0) throw new SwarmgateError(sortByPosition(reader.diagnostics));
  return { doc, reader };
}

function readTop(r: Reader, root: Node, users: UserLookup): Omit<Policy, "source"> | undefined {
  const m = r.map(root, "", TOP_KEYS, ["version"]);
  if (!m) return undefined;
  const entry = (k: string) => m.get(k);
  const version = entry("version");
  if (version) {
    // As written: YAML also reads 1.0, 0x1 and +1 as the number 1.
    const v = r.text(version.node, "version", "the number 1", version.keyNode);
    if (v !== undefined && v !== "1") r.error("POLICY_BAD_VERSION", `policy version ${displayValue(v, 20)} is not supported; this swarmgate reads version 1`, version.node);
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
  const vpnE = entry("vpn");
  if (vpnE && role !== "host") r.error("POLICY_ROLE", '"vpn" confines a host\'s own traffic to a tunnel; a gateway policy cannot have it', vpnE.keyNode);
  const vpn = vpnE && role === "host" ? readVpn(r, vpnE.node, vpnE.keyNode, users) : undefined;
  if (vpn && host?.interface === vpn.interface) r.error("POLICY_BAD_VALUE", `vpn.interface must be the tunnel, not the host's own interface ${host.interface}`, vpnE!.node);
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
    ...(vpn && { vpn }),
  };
}

type Entry = { node: Node | null };

function firstLine(s: string): string {
  return s.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
}

function sortByPosition(d: Diagnostic[]): Diagnostic[] {
  return [...d].sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
}


