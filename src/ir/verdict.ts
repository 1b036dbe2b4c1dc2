// What a rule does when all its matches hold.
import type { Address } from "../net/address.js";

export type Verdict =
  | { kind: "accept" }
  | { kind: "drop" }
  | { kind: "jump"; chain: string }
  | { kind: "return" }
  /** Logs and goes on with the next rule. */
  | { kind: "log"; prefix: string }
  /** With a port, the destination port is rewritten too (iptables' `--to-destination A:P`). */
  | { kind: "dnat"; to: Address; port?: number }
  | { kind: "masquerade" }
  // Only in rulesets read from other tools:
  /** Dropped with an answer; `with` as the tool wrote it (icmp-port-unreachable, tcp-reset, …). */
  | { kind: "reject"; with?: string }
  /** Like a jump, except that the end of `chain` returns to the chain that called this one. */
  | { kind: "goto"; chain: string }
  | { kind: "snat"; to: Address }
  /** The connection is not tracked (raw table: NOTRACK, CT --notrack): its state is "untracked"; the next rule goes on. */
  | { kind: "notrack" }
  /** DNAT to this machine's own address on the arriving interface, optionally to another port. */
  | { kind: "redirect"; port?: number }
  /**
   * A target the simulator does not model. A `terminal` one ends the packet's
   * way in an unknown manner (NFQUEUE: a program decides); the others go on
   * with the next rule (MARK, CONNMARK, CT, TCPMSS, NFLOG …).
   */
  | { kind: "other"; text: string; terminal: boolean };

export type VerdictKind = Verdict["kind"];
export type VerdictHandlers<R> = { [K in VerdictKind]: (v: Extract<Verdict, { kind: K }>) => R };

/** Verdicts after which no later rule of the chain sees the packet. */
export function isTerminal(v: Verdict): boolean {
  return v.kind !== "log" && v.kind !== "jump" && v.kind !== "notrack" && !(v.kind === "other" && !v.terminal);
}
