// YAML anchors and aliases, resolved once and bounded. An alias is a cheap
// reference in the file but a full copy for every reader of the policy: one
// 5,000-address list behind 2,000 aliases is 10 million values to validate and
// compile. So the values that aliases add up to are counted, and a document
// past the bound is refused before it is read. Resolving every alias here,
// once, also replaces the yaml package's Alias.resolve, which walks the whole
// document on each call.
import { isAlias, isMap, isSeq, type Alias, type Document, type Node } from "yaml";
import { displayValue, type ErrorCode } from "../errors.js";

/** Values (scalars and collections) that aliases may add to a policy, all aliases together. */
export const MAX_ALIAS_EXPANSION = 100_000;

export interface AliasProblem {
  code: ErrorCode;
  message: string;
  node: Node;
}

export interface ResolvedAliases {
  targets: ReadonlyMap<Alias, Node>;
  problems: AliasProblem[];
}

interface Walk {
  anchors: Map<string, Node>;
  targets: Map<Alias, Node>;
  /** Size of every finished node, counting what its aliases stand for. */
  sizes: Map<Node, number>;
  /** Nodes being walked: an alias to one of them would contain itself. */
  open: Set<Node>;
  expanded: number;
  problems: AliasProblem[];
}

export function resolveAliases(doc: Document.Parsed): ResolvedAliases {
  const walk: Walk = { anchors: new Map(), targets: new Map(), sizes: new Map(), open: new Set(), expanded: 0, problems: [] };
  if (doc.contents) sizeOf(doc.contents as Node, walk);
  return { targets: walk.targets, problems: walk.problems };
}

// Recursion is safe here: parse-yaml.ts has already bounded the nesting depth.
function sizeOf(node: Node | null, w: Walk): number {
  if (node === null) return 0;
  if (isAlias(node)) return aliasSize(node, w);
  // An alias means the last anchor of that name before it (YAML 1.2, 7.1), so
  // anchors are recorded in document order, before the node's children.
  if (node.anchor) w.anchors.set(node.anchor, node);
  w.open.add(node);
  let size = 1;
  if (isMap(node)) {
    for (const pair of node.items) size += sizeOf(pair.key as Node | null, w) + sizeOf(pair.value as Node | null, w);
  } else if (isSeq(node)) {
    for (const item of node.items) size += sizeOf(item as Node | null, w);
  }
  w.open.delete(node);
  size = Math.min(size, MAX_ALIAS_EXPANSION + 1); // a billion laughs stays a small number
  w.sizes.set(node, size);
  return size;
}

function aliasSize(alias: Alias, w: Walk): number {
  const name = `*${displayValue(alias.source, 40)}`;
  const target = w.anchors.get(alias.source);
  if (target === undefined) {
    w.problems.push({ code: "POLICY_SYNTAX", message: `undefined alias ${name}: no anchor &${displayValue(alias.source, 40)} comes before it`, node: alias });
    return 1;
  }
  if (w.open.has(target)) {
    w.problems.push({ code: "POLICY_TOO_COMPLEX", message: `alias ${name} refers to a value that contains the alias itself`, node: alias });
    return 1;
  }
  w.targets.set(alias, target);
  const size = w.sizes.get(target) ?? 1;
  const before = w.expanded;
  w.expanded = Math.min(w.expanded + size, MAX_ALIAS_EXPANSION + 1);
  if (before <= MAX_ALIAS_EXPANSION && w.expanded > MAX_ALIAS_EXPANSION) {
    w.problems.push({
      code: "POLICY_TOO_COMPLEX",
      message: `aliases expand the policy by more than ${MAX_ALIAS_EXPANSION} values here (alias ${name}); write the values out or use fewer aliases`,
      node: alias,
    });
  }
  return size;
}
