// Every malformed or contradictory policy gets a stable code, a message and
// the place in the file; all problems are reported in one run.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { SwarmgateError, type Diagnostic } from "../src/errors.js";
import { loadPolicy, parsePolicy } from "../src/policy/load.js";

function errorsOf(text: string): Diagnostic[] {
  try {
    parsePolicy(text, "p.yaml");
  } catch (e) {
    if (e instanceof SwarmgateError) return [...e.diagnostics];
    throw e;
  }
  throw new Error("the policy was accepted");
}

function fileErrors(content: string | Buffer): Diagnostic[] {
  const dir = mkdtempSync(join(tmpdir(), "sg-policy-"));
  const file = join(dir, "p.yaml");
  writeFileSync(file, content);
  try {
    loadPolicy(file);
  } catch (e) {
    if (e instanceof SwarmgateError) return [...e.diagnostics];
    throw e;
  }
  throw new Error("the policy was accepted");
}

const HOST = "version: 1\nhost:\n  interface: eth0\n";
const GATEWAY = "version: 1\ngateway:\n  wan: ppp0\n  lan: lan0\n  lan_network: 192.168.1.0/24\n";

describe("bad policies", () => {
  test.each<[string, string, { code: string; message: string; line?: number; column?: number }]>([
    ["not YAML", "version: 1\nhost: [eth0\n", { code: "POLICY_SYNTAX", message: "not valid YAML", line: 3, column: 1 }],
    ["a scalar instead of a mapping", "just some words\n", { code: "POLICY_TYPE", message: "must be a mapping", line: 1, column: 1 }],
    ["unknown key with a suggestion", `${HOST}  adresses: [192.0.2.1]\n`,
      { code: "POLICY_UNKNOWN_KEY", message: 'unknown key "adresses" in "host" (did you mean "addresses"?)', line: 4, column: 3 }],
    ["unknown top-level key", `${HOST}clinets: []\n`,
      { code: "POLICY_UNKNOWN_KEY", message: 'did you mean "clients"?', line: 4, column: 1 }],
    ["wrong type", `${HOST}clients:\n  - name: qb\n    ports: 6881\n    lsd: sometimes\n`,
      { code: "POLICY_TYPE", message: '"clients[0].lsd" must be true or false, not the text "sometimes"', line: 7, column: 10 }],
    ["a mapping where a list item must be one", `${HOST}clients: 6881\n`,
      { code: "POLICY_TYPE", message: '"clients[0]" must be a mapping', line: 4, column: 10 }],
    ["bad address", `${HOST}  addresses: [192.168.1.300]\n`,
      { code: "POLICY_BAD_ADDRESS", message: '"192.168.1.300" is not an IPv4 or IPv6 address', line: 4, column: 15 }],
    ["bad CIDR prefix length", `${HOST}admin:\n  - {name: ssh, port: 22, from: [10.0.0.0/33]}\n`,
      { code: "POLICY_BAD_ADDRESS", message: '"/33" is not a prefix length for IPv4', line: 5, column: 34 }],
    ["CIDR with host bits", `${HOST}admin:\n  - {name: ssh, port: 22, from: [192.168.153.7/24]}\n`,
      { code: "POLICY_BAD_ADDRESS", message: "did you mean 192.168.153.0/24?", line: 5, column: 34 }],
    ["port 0", `${HOST}clients:\n  - name: qb\n    ports: 0\n`,
      { code: "POLICY_BAD_PORT", message: "port 0 is out of range (ports are 1-65535)", line: 6, column: 12 }],
    ["port above 65535", `${HOST}admin:\n  - name: ssh\n    port: 65536\n    from: [192.0.2.1]\n`,
      { code: "POLICY_BAD_PORT", message: "port 65536 is out of range", line: 6, column: 11 }],
    ["reversed range", `${HOST}clients:\n  - name: qb\n    ports: 6889-6881\n`,
      { code: "POLICY_BAD_RANGE", message: 'port range "6889-6881" is reversed (did you mean 6881-6889?)', line: 6, column: 12 }],
    ["overlapping forward ranges", `${GATEWAY}forward:\n  - host: 192.168.1.3\n    ports: 6890-6899\n  - host: 192.168.1.4\n    ports: 6895-6905\n`,
      { code: "POLICY_FORWARD_OVERLAP", message: "overlap ports 6890-6899 already forwarded to 192.168.1.3", line: 10, column: 12 }],
    ["forward host outside lan_network", `${GATEWAY}forward:\n  - host: 192.168.2.3\n    ports: 6890-6899\n`,
      { code: "POLICY_FORWARD_OUTSIDE_LAN", message: "forward host 192.168.2.3 is outside the LAN network 192.168.1.0/24", line: 7, column: 11 }],
    ["duplicate client names", `${HOST}clients:\n  - {name: qb, ports: 6881}\n  - {name: qb, ports: 6882}\n`,
      { code: "POLICY_DUPLICATE_NAME", message: 'client name "qb" is already used by clients[0]', line: 6, column: 12 }],
    ["duplicate admin names", `${HOST}admin:\n  - {name: ssh, port: 22, from: [192.0.2.1]}\n  - {name: ssh, port: 2222, from: [192.0.2.1]}\n`,
      { code: "POLICY_DUPLICATE_NAME", message: 'admin service name "ssh" is already used by admin[0]', line: 6, column: 12 }],
    ["admin port equal to a client port", `${HOST}clients:\n  - {name: qb, ports: 6881-6889}\nadmin:\n  - {name: webui, port: 6885, from: [192.0.2.0/24]}\n`,
      { code: "POLICY_PORT_CONFLICT", message: 'admin service "webui" port 6885 (tcp) overlaps client "qb" port 6881-6889', line: 7, column: 25 }],
    ["duplicate key", `${HOST}clients: []\nclients: []\n`, { code: "POLICY_DUPLICATE_KEY", message: "", line: 5, column: 1 }],
    ["missing version", "host:\n  interface: eth0\n", { code: "POLICY_MISSING_KEY", message: 'needs the key "version"', line: 1, column: 1 }],
    ["unsupported version", "version: 2\nhost: {}\n", { code: "POLICY_BAD_VERSION", message: "policy version 2 is not supported", line: 1, column: 10 }],
    ["neither host nor gateway", "version: 1\nclients: []\n", { code: "POLICY_ROLE", message: 'needs a "host" section', line: 1, column: 1 }],
    ["both host and gateway", `${GATEWAY}host: {}\n`, { code: "POLICY_ROLE", message: "not both", line: 6, column: 1 }],
    ["forward on a host", `${HOST}forward: []\n`, { code: "POLICY_ROLE", message: '"forward" needs a "gateway" section', line: 4, column: 1 }],
    ["IPv6 forward host under host", `${GATEWAY}forward:\n  - {host: "2001:db8::3", ports: 7000}\n`,
      { code: "POLICY_FAMILY_MISMATCH", message: "must be an IPv4 address", line: 7, column: 12 }],
    ["unknown protocol", `${HOST}clients:\n  - {name: qb, ports: 6881, protocols: [sctp]}\n`,
      { code: "POLICY_BAD_VALUE", message: 'unknown protocol "sctp"', line: 5, column: 41 }],
    ["bad log rate", `${HOST}log:\n  rate: often\n`, { code: "POLICY_BAD_VALUE", message: "is not a rate", line: 5, column: 9 }],
    ["log prefix too long", `${HOST}log:\n  prefix: "${"x".repeat(30)}"\n`, { code: "POLICY_BAD_VALUE", message: "1-29 printable", line: 5, column: 11 }],
    ["bad client name", `${HOST}clients:\n  - {name: "q b", ports: 6881}\n`, { code: "POLICY_BAD_NAME", message: '"q b" is not a valid name', line: 5, column: 12 }],
    ["bad interface name", "version: 1\nhost:\n  interface: eth0/1\n", { code: "POLICY_BAD_NAME", message: "is not a Linux interface name", line: 3, column: 14 }],
  ])("%s", (_name, text, expected) => {
    const [first] = errorsOf(text).filter((d) => d.code === expected.code);
    expect(first, JSON.stringify(errorsOf(text))).toBeDefined();
    expect(first!.message).toContain(expected.message);
    expect(first!.file).toBe("p.yaml");
    if (expected.line !== undefined) expect([first!.line, first!.column]).toEqual([expected.line, expected.column]);
  });

  test("every problem is reported in one run, in file order", () => {
    const errors = errorsOf(`${HOST}  adress: x\nclients:\n  - {name: qb, ports: 0}\n  - {name: tr, ports: 9-1}\nadmin:\n  - {name: ssh, port: 22, from: [300.1.1.1]}\n`);
    expect(errors.map((e) => e.code)).toEqual(["POLICY_UNKNOWN_KEY", "POLICY_BAD_PORT", "POLICY_BAD_RANGE", "POLICY_BAD_ADDRESS"]);
    expect(errors.map((e) => e.line)).toEqual([4, 6, 7, 9]);
  });

  test("the source line comes with the diagnostic for a caret display", () => {
    const [e] = errorsOf(`${HOST}clients:\n  - name: qb\n    ports: 70000\n`);
    expect(e!.sourceLine).toBe("    ports: 70000");
  });
});

describe("bad files", () => {
  test("empty file", () => {
    expect(fileErrors("")[0]).toMatchObject({ code: "POLICY_EMPTY", file: expect.stringContaining("p.yaml") });
    expect(fileErrors("# only a comment\n\n")[0]!.code).toBe("POLICY_EMPTY");
  });

  test("file larger than 1 MiB", () => {
    const big = `version: 1\nhost: {}\n${"#".repeat(1024 * 1024)}\n`;
    expect(fileErrors(big)[0]).toMatchObject({ code: "POLICY_TOO_LARGE", message: expect.stringContaining("1 MiB") });
  });

  test("binary file", () => {
    expect(fileErrors(Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x00, 0x00]))[0]!.code).toBe("POLICY_BINARY");
    expect(fileErrors(Buffer.from([0x76, 0x65, 0xff, 0xfe, 0x0a]))[0]!.code).toBe("POLICY_BINARY"); // invalid UTF-8
  });

  test("missing file", () => {
    expect(() => loadPolicy("/nonexistent/p.yaml")).toThrow(expect.objectContaining({ code: "POLICY_NOT_FOUND" }));
  });

  test("JSON is accepted, with positions", () => {
    const errors = errorsOf('{\n  "version": 1,\n  "host": {"interface": "eth0"},\n  "clients": [{"name": "qb", "ports": 0}]\n}\n');
    expect(errors[0]).toMatchObject({ code: "POLICY_BAD_PORT", line: 4, column: 39 });
  });
});
