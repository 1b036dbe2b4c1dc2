// What a rule does when all its matches hold.
import type { Address } from "../net/address.js";

export type Verdict =
  | { kind: "accept" }
  | { kind: "drop" }
  | { kind: "jump"; chain: string }
  | { kind: "return" }
  /** Logs and goes on with the next rule. */
  | { kind: "log"; prefix: string }
  | { kind: "dnat"; to: Address }
  | { kind: "masquerade" };

export type VerdictKind = Verdict["kind"];
export type VerdictHandlers<R> = { [K in VerdictKind]: (v: Extract<Verdict, { kind: K }>) => R };

/** Verdicts after which no later rule of the chain sees the packet. */
export function isTerminal(v: Verdict): boolean {
  return v.kind !== "log" && v.kind !== "jump";
}
