// The kernel side of a backend: how swarmgate's own objects are read from the
// kernel, what they are for a compiled ruleset, and the transactions that turn
// what the kernel holds now into what they should be. Pure planning: system/
// runs the steps and never asks which backend it is talking to.
import type { Ruleset } from "../ir/ruleset.js";

/** One tool run: an argument array and the ruleset on stdin, never a shell line. */
export interface Step {
  command: string;
  args: readonly string[];
  input?: string;
}

/** What a step printed, for the parsers below. */
export interface StepOutput {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * swarmgate's own objects, in the backend's own save syntax, one text per unit
 * of transaction ("nft": the table; "v4" and "v6": the iptables chains of each
 * family). "" means swarmgate has nothing there. Only these are ever saved or
 * restored: another tool's table or chain is never part of it.
 */
export type Owned = Readonly<Record<string, string>>;

export interface KernelBackend {
  readonly name: "nft" | "iptables";
  /** The programs it runs; a backend whose programs are missing is not in use. */
  readonly tools: readonly string[];
  /** What to run to read swarmgate's objects (with counters). */
  readonly readSteps: readonly Step[];
  /** swarmgate's objects from the outputs of readSteps; throws TOOL_FAILED when a tool failed. */
  parseOwned(outputs: readonly StepOutput[]): Owned;
  /** swarmgate's objects as a compiled ruleset makes them. */
  ownedOf(ruleset: Ruleset): Owned;
  /** The objects of nothing loaded. */
  empty(): Owned;
  /**
   * One transaction per unit that turns `current` into `target`, touching
   * nothing but swarmgate's objects; units already equal get no step.
   * `written`, when the caller knows it: the text swarmgate wrote for what
   * `current` holds (checked against the kernel's listing by the caller). A
   * target that differs from it only in what can change in place (a named
   * set's elements, a rule's ports) is then reached without a reload: the
   * other rules, their counters and the connections they let in stay as
   * they are.
   */
  plan(target: Owned, current: Owned, written?: Owned): { unit: string; step: Step }[];
  /**
   * Whether `target` differs from `written` (both as swarmgate writes them)
   * at most in what the named port sets hold: the only change `swarmgate
   * follow` makes on its own.
   */
  onlyPortSetsDiffer(target: Owned, written: Owned): boolean;
  /**
   * Present when a port move can be made without reading the kernel first
   * (see PortMover); follow then checks the kernel after the move instead.
   */
  readonly portMover?: PortMover;
  /**
   * What must agree between what was asked for and what the kernel reads back:
   * chains, their policies and each rule's intent, in order, per unit. The
   * kernel rewrites spelling as it lists (priorities, quoting), so texts are
   * compared through this, never byte for byte.
   */
  signature(owned: Owned): Record<string, string[]>;
  /** Per rule: chain, rule text without counters, packets and bytes (for status). */
  counters(owned: Owned): { chain: string; rule: string; comment: string; packets: number; bytes: number }[];
}

/**
 * A port move guarded by the old ports themselves: nft deletes a set element
 * by its value, and a transaction that deletes an element that is not there
 * fails whole, changing nothing. (iptables has no such guard for a rule's
 * place: a rule deleted by its text may have stood anywhere, so an undo could
 * not put it back where it was; it reads the kernel before a move.)
 */
export interface PortMover {
  /** For a target that differs from `written` only in port sets: the transactions there and back, one per unit. */
  steps(target: Owned, written: Owned): { forward: Step[]; back: Step[] };
  /** The objects with the followed ports and counters taken out: what a move must leave exactly as it was. */
  withoutPorts(owned: Owned): string;
  /** The followed ports alone, canonical, to compare a listing with what was asked for. */
  ports(owned: Owned): string;
}
