// fast-check generators of valid policies, written as the JSON a user could
// have typed. Ports come from disjoint slots so that clients, admin services
// and forwards never collide, which the loader would rightly reject.
import fc from "fast-check";
import { formatPrefix, parsePrefix } from "../../src/net/prefix.js";
import { formatAddress } from "../../src/net/address.js";

const SLOT = 400;
const portIn = (slot: number) =>
  fc.tuple(fc.integer({ min: 0, max: SLOT - 1 }), fc.integer({ min: 0, max: 20 })).map(([a, len]) => {
    const first = 1024 + slot * SLOT + a;
    const last = Math.min(first + len, 1024 + slot * SLOT + SLOT - 1);
    return first === last ? first : `${first}-${last}`;
  });

const protocols = fc.constantFrom(["tcp"], ["udp"], ["tcp", "udp"], undefined);

const network = (family: 4 | 6) =>
  (family === 4 ? fc.tuple(fc.ipV4(), fc.integer({ min: 8, max: 32 })) : fc.tuple(fc.ipV6(), fc.integer({ min: 16, max: 128 })))
    .map(([ip, len]) => {
      const p = parsePrefix(`${ip}/${len}`, "interface");
      if (!p.ok) throw new Error(p.reason);
      return formatPrefix(p.prefix);
    });
const anyNetwork = fc.oneof(network(4), network(6));
const anyAddress = fc.oneof(fc.ipV4(), fc.ipV6());


/** Distinct slot numbers for n openings. */
const slots = (n: number) => fc.uniqueArray(fc.integer({ min: 0, max: 150 }), { minLength: n, maxLength: n });

const outbound = fc.oneof(
  fc.constant("any"),
  fc.record({
    peers: fc.boolean(),
    trackers: fc.array(fc.oneof(
      fc.integer({ min: 1, max: 65535 }),
      fc.record({ ports: fc.array(fc.integer({ min: 1, max: 65535 }), { minLength: 1, maxLength: 20 }), to: fc.array(anyNetwork, { maxLength: 3 }), protocols }, { requiredKeys: ["ports"] }),
    ), { maxLength: 4 }),
    dns: fc.oneof(fc.constant("any"), fc.array(anyAddress, { maxLength: 3 })),
  }, { requiredKeys: [] }),
);

const common = fc.record({
  icmp: fc.constantFrom("allow", "deny"),
  log: fc.oneof(fc.constant(false), fc.record({ prefix: fc.stringMatching(/^[a-z: ]{1,20}$/), rate: fc.constantFrom("1/second", "10/minute", "3/hour") })),
}, { requiredKeys: [] });

function openings(n: number, clientCount: number) {
  return slots(n).chain((s) => fc.tuple(
    fc.tuple(...s.slice(0, clientCount).map((slot) => fc.record({ ports: portIn(slot), protocols, lsd: fc.boolean() }, { requiredKeys: ["ports"] }))),
    fc.tuple(...s.slice(clientCount).map((slot) => fc.record({ port: portIn(slot), protocols, from: fc.array(anyNetwork, { minLength: 1, maxLength: 3 }) }, { requiredKeys: ["port", "from"] }))),
  ));
}

const withNames = <T extends object>(items: T[], prefix: string) => items.map((x, i) => ({ name: `${prefix}${i}`, ...x }));

/**
 * Host addresses at the edges of the address space, which the loader accepts
 * today (issue 8, defect 26: the unspecified address, loopback, multicast,
 * broadcast, an address with its on-link network).
 */
const edgeAddress = fc.oneof(
  { weight: 2, arbitrary: anyAddress },
  { weight: 1, arbitrary: fc.constantFrom("0.0.0.0", "192.168.1.5/24", "127.0.0.1", "224.0.0.1", "255.255.255.255", "::", "::1", "ff02::1", "fe80::1/64", "2001:db8::51") },
);

const makeHostPolicy = (address: fc.Arbitrary<string>) => fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 })).chain(([c, a]) =>
  fc.record({
    host: fc.record({
      interface: fc.constantFrom("eth0", "enp3s0", "wlan0"),
      addresses: fc.array(address, { maxLength: 3 }),
      dhcp: fc.boolean(),
    }, { requiredKeys: [] }),
    open: openings(c + a, c),
    outbound,
    common,
  })).map(({ host, open: [clients, admin], outbound, common }) => ({
    version: 1, host, clients: withNames(clients, "client"), admin: withNames(admin, "admin"), outbound, ...common,
  }));

export const hostPolicy = makeHostPolicy(anyAddress);
/** Host policies whose addresses include the edges of the address space. */
export const hostPolicyEdges = makeHostPolicy(edgeAddress);

export const gatewayPolicy = fc.tuple(network(4).filter((n) => !n.endsWith("/32") && !n.endsWith("/31")), fc.option(network(6).filter((n) => !n.endsWith("/128"))), fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 2 }))
  .chain(([lan, lan6, f, a]) => fc.record({
    forwardSlots: slots(f),
    offsets: fc.array(fc.bigInt({ min: 1n, max: (1n << 20n) }), { minLength: f, maxLength: f }),
    admin: openings(a, 0),
    forwardProtocols: fc.array(protocols, { minLength: f, maxLength: f }),
    masquerade: fc.boolean(),
    common,
  }).chain((r) => fc.tuple(...r.forwardSlots.map(portIn)).map((ports) => ({ lan, lan6, ports, ...r }))))
  .map(({ lan, lan6, ports, offsets, admin, forwardProtocols, masquerade, common }) => ({
    version: 1,
    gateway: { wan: "ppp0", lan: "lan0", lan_network: lan, ...(lan6 ? { lan_network6: lan6 } : {}), masquerade },
    forward: ports.map((p, i) => ({
      host: inside(lan, offsets[i]!),
      ...(lan6 && i % 2 === 0 ? { host6: inside(lan6, offsets[i]!) } : {}),
      ports: p,
      ...(forwardProtocols[i] ? { protocols: forwardProtocols[i] } : {}),
    })),
    admin: withNames(admin[1], "admin"),
    ...common,
  }));

/** An address inside the network: its base plus an offset folded into the host part. */
function inside(net: string, offset: bigint): string {
  const p = parsePrefix(net);
  if (!p.ok) throw new Error(p.reason);
  const hostBits = BigInt((p.prefix.family === 4 ? 32 : 128) - p.prefix.length);
  const size = 1n << hostBits;
  const off = size > 2n ? 1n + (offset % (size - 2n)) : 0n;
  return formatAddress({ family: p.prefix.family, value: p.prefix.network + off });
}
