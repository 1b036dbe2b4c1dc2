// A shortest line diff in linear memory: Myers' O(ND) algorithm with the
// middle-snake split ("An O(ND) Difference Algorithm and Its Variations",
// E. Myers, 1986, section 4b). `status` and `diff` compare a loaded ruleset
// with the expected one: usually equal or nearly so (D small), while a table
// of every pair of lines (the LCS table it replaces) took 3.4 GB for 10,000
// rules.

export type DiffOp = "+" | "-" | " ";
export interface LineDiff { added: string[]; removed: string[]; script: { op: DiffOp; line: string }[] }

/** The edit script from `from` to `to`: " " kept, "-" only in `from`, "+" only in `to`; as few changes as possible. */
export function diffLines(to: readonly string[], from: readonly string[]): LineDiff {
  // Lines as small integers: one comparison per step instead of a string compare.
  const ids = new Map<string, number>();
  const idOf = (s: string): number => {
    let id = ids.get(s);
    if (id === undefined) { id = ids.size; ids.set(s, id); }
    return id;
  };
  const d = new Differ(Int32Array.from(from, idOf), Int32Array.from(to, idOf), from, to);
  d.diff(0, from.length, 0, to.length);
  const script = d.script;
  return { added: script.filter((s) => s.op === "+").map((s) => s.line), removed: script.filter((s) => s.op === "-").map((s) => s.line), script };
}

class Differ {
  readonly script: { op: DiffOp; line: string }[] = [];
  constructor(readonly a: Int32Array, readonly b: Int32Array, readonly aLines: readonly string[], readonly bLines: readonly string[]) {}

  /** Appends the script for a[aLo, aHi) → b[bLo, bHi). */
  diff(aLo: number, aHi: number, bLo: number, bHi: number): void {
    let head = 0;
    while (aLo + head < aHi && bLo + head < bHi && this.a[aLo + head] === this.b[bLo + head]) head++;
    let tail = 0;
    while (aHi - tail > aLo + head && bHi - tail > bLo + head && this.a[aHi - tail - 1] === this.b[bHi - tail - 1]) tail++;
    for (let i = 0; i < head; i++) this.keep(aLo + i);
    this.middle(aLo + head, aHi - tail, bLo + head, bHi - tail);
    for (let i = tail; i > 0; i--) this.keep(aHi - i);
  }

  private keep(i: number): void { this.script.push({ op: " ", line: this.aLines[i]! }); }

  /** Additions before removals where a block is replaced, as the table-based diff printed them. */
  private replace(aLo: number, aHi: number, bLo: number, bHi: number): void {
    for (let j = bLo; j < bHi; j++) this.script.push({ op: "+", line: this.bLines[j]! });
    for (let i = aLo; i < aHi; i++) this.script.push({ op: "-", line: this.aLines[i]! });
  }

  private middle(aLo: number, aHi: number, bLo: number, bHi: number): void {
    if (aLo === aHi || bLo === bHi) { this.replace(aLo, aHi, bLo, bHi); return; }
    const split = this.snake(aLo, aHi, bLo, bHi);
    if (!split) { this.replace(aLo, aHi, bLo, bHi); return; }
    this.diff(aLo, aLo + split[0], bLo, bLo + split[1]);
    this.diff(aLo + split[0], aHi, bLo + split[1], bHi);
  }

  /**
   * Where a shortest edit path crosses the middle: searches from both ends at
   * once, D steps each, until the paths overlap; O(N + M) memory.
   */
  private snake(aLo: number, aHi: number, bLo: number, bHi: number): [number, number] | undefined {
    const n = aHi - aLo;
    const m = bHi - bLo;
    const maxD = Math.ceil((n + m) / 2);
    const off = maxD;
    const len = 2 * maxD + 2;
    const vf = new Int32Array(len).fill(-1);
    const vb = new Int32Array(len).fill(-1);
    vf[off + 1] = 0;
    vb[off + 1] = 0;
    const delta = n - m;
    const front = (delta & 1) !== 0;
    const { a, b } = this;
    let k1start = 0, k1end = 0, k2start = 0, k2end = 0;
    for (let d = 0; d < maxD; d++) {
      for (let k1 = -d + k1start; k1 <= d - k1end; k1 += 2) {
        const i1 = off + k1;
        let x1 = k1 === -d || (k1 !== d && vf[i1 - 1]! < vf[i1 + 1]!) ? vf[i1 + 1]! : vf[i1 - 1]! + 1;
        let y1 = x1 - k1;
        while (x1 < n && y1 < m && a[aLo + x1] === b[bLo + y1]) { x1++; y1++; }
        vf[i1] = x1;
        if (x1 > n) k1end += 2;
        else if (y1 > m) k1start += 2;
        else if (front) {
          const i2 = off + delta - k1;
          if (i2 >= 0 && i2 < len && vb[i2] !== -1 && x1 >= n - vb[i2]!) return [x1, y1];
        }
      }
      for (let k2 = -d + k2start; k2 <= d - k2end; k2 += 2) {
        const i2 = off + k2;
        let x2 = k2 === -d || (k2 !== d && vb[i2 - 1]! < vb[i2 + 1]!) ? vb[i2 + 1]! : vb[i2 - 1]! + 1;
        let y2 = x2 - k2;
        while (x2 < n && y2 < m && a[aHi - x2 - 1] === b[bHi - y2 - 1]) { x2++; y2++; }
        vb[i2] = x2;
        if (x2 > n) k2end += 2;
        else if (y2 > m) k2start += 2;
        else if (!front) {
          const i1 = off + delta - k2;
          if (i1 >= 0 && i1 < len && vf[i1] !== -1) {
            const x1 = vf[i1]!;
            if (x1 >= n - x2) return [x1, x1 - (i1 - off)];
          }
        }
      }
    }
    return undefined;
  }
}
