// The boundaries that matter for one destination-port cell: only the rules
// that can match a packet of that protocol and port (the simulator's own
// candidate lists) cut the address and source-port spaces there. A policy
// with N admin services therefore cuts each service's port at its own
// sources only, instead of every port at every source (N² cells).
import type { Family } from "../net/address.js";
import type { PortRange } from "../net/port.js";
import { hostPrefix, type Prefix } from "../net/prefix.js";
import type { Address } from "../net/address.js";
import type { Match, MatchHandlers, Transport } from "../ir/match.js";
import type { Hook } from "../ir/ruleset.js";
import type { CompiledRuleset, SimChain, SimRule } from "../sim/compiled.js";
import type { SimProtocol } from "../sim/packet.js";

export interface Cuts {
  saddr: Prefix[];
  daddr: Prefix[];
  sport: PortRange[];
  /** Identity of the candidate lists: cells with the same key are judged alike (see `relevantCuts`). */
  key: string;
}

type Acc = { saddr: Prefix[]; daddr: Prefix[]; sport: PortRange[] };
type Cutter = (acc: Acc, family: Family, protocol: Transport | undefined) => void;

/**
 * How each match kind cuts the space a cell is judged over. Keyed by kind, so
 * a new kind is a compile error until it says what it cuts: a kind that cut
 * nothing while the verdict depended on it would make one cell's packets
 * differ, and the exposure would be wrong.
 */
const none: Cutter = () => {};
const cutters: MatchHandlers<Cutter> = {
  saddr: (m) => (acc, f) => { if (m.family === f) acc.saddr.push(...m.prefixes); },
  daddr: (m) => (acc, f) => { if (m.family === f) acc.daddr.push(...m.prefixes); },
  sport: (m) => (acc, _f, p) => { if (m.protocol === p) acc.sport.push(...m.ranges); },
  // Destination ports are cut globally (exposure.ts); interfaces are enumerated (space.interfaces plus "(other)").
  dport: () => none,
  iifname: () => none,
  oifname: () => none,
  // Own addresses are cut wherever an address is judged (exposure.ts), for fib … type local.
  localaddr: () => none,
  // Constant over the space the exposure reports: new connections (a first SYN, echo requests), rate limits not exceeded.
  family: () => none,
  protocol: () => none,
  ctstate: () => none,
  ctdnat: () => none,
  tcpflags: () => none,
  icmptype: () => none,
  limit: () => none,
};

const ids = new WeakMap<object, number>();
let lastId = 0;
const idOf = (o: object): number => {
  let id = ids.get(o);
  if (id === undefined) { id = ++lastId; ids.set(o, id); }
  return id;
};

/** The hooks a direction's packets pass (a DNAT can turn an arriving packet into a forwarded one, or the reverse). */
export const ARRIVING: readonly Hook[] = ["prerouting", "input", "forward", "postrouting"];
export const LEAVING: readonly Hook[] = ["output", "postrouting"];

/** The base chains on the hooks and every chain they jump to: the only chains that can judge those packets. */
export function chainsOn(sim: CompiledRuleset, hooks: readonly Hook[]): SimChain[] {
  const seen = new Set<SimChain>();
  const visit = (chain: SimChain) => {
    if (seen.has(chain)) return;
    seen.add(chain);
    for (const r of chain.rules) {
      const target = r.verdict.kind === "jump" ? sim.chains.get(`${chain.table}/${r.verdict.chain}`) : undefined;
      if (target) visit(target);
    }
  };
  for (const hook of hooks) for (const chain of sim.hooks[hook]) visit(chain);
  return [...seen];
}

/**
 * The cuts for packets of one protocol and destination port. Two port cells
 * whose every chain returns the same candidate list get the same key: each
 * listed rule's port test holds all over its part of the chain's index, so
 * such cells are judged alike and their verdicts can be reused. With
 * `chains`, only those chains count (the ones a direction's packets pass), so
 * outbound cells are not told apart by inbound rules.
 */
export function relevantCuts(sim: CompiledRuleset, family: Family, protocol: SimProtocol, dport: number, own: readonly Address[], chains: Iterable<SimChain> = sim.chains.values()): Cuts {
  const acc: Acc = { saddr: [], daddr: [], sport: [] };
  const transport = protocol === "tcp" || protocol === "udp" ? protocol : undefined;
  const lists: (readonly SimRule[])[] = [];
  for (const chain of chains) lists.push(chain.rulesFor(protocol, dport));
  for (const list of lists) for (const r of list) for (const m of r.rule.matches) (cutters[m.kind] as (x: Match) => Cutter)(m)(acc, family, transport);
  for (const a of own) if (a.family === family) { const p = hostPrefix(a); acc.saddr.push(p); acc.daddr.push(p); }
  return { ...acc, key: lists.map(idOf).join(",") };
}
