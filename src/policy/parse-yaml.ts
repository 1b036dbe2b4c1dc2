// YAML (and JSON, a subset of it) to a document with positions, with a bound
// on nesting. The yaml package composes nodes recursively, so deep nesting
// overflows the call stack at a depth that depends on the machine (it then
// reports "Maximum call stack size exceeded" somewhere in the file). We feed the
// composer from our own lexer-and-parser loop instead, whose stack we can watch,
// and stop at the first token that goes deeper than any policy can need.
// https://eemeli.org/yaml/#parsing-yaml (Lexer, Parser, Composer)
import { Composer, Lexer, LineCounter, Parser, type CST, type Document } from "yaml";

/**
 * Parser stack entries: the document, each open collection and the scalar being
 * read. The deepest real policy (outbound.trackers[].to[]) needs 7.
 */
export const MAX_YAML_DEPTH = 32;

export interface ParsedYaml {
  lineCounter: LineCounter;
  /** Undefined when the nesting limit was hit (then tooDeepAt is set). */
  doc?: Document.Parsed;
  /** Offset of the first token nested deeper than MAX_YAML_DEPTH. */
  tooDeepAt?: number;
  /** Offset where a second document starts: a policy is one document. */
  secondDocAt?: number;
}

export function parseYaml(text: string): ParsedYaml {
  const lineCounter = new LineCounter();
  const parser = new Parser(lineCounter.addNewLine);
  const out: ParsedYaml = { lineCounter };
  if (text.length > 0) lineCounter.addNewLine(0); // what Parser.parse() does for the first line
  const tokens = bounded(text, parser, (offset) => { out.tooDeepAt = offset; });
  const composer = new Composer({ prettyErrors: false, uniqueKeys: true, strict: true });
  for (const doc of composer.compose(tokens, true, text.length)) {
    if (out.doc === undefined) out.doc = doc;
    else if (out.secondDocAt === undefined) out.secondDocAt = doc.range[0];
  }
  if (out.tooDeepAt !== undefined) delete out.doc;
  return out;
}

function* bounded(text: string, parser: Parser, tooDeep: (offset: number) => void): Generator<CST.Token> {
  for (const lexeme of new Lexer().lex(text)) {
    yield* parser.next(lexeme);
    if (parser.stack.length > MAX_YAML_DEPTH) {
      tooDeep(parser.stack[parser.stack.length - 1]!.offset);
      return;
    }
  }
  yield* parser.end();
}
