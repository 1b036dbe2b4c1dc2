// Walks the YAML syntax tree with typed accessors. Every accessor records the
// node's position under its policy path and reports problems as diagnostics
// (collected, never thrown), so one run shows the user every mistake.
import type { AutoPortResolver } from "./auto-ports.js";
import { isAlias, isMap, isScalar, isSeq, type Alias, type LineCounter, type Node, type Pair } from "yaml";
import { displayValue, type Diagnostic, type ErrorCode } from "../errors.js";
import { closest } from "./suggest.js";
import type { Position } from "./types.js";

export type YamlNode = Node | null;

export interface Entry {
  key: string;
  node: YamlNode;
  /** Where to point when the value is missing: the key itself. */
  keyNode: Node;
}

export class Reader {
  readonly diagnostics: Diagnostic[] = [];
  readonly positions = new Map<string, Position>();
  /** How `ports: auto` finds a client's port; without one, `auto` is an error. */
  autoPorts?: AutoPortResolver;
  private readonly lines: string[];

  constructor(
    readonly file: string,
    text: string,
    private readonly lineCounter: LineCounter,
    /** Every alias's target, resolved once by aliases.ts. */
    private readonly aliasTargets: ReadonlyMap<Alias, Node>,
  ) {
    this.lines = text.split(/\r?\n/);
  }

  positionOf(offset: number): Position {
    const { line, col } = this.lineCounter.linePos(offset);
    return { line, column: col };
  }

  at(node: YamlNode | undefined): Position {
    return this.positionOf(node?.range?.[0] ?? 0);
  }

  error(code: ErrorCode, message: string, where: YamlNode | undefined | Position): void {
    const pos = where !== null && where !== undefined && "line" in where ? where : this.at(where as YamlNode);
    this.diagnostics.push({
      code, message, file: this.file, line: pos.line, column: pos.column,
      sourceLine: this.lines[pos.line - 1],
    });
  }

  record(path: string, node: YamlNode): void {
    if (node) this.positions.set(path, this.at(node));
  }

  private deref(node: YamlNode): YamlNode {
    return isAlias(node) ? (this.aliasTargets.get(node) ?? null) : node;
  }

  /** A mapping with only known keys; reports unknown and missing ones. */
  map(raw: YamlNode, path: string, keys: readonly string[], required: readonly string[] = [], where?: Node): Map<string, Entry> | undefined {
    const node = this.deref(raw);
    this.record(path, node);
    if (!isMap(node)) {
      this.error("POLICY_TYPE", `${label(path)} must be a mapping of keys (${keys.join(", ")}), not ${describe(node)}`, node ?? where);
      return undefined;
    }
    const out = new Map<string, Entry>();
    for (const pair of node.items as Pair<YamlNode, YamlNode>[]) {
      const keyNode = this.deref(pair.key) as Node;
      const key = isScalar(keyNode) ? String(keyNode.value) : "";
      const childPath = path === "" ? key : `${path}.${key}`;
      if (!keys.includes(key)) {
        const hint = closest(key, keys);
        const suffix = hint ? ` (did you mean "${hint}"?)` : ` (known keys: ${keys.join(", ")})`;
        this.error("POLICY_UNKNOWN_KEY", `unknown key "${displayValue(key, 40)}" in ${path === "" ? "the policy" : label(path)}${suffix}`, keyNode);
        continue;
      }
      const value = this.deref(pair.value);
      out.set(key, { key, node: value, keyNode });
      this.record(childPath, value ?? keyNode);
    }
    for (const key of required) {
      if (!out.has(key)) this.error("POLICY_MISSING_KEY", `${path === "" ? "the policy" : label(path)} needs the key "${key}"`, node);
    }
    return out;
  }

  /** A sequence; a single value stands for a one-element list. */
  list(raw: YamlNode, path: string, where?: Node): YamlNode[] {
    const node = this.deref(raw);
    this.record(path, node);
    if (isSeq(node)) {
      return node.items.map((item, i) => {
        const child = this.deref(item as YamlNode);
        this.record(`${path}[${i}]`, child);
        return child;
      });
    }
    if (node === null || isMap(node)) {
      this.error("POLICY_TYPE", `${label(path)} must be a list, not ${describe(node)}`, node ?? where);
      return [];
    }
    this.record(`${path}[0]`, node);
    return [node];
  }

  /** A scalar's value (string, number or boolean), or undefined after reporting. */
  scalar(raw: YamlNode, path: string, expected: string, where?: Node): string | number | boolean | undefined {
    const node = this.deref(raw);
    if (isScalar(node) && node.value !== null && ["string", "number", "boolean"].includes(typeof node.value)) {
      return node.value as string | number | boolean;
    }
    this.error("POLICY_TYPE", `${label(path)} must be ${expected}, not ${describe(node)}`, node ?? where);
    return undefined;
  }

  /**
   * A scalar as written (see written()): a string's text, or the spelling of a
   * number or boolean, for values that are text even when YAML reads a number.
   */
  text(raw: YamlNode, path: string, expected: string, where?: Node): string | undefined {
    const v = this.scalar(raw, path, expected, where);
    if (v === undefined) return undefined;
    return typeof v === "string" ? v : written(this.deref(raw) as Node);
  }

  string(raw: YamlNode, path: string, expected = "a string", where?: Node): string | undefined {
    const v = this.scalar(raw, path, expected, where);
    if (v === undefined) return undefined;
    if (typeof v !== "string") {
      this.error("POLICY_TYPE", `${label(path)} must be ${expected}, not ${describe(this.deref(raw))}`, raw ?? where);
      return undefined;
    }
    return v;
  }

  boolean(raw: YamlNode, path: string, where?: Node): boolean | undefined {
    const v = this.scalar(raw, path, "true or false", where);
    if (v === undefined) return undefined;
    if (typeof v !== "boolean") {
      this.error("POLICY_TYPE", `${label(path)} must be true or false, not ${describe(this.deref(raw))}`, raw ?? where);
      return undefined;
    }
    return v;
  }
}

export function label(path: string): string {
  return `"${path}"`;
}

export function describe(node: YamlNode): string {
  if (node === null) return "nothing";
  if (isMap(node)) return "a mapping";
  if (isSeq(node)) return "a list";
  if (isScalar(node)) {
    const v = node.value;
    if (v === null) return "nothing";
    if (typeof v === "string") return `the text "${displayValue(v, 40)}"`;
    if (typeof v === "number") return `the number ${displayValue(written(node), 40)}`;
    if (typeof v === "boolean") return `${v}`;
  }
  return "an unsupported value";
}

/**
 * A scalar as the user wrote it: "0x1A" rather than 26, "6881.0" rather than
 * 6881. YAML turns many spellings into the same number; values whose spelling
 * matters (ports, names, the version) are judged on the text.
 */
export function written(node: Node): string {
  if (!isScalar(node)) return "";
  return typeof node.source === "string" ? node.source : String(node.value);
}
