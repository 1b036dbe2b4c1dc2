import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { addressKey, embeddedIpv4, formatAddress, parseAddress, sortedUnique } from "../src/net/address.js";
import { parsePortRange } from "../src/net/port.js";
import { prefixCount, rangeToPrefixes } from "../src/net/ranges.js";
import { formatPrefix, parsePrefix, prefixContains, prefixesOverlap } from "../src/net/prefix.js";

describe("addresses", () => {
  test.each([
    ["192.168.1.1", "192.168.1.1"],
    ["2001:DB8:0:0:0:0:0:1", "2001:db8::1"],
    ["::", "::"],
    ["::1", "::1"],
    ["2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1"], // RFC 5952: the longest zero run is compressed
    ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"],
    ["::ffff:192.0.2.1", "::ffff:c000:201"],
    ["ff15::efc0:988f", "ff15::efc0:988f"],
  ])("%s prints as %s", (text, canonical) => {
    expect(formatAddress(parseAddress(text)!)).toBe(canonical);
  });

  test.each(["256.1.1.1", "1.2.3", "01.2.3.4", "1.2.3.4.5", "2001:db8::1::2", "fe80::1%eth0", "12345::", "", "x"])(
    "%s is rejected", (text) => expect(parseAddress(text)).toBeUndefined());

  test("IPv4 and IPv6 survive print and parse", () => {
    fc.assert(fc.property(fc.ipV4(), (ip) => formatAddress(parseAddress(ip)!) === ip));
    fc.assert(fc.property(fc.ipV6(), (ip) => {
      const a = parseAddress(ip)!;
      return parseAddress(formatAddress(a))!.value === a.value;
    }));
  });
});

describe("prefixes", () => {
  test("host bits are an error with a suggestion, unless it is an interface address", () => {
    const bad = parsePrefix("192.168.1.5/24");
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.reason).toContain("did you mean 192.168.1.0/24?");
    const iface = parsePrefix("192.168.1.5/24", "interface");
    expect(iface.ok && formatPrefix(iface.prefix)).toBe("192.168.1.0/24");
  });

  test("containment and overlap", () => {
    const net = (t: string) => { const p = parsePrefix(t); if (!p.ok) throw new Error(t); return p.prefix; };
    expect(prefixContains(net("192.168.1.0/24"), parseAddress("192.168.1.77")!)).toBe(true);
    expect(prefixContains(net("192.168.1.0/24"), parseAddress("192.168.2.1")!)).toBe(false);
    expect(prefixContains(net("2001:db8::/32"), parseAddress("192.168.2.1")!)).toBe(false);
    expect(prefixesOverlap(net("10.0.0.0/8"), net("10.1.0.0/16"))).toBe(true);
    expect(prefixesOverlap(net("10.0.0.0/16"), net("10.1.0.0/16"))).toBe(false);
    expect(parsePrefix("10.0.0.0/33").ok).toBe(false);
    expect(parsePrefix("::/129").ok).toBe(false);
  });
});

describe("ports", () => {
  test.each([
    [6881, { first: 6881, last: 6881 }],
    ["6881-6889", { first: 6881, last: 6889 }],
    ["6881:6889", { first: 6881, last: 6889 }],
    ["65535", { first: 65535, last: 65535 }],
  ])("%s parses", (v, range) => expect(parsePortRange(v)).toEqual({ ok: true, range }));

  test.each([
    [0, "POLICY_BAD_PORT"], [65536, "POLICY_BAD_PORT"], ["6889-6881", "POLICY_BAD_RANGE"],
    ["0-10", "POLICY_BAD_PORT"], ["abc", "POLICY_BAD_PORT"], [1.5, "POLICY_BAD_PORT"], [-1, "POLICY_BAD_PORT"],
    // Text is decimal digits only (YAML number spellings reach here as written).
    ["1e3", "POLICY_BAD_PORT"], ["0x1A", "POLICY_BAD_PORT"], ["6881.0", "POLICY_BAD_PORT"], ["+80", "POLICY_BAD_PORT"],
    ["080", "POLICY_BAD_PORT"], [" 80", "POLICY_BAD_PORT"], ["6881 - 6889", "POLICY_BAD_PORT"], ["9".repeat(400), "POLICY_BAD_PORT"],
  ])("%s is rejected with %s", (v, code) => expect(parsePortRange(v)).toMatchObject({ ok: false, code }));
});

describe("IPv4 inside IPv6", () => {
  test.each([
    ["::ffff:192.0.2.1", "192.0.2.1"], ["::ffff:c000:201", "192.0.2.1"],
    ["::1", undefined], ["::", undefined], ["::192.0.2.1", undefined], ["64:ff9b::192.0.2.1", undefined], ["192.0.2.1", undefined],
  ])("%s holds %s", (text, v4) => {
    const found = embeddedIpv4(parseAddress(text)!);
    expect(found && formatAddress(found)).toBe(v4);
  });
});

describe("address values as keys", () => {
  const value = fc.bigInt({ min: 0n, max: (1n << 128n) - 1n });
  test("addressKey is one-to-one (distinct addresses stay distinct keys) and leaves IPv4 values as they are", () => {
    fc.assert(fc.property(value, value, (a, b) => (addressKey(a) === addressKey(b)) === (a === b)));
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }), (a) => addressKey(a) === a));
    // IPv6 networks, whose low 64 bits are all zero, get keys that differ in their low bits.
    expect(new Set([1n, 2n, 3n].map((i) => addressKey(i << 64n) & ((1n << 64n) - 1n))).size).toBe(3);
  });

  test("sortedUnique sorts and keeps each value once", () => {
    fc.assert(fc.property(fc.array(value, { maxLength: 50 }), (xs) => {
      const want = [...new Set(xs)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      expect(sortedUnique([...xs])).toEqual(want);
    }));
  });
});

describe("prefix counts", () => {
  test("prefixCount equals the number of prefixes rangeToPrefixes writes, on both families", () => {
    for (const family of [4, 6] as const) {
      const max = (1n << (family === 4 ? 32n : 128n)) - 1n;
      const bound = fc.oneof(fc.bigInt({ min: 0n, max }), fc.constantFrom(0n, 1n, max - 1n, max), fc.bigInt({ min: 0n, max: 4096n }));
      fc.assert(fc.property(bound, bound, (x, y) => {
        const [first, last] = x <= y ? [x, y] : [y, x];
        expect(prefixCount(family, first, last)).toBe(rangeToPrefixes(family, first, last).length);
      }), { numRuns: 2000 });
    }
    expect(prefixCount(4, 0n, (1n << 32n) - 1n)).toBe(1);
    expect(prefixCount(4, 1n, (1n << 32n) - 2n)).toBe(62);
  });
});
