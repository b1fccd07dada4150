/**
 * What the packed programs share (see packed-matmul.ts for the layout and the tiling), and the gather. Each
 * program reads one part of a packed matrix through two format-specific functions:
 *   unitValues(r, u): the values of unit u of the part's row r (a unit is one packed word for q8_0 (4
 *                     values) and nf4 (8); 4 values for bf16/f16) as vec4s, unscaled (q8_0: the int8s;
 *                     nf4: the levels);
 *   unitScale(r, u):  what they are multiplied by (q8_0: the block's f16 d; nf4: its absmax; halves: 1),
 * so that a sum over a unit's values can be scaled once, not value by value.
 */
import { NF4_LEVELS } from '../quant';
import type { PackedFormat } from './packed-gpu';
import type { WebGPUProgram } from './program';

/** The uniforms every packed program declares, in this order, all i32. */
export const PACKED_UNIFORMS = [
  'n', // rows of x, dy or ids
  'wRows', // rows in this part
  'wCols',
  'unitsPerRow',
  'blocksPerRow',
  'wordCount', // words in this part's `w`
  'rowStart', // the part's first row in the whole matrix
  'totalRows',
  'tiles', // workgroups with work (the dispatch may hold a few more)
  'tilesAcross', // tiles along rows (product) or units (input gradient) per tile of x's rows
  'first', // 1 for the first part: it writes (gradient) or zero-fills unknown ids (gather)
] as const;
export type PackedUniforms = Record<(typeof PACKED_UNIFORMS)[number], number>;

const halfDecoders = {
  bf16: `
    fn halfLow(a : u32) -> f32 { return bitcast<f32>(a << 16u); }
    fn halfHigh(a : u32) -> f32 { return bitcast<f32>(a & 0xffff0000u); }`,
  f16: `
    fn halfLow(a : u32) -> f32 { return unpack2x16float(a).x; }
    fn halfHigh(a : u32) -> f32 { return unpack2x16float(a).y; }`,
};

/** unitValues and unitScale for a format. */
function formatCode(format: PackedFormat): string {
  if (format === 'q8_0')
    return `
      fn unitValues(r : i32, u : i32) -> array<vec4<f32>, 1> {
        let q = w[r * uniforms.unitsPerRow + u];
        let bytes = vec4<i32>(q << 24u, q << 16u, q << 8u, q) >> vec4<u32>(24u);
        return array<vec4<f32>, 1>(vec4<f32>(bytes));
      }
      fn unitScale(r : i32, u : i32) -> f32 {
        let i = r * uniforms.blocksPerRow + (u >> 3u);
        let pair = unpack2x16float(bitcast<u32>(s[i >> 1u]));
        return select(pair.x, pair.y, (i & 1) == 1);
      }`;
  if (format === 'nf4') {
    // The level of each code by a tree of selects on its bits, 4 codes at a time: a table indexed per
    // thread can land in per-thread scratch memory (and is a gather on SwiftShader).
    const level = (i: number) => `vec4<f32>(${NF4_LEVELS[i]})`;
    const pairs = Array.from({ length: 8 }, (_, i) => `select(${level(2 * i)}, ${level(2 * i + 1)}, b0)`);
    return `
      fn nf4Levels(codes : vec4<u32>) -> vec4<f32> {
        let b0 = (codes & vec4<u32>(1u)) != vec4<u32>(0u);
        let b1 = (codes & vec4<u32>(2u)) != vec4<u32>(0u);
        let b2 = (codes & vec4<u32>(4u)) != vec4<u32>(0u);
        let b3 = (codes & vec4<u32>(8u)) != vec4<u32>(0u);
        ${pairs.map((pair, i) => `let p${i} = ${pair};`).join('\n')}
        let q0 = select(p0, p1, b1);
        let q1 = select(p2, p3, b1);
        let q2 = select(p4, p5, b1);
        let q3 = select(p6, p7, b1);
        return select(select(q0, q1, b2), select(q2, q3, b2), b3);
      }
      fn unitValues(r : i32, u : i32) -> array<vec4<f32>, 2> {
        let c = bitcast<u32>(w[r * uniforms.unitsPerRow + u]);
        return array<vec4<f32>, 2>(
          nf4Levels((vec4<u32>(c) >> vec4<u32>(4u, 0u, 12u, 8u)) & vec4<u32>(15u)),
          nf4Levels((vec4<u32>(c) >> vec4<u32>(20u, 16u, 28u, 24u)) & vec4<u32>(15u)),
        );
      }
      fn unitScale(r : i32, u : i32) -> f32 { return s[r * uniforms.blocksPerRow + (u >> 3u)]; }`;
  }
  // Halves run on across rows: a unit starts mid-word when the row does (odd cols), and its values past
  // the row's end belong to the next row (or past the array: the index is clamped) and are masked.
  return `
    ${halfDecoders[format]}
    fn packedWord(i : i32) -> u32 { return bitcast<u32>(w[min(i, uniforms.wordCount - 1)]); }
    fn unitValues(r : i32, u : i32) -> array<vec4<f32>, 1> {
      let k = u * 4;
      let f = r * uniforms.wCols + k;
      let i = f >> 1u;
      let a = packedWord(i);
      let b = packedWord(i + 1);
      var v : vec4<f32>;
      if ((f & 1) == 0) {
        v = vec4<f32>(halfLow(a), halfHigh(a), halfLow(b), halfHigh(b));
      } else {
        v = vec4<f32>(halfHigh(a), halfLow(b), halfHigh(b), halfLow(packedWord(i + 2)));
      }
      let inRow = vec4<i32>(k) + vec4<i32>(0, 1, 2, 3) < vec4<i32>(uniforms.wCols);
      return array<vec4<f32>, 1>(select(vec4<f32>(0.0), v, inRow));
    }
    fn unitScale(r : i32, u : i32) -> f32 { return 1.0; }`;
}

export const nextPowerOfTwo = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(n, 1)));

export abstract class PackedProgram implements WebGPUProgram {
  readonly outputShape: number[];
  readonly shaderKey: string;
  readonly dispatchLayout = { x: [0, 1] };
  readonly dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number];
  readonly variableNames: string[];
  readonly uniforms = PACKED_UNIFORMS.map((name) => `${name} : i32,`).join(' ');
  /** vec4s per unit. */
  protected readonly vec: number;
  protected readonly scaled: boolean;

  constructor(
    protected readonly format: PackedFormat,
    input: string,
    outputShape: number[],
    dispatch: [number, number, number],
    threads: number,
    key: string,
  ) {
    this.variableNames = format === 'q8_0' || format === 'nf4' ? [input, 'w', 's'] : [input, 'w'];
    this.outputShape = outputShape;
    this.dispatch = dispatch;
    this.workgroupSize = [threads, 1, 1];
    this.shaderKey = `webtunePacked${key}_${format}`;
    this.vec = format === 'nf4' ? 2 : 1;
    this.scaled = format === 'q8_0' || format === 'nf4';
  }

  protected abstract body(): string;

  getUserCode(): string {
    return `
      ${formatCode(this.format)}
      fn tileIndex() -> i32 {
        return i32(workgroupId.x + numWorkgroups.x * (workgroupId.y + numWorkgroups.y * workgroupId.z));
      }
      ${this.body()}`;
  }

  /** `expression` times the unit's scale, for the formats that have one. */
  protected times(expression: string, scale: string): string {
    return this.scaled ? `(${expression}) * ${scale}` : expression;
  }
}

/** Threads per workgroup of the gather, one per unit of an output row. */
export const GATHER_WORKGROUP = 64;

/** Rows ids [N] of W → [N, cols]: one thread per unit. Ids outside the matrix give zeros. */
export class PackedGatherProgram extends PackedProgram {
  constructor(format: PackedFormat, n: number, cols: number, dispatch: [number, number, number]) {
    super(format, 'ids', [n, cols], dispatch, GATHER_WORKGROUP, 'Gather');
  }

  protected body(): string {
    const writes = Array.from(
      { length: this.vec },
      (_, g) => `
            for (var j = 0; j < 4; j = j + 1) {
              if (k + ${g * 4} + j < uniforms.wCols) {
                result[n * uniforms.wCols + k + ${g * 4} + j] = ${this.times(`wv[${g}][j]`, 'scale')};
              }
            }`,
    ).join('');
    return `
      fn main(index : i32) {
        let n = index / uniforms.unitsPerRow;
        let u = index % uniforms.unitsPerRow;
        if (n < uniforms.n) {
          let id = ids[n];
          let r = id - uniforms.rowStart;
          let mine = r >= 0 && r < uniforms.wRows;
          let unknown = uniforms.first == 1 && (id < 0 || id >= uniforms.totalRows);
          if (mine || unknown) {
            var wv = array<vec4<f32>, ${this.vec}>();
            var scale = 0.0;
            if (mine) {
              wv = unitValues(r, u);
              scale = unitScale(r, u);
            }
            let k = u * ${4 * this.vec};
            ${writes}
          }
        }
      }`;
  }
}
