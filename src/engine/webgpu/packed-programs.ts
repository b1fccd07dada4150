/**
 * The WGSL programs behind packed-matmul.ts (see there for the layout and the tiling). Each reads one part
 * of a packed matrix through two format-specific functions:
 *   unitValues(r, u): the values of unit u (one packed word: 4 values, or 8 for nf4) of the part's row r,
 *                     as vec4s, unscaled (q8_0: the int8s; nf4: the levels);
 *   unitScale(r, u):  what they are multiplied by (q8_0: the block's f16 d; nf4: its absmax; halves: 1).
 * so that a sum over a unit's values is scaled once, not value by value.
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
  if (format === 'nf4')
    return `
      const NF4 = array<f32, 16>(${Array.from(NF4_LEVELS, String).join(', ')});
      fn unitValues(r : i32, u : i32) -> array<vec4<f32>, 2> {
        let c = bitcast<u32>(w[r * uniforms.unitsPerRow + u]);
        return array<vec4<f32>, 2>(
          vec4<f32>(NF4[(c >> 4u) & 15u], NF4[c & 15u], NF4[(c >> 12u) & 15u], NF4[(c >> 8u) & 15u]),
          vec4<f32>(NF4[(c >> 20u) & 15u], NF4[(c >> 16u) & 15u], NF4[c >> 28u], NF4[(c >> 24u) & 15u]),
        );
      }
      fn unitScale(r : i32, u : i32) -> f32 { return s[r * uniforms.blocksPerRow + (u >> 3u)]; }`;
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

const nextPowerOfTwo = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(n, 1)));

abstract class PackedProgram implements WebGPUProgram {
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

/** Outputs per tile of the product: rows (16 slots × 2) and x's rows (TM, from N). */
export const PRODUCT_TILE_ROWS = 32;
const productRowsPerX = (n: number) => Math.min(16, nextPowerOfTwo(n));

/**
 * x [N, cols] · Wᵀ → [N, totalRows], this part's columns. 256 threads = 16 lanes along the row × 16 row
 * slots, each slot 2 rows of the tile; a lane reads every 16th unit of its rows, so that neighbouring
 * threads read neighbouring words. x's rows for the tile are staged chunk by chunk in shared memory; each
 * thread sums TM × 2 partial dot products, and the 16 lanes' partials are added through shared memory.
 */
export class PackedProductProgram extends PackedProgram {
  readonly rowsPerX: number;

  constructor(format: PackedFormat, n: number, totalRows: number, dispatch: [number, number, number]) {
    const tm = productRowsPerX(n);
    super(format, 'x', [n, totalRows], dispatch, 256, `Product${tm}`);
    this.rowsPerX = tm;
  }

  static tiles(n: number, partRows: number): { tiles: number; tilesAcross: number } {
    const tilesAcross = Math.ceil(partRows / PRODUCT_TILE_ROWS);
    return { tiles: tilesAcross * Math.ceil(n / productRowsPerX(n)), tilesAcross };
  }

  protected body(): string {
    const tm = this.rowsPerX;
    const vec = this.vec;
    const chunk = 256 / tm; // units of a row per chunk: 16 lanes × (16 / TM) each
    const staged = 256 * vec; // vec4s of x per chunk: TM rows × chunk units
    const accumulators = tm * 2;
    const round = Math.min(4, accumulators);
    const dot = Array.from({ length: vec }, (_, g) => `dot(xs[at + ${g}], wv[${g}])`).join(' + ');
    return `
      var<workgroup> xs : array<vec4<f32>, ${staged}>;
      var<workgroup> partials : array<f32, ${round * 256}>;

      fn main(index : i32) {
        let tid = i32(localIndex);
        let lane = tid % 16;
        let slot = tid / 16;
        let tile = tileIndex();
        let busy = tile < uniforms.tiles;
        let n0 = (tile / uniforms.tilesAcross) * ${tm};
        let r0 = (tile % uniforms.tilesAcross) * ${PRODUCT_TILE_ROWS};
        var acc : array<f32, ${accumulators}>;
        for (var c0 = 0; c0 < uniforms.unitsPerRow; c0 = c0 + ${chunk}) {
          for (var i = tid; i < ${staged}; i = i + 256) {
            let t = i / ${vec};
            let n = n0 + t / ${chunk};
            let k = (c0 + t % ${chunk}) * ${4 * vec} + (i % ${vec}) * 4;
            var v = vec4<f32>(0.0);
            if (busy && n < uniforms.n) {
              for (var j = 0; j < 4; j = j + 1) {
                if (k + j < uniforms.wCols) {
                  v[j] = x[n * uniforms.wCols + k + j];
                }
              }
            }
            xs[i] = v;
          }
          workgroupBarrier();
          if (busy) {
            for (var j = 0; j < ${16 / tm}; j = j + 1) {
              let cu = lane + j * 16;
              let u = c0 + cu;
              for (var p = 0; p < 2; p = p + 1) {
                let r = r0 + slot + p * 16;
                if (u < uniforms.unitsPerRow && r < uniforms.wRows) {
                  let wv = unitValues(r, u);
                  let scale = unitScale(r, u);
                  for (var m = 0; m < ${tm}; m = m + 1) {
                    let at = (m * ${chunk} + cu) * ${vec};
                    acc[m * 2 + p] = acc[m * 2 + p] + ${this.times(dot, 'scale')};
                  }
                }
              }
            }
          }
          workgroupBarrier();
        }
        for (var a0 = 0; a0 < ${accumulators}; a0 = a0 + ${round}) {
          for (var j = 0; j < ${round}; j = j + 1) {
            partials[j * 256 + tid] = acc[a0 + j];
          }
          workgroupBarrier();
          if (busy && tid < ${round * 16}) {
            let j = tid / 16;
            let rowSlot = tid % 16;
            var sum = 0.0;
            for (var l = 0; l < 16; l = l + 1) {
              sum = sum + partials[j * 256 + rowSlot * 16 + l];
            }
            let n = n0 + (a0 + j) / 2;
            let r = r0 + rowSlot + ((a0 + j) % 2) * 16;
            if (n < uniforms.n && r < uniforms.wRows) {
              result[n * uniforms.totalRows + uniforms.rowStart + r] = sum;
            }
          }
          workgroupBarrier();
        }
      }`;
  }
}

/** Units (packed words of columns) per tile of the input gradient. */
export const GRADIENT_TILE_UNITS = 64;
const gradientRowsPerDy = (n: number, format: PackedFormat) =>
  Math.min(format === 'nf4' ? 4 : 8, nextPowerOfTwo(n));

/**
 * dy [N, totalRows] · W → [N, cols], summed over this part's rows (the first part writes, the others add).
 * 256 threads = 64 units of columns × 4 lanes along W's rows; each thread keeps TM × (4 or 8) sums, dy's
 * tile is staged 32 rows at a time, and the 4 lanes' sums are added through shared memory.
 */
export class PackedInputGradientProgram extends PackedProgram {
  readonly rowsPerDy: number;

  constructor(format: PackedFormat, n: number, cols: number, dispatch: [number, number, number]) {
    const tm = gradientRowsPerDy(n, format);
    super(format, 'dy', [n, cols], dispatch, 256, `InputGradient${tm}`);
    this.rowsPerDy = tm;
  }

  static tiles(n: number, format: PackedFormat, units: number): { tiles: number; tilesAcross: number } {
    const tilesAcross = Math.ceil(units / GRADIENT_TILE_UNITS);
    return { tiles: tilesAcross * Math.ceil(n / gradientRowsPerDy(n, format)), tilesAcross };
  }

  protected body(): string {
    const tm = this.rowsPerDy;
    const vec = this.vec;
    const sums = Array.from(
      { length: vec },
      (_, g) => `acc[m * ${vec} + ${g}] = acc[m * ${vec} + ${g}] + d * wv[${g}];`,
    ).join('\n');
    return `
      var<workgroup> dys : array<f32, ${tm * 32}>;
      var<workgroup> partials : array<vec4<f32>, 256>;

      fn main(index : i32) {
        let tid = i32(localIndex);
        let cu = tid % 64;
        let lane = tid / 64;
        let tile = tileIndex();
        let busy = tile < uniforms.tiles;
        let n0 = (tile / uniforms.tilesAcross) * ${tm};
        let u = (tile % uniforms.tilesAcross) * 64 + cu;
        let mine = busy && u < uniforms.unitsPerRow;
        var acc : array<vec4<f32>, ${tm * vec}>;
        for (var r0 = 0; r0 < uniforms.wRows; r0 = r0 + 32) {
          for (var i = tid; i < ${tm * 32}; i = i + 256) {
            let n = n0 + i / 32;
            let r = r0 + i % 32;
            var v = 0.0;
            if (busy && n < uniforms.n && r < uniforms.wRows) {
              v = dy[n * uniforms.totalRows + uniforms.rowStart + r];
            }
            dys[i] = v;
          }
          workgroupBarrier();
          if (mine) {
            for (var kr = lane; kr < 32; kr = kr + 4) {
              let r = r0 + kr;
              if (r < uniforms.wRows) {
                let wv = unitValues(r, u);
                let scale = unitScale(r, u);
                for (var m = 0; m < ${tm}; m = m + 1) {
                  let d = ${this.times(`dys[m * 32 + kr]`, 'scale')};
                  ${sums}
                }
              }
            }
          }
          workgroupBarrier();
        }
        for (var a = 0; a < ${tm * vec}; a = a + 1) {
          partials[tid] = acc[a];
          workgroupBarrier();
          if (mine && lane == 0) {
            let sum = partials[cu] + partials[cu + 64] + partials[cu + 128] + partials[cu + 192];
            let n = n0 + a / ${vec};
            let k = u * ${4 * vec} + (a % ${vec}) * 4;
            for (var j = 0; j < 4; j = j + 1) {
              if (n < uniforms.n && k + j < uniforms.wCols) {
                let at = n * uniforms.wCols + k + j;
                if (uniforms.first == 1) {
                  result[at] = sum[j];
                } else {
                  result[at] = result[at] + sum[j];
                }
              }
            }
          }
          workgroupBarrier();
        }
      }`;
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
