// One packet through the netfilter hooks in the kernel's order: prerouting
// (NAT for a connection's first packet), the routing decision (this machine
// or forward), input or forward, or output for a packet this machine sends,
// then postrouting (masquerade). Every base chain on a hook must accept; a
// drop anywhere is final. The translated packet continues with its new
// addresses.
import type { Address } from "../net/address.js";
import { userError } from "../errors.js";
import type { LimitMatch, UnknownMatch } from "../ir/match.js";
import type { Hook, Rule } from "../ir/ruleset.js";
import { flagBits, type CompiledRuleset, type Ctx, type SimChain } from "./compiled.js";
import type { Environment } from "./environment.js";
import { pathOf, type Packet, type Path } from "./packet.js";

/** "unknown": a target the simulator does not model took the packet (NFQUEUE: a program decides). */
export type SimVerdict = "accept" | "drop" | "reject" | "unknown";

export interface TraceStep {
  hook: Hook;
  table: string;
  chain: string;
  /** "rule": a rule matched; "policy": the chain's end was reached; "route": the routing decision. */
  kind: "rule" | "policy" | "route";
  ruleIndex?: number;
  rule?: Rule;
  action: string;
}

export interface SimResult {
  verdict: SimVerdict;
  /** Where routing sent the packet. */
  path: Path;
  trace: TraceStep[];
  /** The step that decided: the dropping rule or policy, or the accept that let it through its filter chain. */
  deciding?: TraceStep;
  translated?: { daddr?: Address; saddr?: Address; oif?: string; dport?: number };
  /** A notrack rule (raw table, before conntrack) took the packet out of connection tracking: it makes no connection and moves none. */
  untracked?: true;
}

type Outcome = "accept" | Final | undefined;
/** Outcomes after which the packet goes no further. */
type Final = "drop" | "reject" | "unknown";
const final = (o: Outcome): o is Final => o === "drop" || o === "reject" || o === "unknown";

/** A new verdict kind is a compile error here until the simulator handles it. */
function unhandled(v: never): never {
  throw new Error(`unhandled verdict ${(v as { kind: string }).kind}`);
}

const V4 = (a: Address): number => (a.family === 4 ? Number(a.value) : 0);
const LOOPBACK: Record<4 | 6, Address> = { 4: { family: 4, value: 0x7f000001n }, 6: { family: 6, value: 1n } };
// The flags a packet without explicit ones carries: computed once, not per packet (bulk verdicts build millions of contexts).
const SYN = flagBits(["syn"]);
const ACK = flagBits(["ack"]);

function makeCtx(p: Packet, env: Environment): Ctx {
  return {
    family: p.family, iif: p.iif, oif: p.oif, protocol: p.protocol,
    sport: p.sport ?? 0, dport: p.dport ?? 0, flags: p.flags ? flagBits(p.flags) : p.protocol === "tcp" && p.state === "new" ? SYN : ACK,
    icmpType: p.icmpType ?? -1, state: p.state, saddr: p.saddr, daddr: p.daddr, s4: V4(p.saddr), d4: V4(p.daddr), dnat: false, env,
    uid: p.iif === undefined ? p.uid : undefined,
  };
}

class Run {
  deciding: TraceStep | undefined;
  constructor(readonly c: CompiledRuleset, readonly ctx: Ctx, readonly trace: TraceStep[] | undefined) {}

  /** Runs the rules of a chain; undefined means it fell off the end or returned. */
  private rules(chain: SimChain, hook: Hook, depth: number): Outcome {
    // The kernel's own limit for nft (NFT_JUMP_STACK_SIZE); a ruleset read from another tool may go deeper.
    if (depth > 16) throw userError("SIM_UNSUPPORTED", `jumps nested deeper than 16 chains at ${chain.table}/${chain.name}`);
    const ctx = this.ctx;
    const rules = chain.candidates(ctx);
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!;
      if (!r.test(ctx)) continue;
      const v = r.verdict;
      const step = this.trace || v.kind === "accept" || v.kind === "drop" || v.kind === "reject" || v.kind === "other"
        ? { hook, table: chain.table, chain: chain.name, kind: "rule" as const, ruleIndex: r.index, rule: r.rule, action: v.kind }
        : undefined;
      this.trace?.push(step!);
      switch (v.kind) {
        case "log": continue;
        case "accept": if (chain.base?.type !== "nat") this.deciding = step; return "accept";
        case "drop": this.deciding = step; return "drop";
        case "return": return undefined;
        case "jump": {
          const target = this.c.chains.get(`${chain.table}/${v.chain}`);
          if (!target) throw userError("SIM_UNSUPPORTED", `jump to chain ${v.chain}, which ${chain.table} does not have`);
          const out = this.rules(target, hook, depth + 1);
          if (out !== undefined) return out;
          continue;
        }
        case "goto": {
          // The end of the target returns to whoever called this chain: its result is this chain's.
          const target = this.c.chains.get(`${chain.table}/${v.chain}`);
          if (!target) throw userError("SIM_UNSUPPORTED", `goto to chain ${v.chain}, which ${chain.table} does not have`);
          return this.rules(target, hook, depth + 1);
        }
        case "reject": this.deciding = step; return "reject";
        // Later chains see an untracked packet: no state match holds but "untracked", and NAT chains pass it by.
        case "notrack": ctx.state = "untracked"; continue;
        case "dnat":
          ctx.daddr = v.to; ctx.d4 = V4(v.to); ctx.dnat = true;
          if (v.port !== undefined) ctx.dport = v.port;
          return "accept";
        case "redirect": {
          // To this machine's own address on the arriving interface (loopback for a packet it sends itself).
          const to = ctx.iif !== undefined ? ctx.env.addressOf(ctx.iif, ctx.family) : LOOPBACK[ctx.family];
          if (to) { ctx.daddr = to; ctx.d4 = V4(to); }
          ctx.dnat = true;
          if (v.port !== undefined) ctx.dport = v.port;
          return "accept";
        }
        case "masquerade": {
          const a = ctx.oif !== undefined ? ctx.env.addressOf(ctx.oif, ctx.family) : undefined;
          if (a) { ctx.saddr = a; ctx.s4 = V4(a); }
          return "accept";
        }
        case "snat": ctx.saddr = v.to; ctx.s4 = V4(v.to); return "accept";
        case "other":
          if (!v.terminal) continue;
          this.deciding = step;
          return "unknown";
        default: return unhandled(v);
      }
    }
    return undefined;
  }

  /** All base chains on a hook, in priority order; NAT chains see only a connection's first packet. */
  hook(hook: Hook): Outcome {
    for (const chain of this.c.hooks[hook]) {
      if (chain.base!.type === "nat" && this.ctx.state !== "new") continue;
      if (chain.family !== undefined && chain.family !== this.ctx.family) continue;
      let out = this.rules(chain, hook, 0);
      if (out === undefined) {
        out = chain.base!.policy;
        const step = { hook, table: chain.table, chain: chain.name, kind: "policy" as const, action: `policy ${out}` };
        this.trace?.push(step);
        if (chain.base!.type !== "nat" && (out === "drop" || !this.deciding || this.deciding.hook !== hook)) this.deciding = step;
      }
      if (final(out)) return out;
    }
    return "accept";
  }
}

export interface SimulateOptions {
  /** Record every step (explain); off for bulk verdicts. */
  trace?: boolean;
  /** How to take each condition the simulator cannot decide (branches.ts); without it, meeting one is an error. */
  assume?: (m: UnknownMatch) => boolean;
  /** How to take each rate limit; without it a limit is never exceeded. */
  assumeLimit?: (m: LimitMatch) => boolean;
}

/** The trace of a run without one: shared, so bulk verdicts allocate no array each. */
const NO_TRACE: TraceStep[] = Object.freeze([]) as unknown as TraceStep[];

export function simulate(c: CompiledRuleset, packet: Packet, env: Environment, options: SimulateOptions = {}): SimResult {
  const ctx = makeCtx(packet, env);
  if (options.assume) ctx.assume = options.assume;
  if (options.assumeLimit) ctx.assumeLimit = options.assumeLimit;
  const trace: TraceStep[] | undefined = options.trace ? [] : undefined;
  const run = new Run(c, ctx, trace);
  const [verdict, path] = decide(run, packet, env);
  const dport = packet.dport ?? 0;
  const translated = ctx.daddr !== packet.daddr || ctx.saddr !== packet.saddr || ctx.oif !== packet.oif || ctx.dport !== dport
    ? { ...(ctx.daddr !== packet.daddr && { daddr: ctx.daddr }), ...(ctx.saddr !== packet.saddr && { saddr: ctx.saddr }), ...(ctx.oif !== packet.oif && ctx.oif !== undefined && { oif: ctx.oif }), ...(ctx.dport !== dport && { dport: ctx.dport }) }
    : undefined;
  const untracked = ctx.state === "untracked" && packet.state !== "untracked";
  return { verdict, path, trace: trace ?? NO_TRACE, ...(run.deciding && { deciding: run.deciding }), ...(translated && { translated }), ...(untracked && { untracked: true as const }) };
}

/** The hooks in the kernel's order; the verdict and where routing sent the packet. */
function decide(run: Run, packet: Packet, env: Environment): [SimVerdict, Path] {
  const ctx = run.ctx;
  let path = pathOf(packet);
  if (path !== "output") {
    const pre = run.hook("prerouting");
    if (final(pre)) return [pre, path];
    if (ctx.dnat) {
      // Routing decides again on the translated destination.
      const local = env.isLocal(ctx.daddr);
      path = local ? "input" : "forward";
      if (!local) ctx.oif = env.route(ctx.daddr);
      run.trace?.push({ hook: "prerouting", table: "", chain: "", kind: "route", action: local ? "to this machine" : `forward via ${ctx.oif ?? "no route"}` });
      if (!local && ctx.oif === undefined) return ["drop", path];
    }
  }
  const filtered = run.hook(path);
  if (final(filtered)) return [filtered, path];
  const post = path !== "input" ? run.hook("postrouting") : "accept";
  if (final(post)) return [post, path];
  return ["accept", path];
}
