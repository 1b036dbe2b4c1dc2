// Every policy input is hostile (issue 8, defects 12, 13, 15, 16, 24, 28): files
// that are not files, YAML bombs, values that pass `check` but no backend loads,
// and values that would repaint the terminal when echoed. Codes and positions
// are asserted, not wording.
import { execFile } from "node:child_process";
import { mkdtempSync, mkdirSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, test } from "vitest";
import { formatDiagnosticWithSource, SwarmgateError, type Diagnostic } from "../src/errors.js";
import { loadPolicy, parsePolicy } from "../src/policy/load.js";
import { MAIN } from "./helpers/cli.js";

const HOST = "version: 1\nhost:\n  interface: eth0\n";
const GATEWAY = "version: 1\ngateway:\n  wan: ppp0\n  lan: lan0\n  lan_network: 192.168.1.0/24\n";

function errorsOf(text: string): Diagnostic[] {
  try {
    parsePolicy(text, "p.yaml");
  } catch (e) {
    if (e instanceof SwarmgateError) return [...e.diagnostics];
    throw e;
  }
  throw new Error("the policy was accepted");
}

function loadErrors(file: string): Diagnostic[] {
  try {
    loadPolicy(file);
  } catch (e) {
    if (e instanceof SwarmgateError) return [...e.diagnostics];
    throw e;
  }
  throw new Error("the policy was accepted");
}

/** [code, line, column] of the first diagnostic, for compact assertions. */
const where = (d: Diagnostic[]) => [d[0]!.code, d[0]!.line, d[0]!.column];

/** 1-based line and column of the n-th (0-based) occurrence of needle. */
function positionOf(text: string, needle: string, n = 0): [number, number] {
  let at = -1;
  for (let i = 0; i <= n; i++) at = text.indexOf(needle, at + 1);
  const before = text.slice(0, at);
  return [before.split("\n").length, at - before.lastIndexOf("\n")];
}

const tempDir = () => mkdtempSync(join(tmpdir(), "sg-hostile-"));

/** The built CLI with a hard deadline: a regression that hangs fails in seconds, not never. */
async function runCli(args: string[], timeoutMs = 8000) {
  const started = Date.now();
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [MAIN, ...args], { timeout: timeoutMs, killSignal: "SIGKILL" });
    return { code: 0, stdout, stderr, ms: Date.now() - started, killed: false };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string; killed?: boolean };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr, ms: Date.now() - started, killed: err.killed === true };
  }
}

describe("12: only regular files are read, and only up to the size limit", () => {
  test("a FIFO is refused at once, with and without --json", async () => {
    const fifo = join(tempDir(), "p.yaml");
    await promisify(execFile)("mkfifo", [fifo]);
    const plain = await runCli(["check", fifo]);
    expect(plain.killed).toBe(false);
    expect(plain.code).toBe(2);
    expect(plain.stderr).toContain("error[POLICY_NOT_REGULAR]");
    const json = await runCli(["check", "--json", fifo]);
    expect(json.killed).toBe(false);
    expect(JSON.parse(json.stdout).errors[0].code).toBe("POLICY_NOT_REGULAR");
  }, 20_000);

  test.each(["/dev/zero", "/dev/urandom"])("%s is refused at once, not read forever", async (device) => {
    const r = await runCli(["check", "--json", device]);
    expect(r.killed).toBe(false);
    expect(r.ms).toBeLessThan(5000);
    expect(JSON.parse(r.stdout).errors[0].code).toBe("POLICY_NOT_REGULAR");
  }, 20_000);

  test("a symlink to a device is judged by what it points to", async () => {
    const link = join(tempDir(), "p.yaml");
    symlinkSync("/dev/zero", link);
    const r = await runCli(["check", "--json", link]);
    expect(r.killed).toBe(false);
    expect(JSON.parse(r.stdout).errors[0].code).toBe("POLICY_NOT_REGULAR");
  }, 20_000);

  test("a directory is refused", () => {
    const dir = tempDir();
    mkdirSync(join(dir, "p.yaml"));
    expect(loadErrors(join(dir, "p.yaml"))[0]).toMatchObject({ code: "POLICY_NOT_REGULAR", file: join(dir, "p.yaml") });
  });

  test("a symlink to a regular file is fine", () => {
    const dir = tempDir();
    writeFileSync(join(dir, "real.yaml"), HOST);
    symlinkSync(join(dir, "real.yaml"), join(dir, "p.yaml"));
    expect(loadPolicy(join(dir, "p.yaml")).host?.interface).toBe("eth0");
  });

  test("a sparse file of 4 GiB is refused without reading it", () => {
    const file = join(tempDir(), "p.yaml");
    writeFileSync(file, "");
    truncateSync(file, 4 * 1024 ** 3);
    const started = Date.now();
    expect(loadErrors(file)[0]!.code).toBe("POLICY_TOO_LARGE");
    expect(Date.now() - started).toBeLessThan(2000);
  });

  test("a missing file is still POLICY_NOT_FOUND", () => {
    expect(loadErrors(join(tempDir(), "nope.yaml"))[0]!.code).toBe("POLICY_NOT_FOUND");
  });
});

/** admin entries that all take their sources from one anchored list of n addresses. */
function aliasBomb(addresses: number, aliases: number): string {
  const list = Array.from({ length: addresses }, (_, i) => `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`).join(", ");
  const admin = Array.from({ length: aliases }, (_, i) => `  - {name: a${i}, port: ${1000 + i}, from: *nets}`).join("\n");
  return `version: 1\nhost:\n  addresses: &nets [${list}]\nadmin:\n${admin}\n`;
}

describe("13: aliases and nesting are bounded", () => {
  test("the 74 KB alias bomb of the issue is refused in a moment", async () => {
    const file = join(tempDir(), "p.yaml");
    writeFileSync(file, aliasBomb(5000, 2000));
    const r = await runCli(["check", "--json", file], 15_000);
    expect(r.killed).toBe(false);
    expect(r.ms).toBeLessThan(5000);
    expect(JSON.parse(r.stdout).errors[0].code).toBe("POLICY_TOO_COMPLEX");
  }, 30_000);

  test("the alias that passes the bound is the one reported", () => {
    // 1,000 addresses are 1,001 values (the list and its items): the 100th alias passes 100,000.
    const text = aliasBomb(1000, 150);
    const errors = errorsOf(text);
    expect(errors).toHaveLength(1);
    expect(where(errors)).toEqual(["POLICY_TOO_COMPLEX", ...positionOf(text, "*nets", 99)]);
  });

  test("a few aliases are still fine", () => {
    const policy = parsePolicy(aliasBomb(10, 20), "p.yaml");
    expect(policy.admin).toHaveLength(20);
    expect(policy.admin[19]!.from).toHaveLength(10);
  });

  test("a billion laughs is refused", () => {
    const levels = ["x0: &l0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"];
    for (let i = 1; i < 9; i++) levels.push(`x${i}: &l${i} [${Array(10).fill(`*l${i - 1}`).join(", ")}]`);
    const text = `${HOST}clients:\n  - name: qb\n    ports: 6881\n    protocols: {${levels.join(", ")}}\n`;
    expect(errorsOf(text).map((d) => d.code)).toContain("POLICY_TOO_COMPLEX");
  });

  test("an alias inside the value it names is refused at the alias", () => {
    const text = `${HOST}clients: &c [*c]\n`;
    expect(where(errorsOf(text))).toEqual(["POLICY_TOO_COMPLEX", ...positionOf(text, "*c")]);
  });

  test.each([
    ["flow sequences", `version: 1\nhost: ${"[".repeat(10_000)}${"]".repeat(10_000)}\n`],
    ["JSON objects", `{"version": 1, "host": ${'{"a": '.repeat(10_000)}1${"}".repeat(10_000)}}\n`],
    ["block sequences", `version: 1\nhost:\n${Array.from({ length: 200 }, (_, i) => `${" ".repeat(2 * i + 2)}-`).join("\n")} x\n`],
  ])("deep %s are POLICY_TOO_COMPLEX with a place, not a stack overflow", (_kind, text) => {
    const errors = errorsOf(text);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.code).toBe("POLICY_TOO_COMPLEX");
    expect(errors[0]!.line).toBeGreaterThanOrEqual(1);
    expect(errors[0]!.message).not.toContain("call stack");
    // The caret display shows a window of the line, not 10,000 brackets.
    for (const line of formatDiagnosticWithSource(errors[0]!).split("\n")) expect(line.length).toBeLessThan(200);
  });

  test("the place of a deep nesting is the first bracket too deep", () => {
    // Parser stack: the document and the mapping, then one entry per "[": the 31st
    // bracket makes 33 > 32 (MAX_YAML_DEPTH).
    const text = `version: 1\nhost: ${"[".repeat(100)}${"]".repeat(100)}\n`;
    expect(where(errorsOf(text))).toEqual(["POLICY_TOO_COMPLEX", 2, "host: ".length + 31]);
  });

  test("a deep but legal policy is read", () => {
    const text = `${HOST}outbound:\n  trackers:\n    - ports: [80, 443]\n      to: [192.0.2.1, "2001:db8::1"]\n      protocols: [tcp]\n`;
    expect(parsePolicy(text, "p.yaml").outbound.trackers[0]!.to).toHaveLength(2);
  });
});

describe("24: an undefined alias is reported where it is", () => {
  test.each([
    ["a value", "version: 1\nhost:\n  interface: *nope\n", 3, 14],
    ["a list item", `${HOST}admin:\n  - {name: ssh, port: 22, from: [*trusted]}\n`, 5, 34],
    ["a key", `${HOST}*k : 1\n`, 4, 1],
  ])("in %s", (_what, text, line, column) => {
    const errors = errorsOf(text);
    expect(where(errors)).toEqual(["POLICY_SYNTAX", line, column]);
    expect(errors[0]!.message).toContain("undefined");
  });

  test("an alias before its anchor is undefined too", () => {
    const text = `${HOST}  addresses: *a\n  lan: &a [192.0.2.0/24]\n`;
    expect(where(errorsOf(text))).toEqual(["POLICY_SYNTAX", 4, 14]);
  });
});

describe("15: check refuses what a backend could not load", () => {
  const logWith = (line: string) => `${HOST}log:\n  ${line}\n`;

  test.each([
    ["command substitution", 'prefix: "$(reboot) "'],
    ["nft variables", 'prefix: "${x} $y "'],
    ["a backtick", 'prefix: "a`b` "'],
    ["a single quote", "prefix: \"it's \""],
    ["a double quote", 'prefix: "a\\"b"'],
    ["a backslash", 'prefix: "a\\\\b"'],
    ["an escape sequence", 'prefix: "\\e[31mred "'],
    ["a newline", 'prefix: "a\\nb"'],
    ["a tab", 'prefix: "a\\tb"'],
    ["non-ASCII", 'prefix: "pare-feu à "'],
    ["30 characters", `prefix: "${"x".repeat(30)}"`],
    ["nothing", 'prefix: ""'],
  ])("a log prefix with %s", (_what, line) => {
    const text = logWith(line);
    expect(where(errorsOf(text))).toEqual(["POLICY_BAD_VALUE", 5, 11]);
  });

  test("a log prefix of 29 printable characters, punctuation included, is fine", () => {
    const prefix = "sg #1 {in}; [drop] %d @x:-+=";
    expect(prefix).toHaveLength(28);
    expect(parsePolicy(logWith(`prefix: "${prefix}!"`), "p.yaml").log?.prefix).toBe(`${prefix}!`);
  });

  test.each([
    "999999/second", "10001/second", "600001/minute", "1/day", "3/day", "0/minute", "010/minute", "99999999999999999999/second",
  ])("log rate %s is refused", (rate) => {
    expect(where(errorsOf(logWith(`rate: ${rate}`)))).toEqual(["POLICY_BAD_VALUE", 5, 9]);
  });

  test.each([
    ["10000/second", 10000, "second"], ["600000/minute", 600000, "minute"], ["999999/hour", 999999, "hour"],
    ["4/day", 4, "day"], ["1/second", 1, "second"], ["10/min", 10, "minute"],
  ])("log rate %s is accepted", (rate, count, unit) => {
    expect(parsePolicy(logWith(`rate: ${rate}`), "p.yaml").log?.rate).toEqual({ count, unit });
  });

  test.each([
    ["a client name written as a number", `${HOST}clients:\n  - {name: 0x1A, ports: 6881}\n`, "0x1A"],
    ["a client name with leading zeros", `${HOST}clients:\n  - {name: 007, ports: 6881}\n`, "007"],
  ])("%s keeps its spelling", (_what, text, name) => {
    expect(parsePolicy(text, "p.yaml").clients[0]!.name).toBe(name);
  });

  test.each([
    ["a shell substitution", '"$(reboot)"'], ["a quote", "'a\"b'"], ["a newline", '"a\\nb"'], ["a space", '"a b"'], ["33 characters", "x".repeat(33)],
  ])("a name with %s is refused", (_what, name) => {
    const text = `${HOST}admin:\n  - name: ${name}\n    port: 22\n    from: [192.0.2.1]\n`;
    expect(where(errorsOf(text))).toEqual(["POLICY_BAD_NAME", 5, 11]);
  });

  test.each(["1.0", "0x1", "+1", '"2"'])("version %s is not version 1", (v) => {
    expect(where(errorsOf(`version: ${v}\nhost: {}\n`))).toEqual(["POLICY_BAD_VERSION", 1, 10]);
  });
});

describe("16: an interface is named literally", () => {
  test.each([
    ["eth+"], ["eth*"], ["veth0@if3"], ["eth0:1"], ["sixteen-chars-xx"], ["."], [".."], ["eth 0"], ["eth0/1"],
    ['\\"x\\"'], ["$x"], ["é0"], ["\\e[31m"], [""],
  ])("%s is refused for host.interface, gateway.wan and gateway.lan", (name) => {
    const host = `version: 1\nhost:\n  interface: "${name}"\n`;
    expect(where(errorsOf(host))).toEqual(["POLICY_BAD_NAME", 3, 14]);
    const wan = `version: 1\ngateway:\n  wan: "${name}"\n  lan: lan0\n  lan_network: 192.168.1.0/24\n`;
    expect(where(errorsOf(wan))).toEqual(["POLICY_BAD_NAME", 3, 8]);
    const lan = `version: 1\ngateway:\n  wan: ppp0\n  lan: "${name}"\n  lan_network: 192.168.1.0/24\n`;
    expect(where(errorsOf(lan))).toEqual(["POLICY_BAD_NAME", 4, 8]);
  });

  test.each(["eth0", "enp3s0", "wlp2s0", "br-lan", "eth0.100", "wg_0", "fifteen-chars-x"])("%s is fine", (name) => {
    expect(parsePolicy(`version: 1\nhost:\n  interface: ${name}\n`, "p.yaml").host?.interface).toBe(name);
  });
});

describe("28: values are taken as written, and echoed safely", () => {
  test.each(["1e3", "0x1A", "0o17", "6881.0", "+80", "080", '"1e3"', '" 80"', '"80 "', '"+80"', '"0x1A"', "6881-0x1B00", "1_000", ".inf", '"6881 - 6889"'])(
    "port %s is refused", (port) => {
      const text = `${HOST}clients:\n  - name: qb\n    ports: ${port}\n`;
      expect(where(errorsOf(text))).toEqual(["POLICY_BAD_PORT", 6, 12]);
    });

  test("JSON numbers are held to the same rule", () => {
    const text = '{"version": 1, "host": {}, "clients": [{"name": "a", "ports": 6881.0}, {"name": "b", "ports": 1e3}]}';
    expect(errorsOf(text).map((d) => [d.code, d.line, d.column])).toEqual([
      ["POLICY_BAD_PORT", ...positionOf(text, "6881.0")], ["POLICY_BAD_PORT", ...positionOf(text, "1e3")],
    ]);
  });

  test.each([["6881", 6881, 6881], ['"6881-6889"', 6881, 6889], ["6881:6889", 6881, 6889], ["65535", 65535, 65535]])(
    "port %s is fine", (port, first, last) => {
      expect(parsePolicy(`${HOST}clients:\n  - {name: qb, ports: ${port}}\n`, "p.yaml").clients[0]!.ports).toEqual({ first, last });
    });

  test.each([
    ["admin[].from", `${HOST}admin:\n  - name: ssh\n    port: 22\n    from: ["::ffff:192.168.1.21"]\n`, "192.168.1.21"],
    ["a mapped network", `${HOST}admin:\n  - name: ssh\n    port: 22\n    from: ["::ffff:192.168.1.0/120"]\n`, "192.168.1.0/24"],
    ["hex spelling", `${HOST}admin:\n  - name: ssh\n    port: 22\n    from: ["::ffff:c0a8:115"]\n`, "192.168.1.21"],
    ["host.addresses", `${HOST}  addresses: ["::ffff:192.168.1.5/120"]\n`, "192.168.1.5/24"],
    ["host.lan", `${HOST}  lan: ["::ffff:192.168.1.0/120"]\n`, "192.168.1.0/24"],
    ["outbound.dns", `${HOST}outbound:\n  dns: ["::ffff:192.0.2.53"]\n`, "192.0.2.53"],
    ["trackers to", `${HOST}outbound:\n  trackers:\n    - {ports: 80, to: ["::ffff:192.0.2.1"]}\n`, "192.0.2.1"],
    ["forward host6", `${GATEWAY}forward:\n  - {host: 192.168.1.3, host6: "::ffff:192.168.1.3", ports: 7000}\n`, "192.168.1.3"],
  ])("an IPv4-mapped IPv6 address in %s is refused with the IPv4 spelling", (_where, text, v4) => {
    const errors = errorsOf(text);
    expect(where(errors)).toEqual(["POLICY_BAD_ADDRESS", ...positionOf(text, '"::')]);
    expect(errors[0]!.message).toContain(` ${v4} `);
  });

  test.each(["::", "::1", "2001:db8::1", "64:ff9b::192.0.2.1", "::/0", "::ffff:1:0:0"])("%s is still an IPv6 address or network", (a) => {
    const text = `${HOST}admin:\n  - {name: ssh, port: 22, from: ["${a}"]}\n`;
    expect(parsePolicy(text, "p.yaml").admin[0]!.from).toHaveLength(1);
  });

  const ESC = "\u001b";
  test.each([
    ["an unknown key", `${HOST}  "${ESC}[2J${"k".repeat(500)}": 1\n`],
    ["an address", `${HOST}  addresses: ["${ESC}[31m${"1".repeat(500)}"]\n`],
    ["a protocol", `${HOST}clients:\n  - {name: qb, ports: 6881, protocols: ["${ESC}]0;pwned${"\u0007"}${"u".repeat(500)}"]}\n`],
    ["a port", `${HOST}clients:\n  - {name: qb, ports: "${ESC}[31m${"9".repeat(500)}"}\n`],
    ["an interface", `version: 1\nhost:\n  interface: "${ESC}[31m${"e".repeat(500)}"\n`],
    ["a name", `${HOST}clients:\n  - {name: "${ESC}[31m${"n".repeat(500)}", ports: 6881}\n`],
    ["the icmp setting", `${HOST}icmp: "${ESC}[31m${"i".repeat(500)}"\n`],
    ["a type error", `${HOST}clients:\n  - {name: qb, ports: 6881, lsd: "${ESC}[31m${"l".repeat(500)}"}\n`],
    ["the log prefix", `${HOST}log: {prefix: "${ESC}[31m${"p".repeat(500)}"}\n`],
    ["the version", `version: "${ESC}[31m${"v".repeat(500)}"\nhost: {}\n`],
    ["an alias name", `${HOST}clients: *${"a".repeat(500)}\n`],
  ])("%s is echoed escaped and cut, and so is its source line", (_what, text) => {
    const errors = errorsOf(text);
    expect(errors.length).toBeGreaterThan(0);
    for (const d of errors) {
      expect(d.message).not.toMatch(/[\u0000-\u001f\u007f]/);
      expect(d.message.length).toBeLessThan(300);
      const shown = formatDiagnosticWithSource(d);
      expect(shown).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f]/);
      for (const line of shown.split("\n").slice(1)) expect(line.length).toBeLessThan(130);
    }
  });
});

describe("the caret display", () => {
  const diag = (sourceLine: string, column: number): Diagnostic =>
    ({ code: "POLICY_BAD_PORT", message: "m", file: "p.yaml", line: 7, column, sourceLine });

  test("a short line is shown whole with the caret under the column", () => {
    expect(formatDiagnosticWithSource(diag("    ports: 0", 12)).split("\n")).toEqual([
      "p.yaml:7:12: error[POLICY_BAD_PORT]: m", " 7 |     ports: 0", "   |            ^",
    ]);
  });

  test("control characters are escaped and the caret follows them", () => {
    const [, line, caret] = formatDiagnosticWithSource(diag(`  a: "\u001b[31m", b: x`, 15)).split("\n");
    expect(line).toBe(' 7 |   a: "\\x1b[31m", b: x');
    expect(caret!.indexOf("^") - caret!.indexOf("|")).toBe(line!.indexOf("b: x") - line!.indexOf("|"));
  });

  test("a long line is cut to a window around the column", () => {
    const source = `${"[".repeat(5000)}X${"]".repeat(5000)}`;
    const [, line, caret] = formatDiagnosticWithSource(diag(source, 5001)).split("\n");
    expect(line!.length).toBeLessThan(120);
    expect(line).toContain("…");
    expect(line![caret!.indexOf("^")]).toBe("X");
  });

  test("a file name with control characters is escaped", () => {
    const shown = formatDiagnosticWithSource({ ...diag("x", 1), file: "p\nflush ruleset\n#.yaml" });
    expect(shown.split("\n")[0]).toBe("p\\x0aflush ruleset\\x0a#.yaml:7:1: error[POLICY_BAD_PORT]: m");
  });
});
