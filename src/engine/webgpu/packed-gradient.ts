/**
 * dy·W on a packed matrix (see packed-matmul.ts for the layout and the tiling).
 */
import type { PackedFormat } from './packed-gpu';
import { nextPowerOfTwo, PackedProgram } from './packed-wgsl';

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** Units (packed words of columns) per tile of the vector program. */
const VECTOR_TILE_UNITS = 16;

/**
 * dy [N ≤ 4, totalRows] · W → [N, cols], summed over this part's rows (the first part writes, the others
 * add). 64 threads = 16 units of columns × 4 lanes along W's rows: neighbouring threads read neighbouring
 * words of a row; each thread keeps N × (4 or 8) sums, dy is staged 32 rows at a time, and the 4 lanes'
 * sums are added through shared memory.
 */
export class PackedInputGradientVectorProgram extends PackedProgram {
  private readonly tm: number;

  constructor(format: PackedFormat, n: number, cols: number, dispatch: [number, number, number]) {
    const tm = nextPowerOfTwo(n);
    super(format, 'dy', [n, cols], dispatch, 64, `InputGradientVector${tm}`);
    this.tm = tm;
  }

  static tiles(n: number, units: number): { tiles: number; tilesAcross: number } {
    const tilesAcross = Math.ceil(units / VECTOR_TILE_UNITS);
    return { tiles: tilesAcross * Math.ceil(n / nextPowerOfTwo(n)), tilesAcross };
  }

  protected body(): string {
    const { tm, vec } = this;
    const sums = range(tm).map(
      (m) => `
                {
                  let d = ${this.times(`dys[${m * 32} + kr]`, 'scale')};
                  ${range(vec)
                    .map((g) => `acc[${m * vec + g}] = acc[${m * vec + g}] + d * wv[${g}];`)
                    .join('\n')}
                }`,
    );
    const rounds = range(tm * vec).map(
      (a) => `
        partials[tid] = acc[${a}];
        workgroupBarrier();
        if (mine && lane == 0 && n0 + ${Math.floor(a / vec)} < uniforms.n) {
          let sum = partials[cu] + partials[cu + 16] + partials[cu + 32] + partials[cu + 48];
          let k = u * ${4 * vec} + ${(a % vec) * 4};
          let at = (n0 + ${Math.floor(a / vec)}) * uniforms.wCols + k;
          for (var j = 0; j < min(4, uniforms.wCols - k); j = j + 1) {
            if (uniforms.first == 1) {
              result[at + j] = sum[j];
            } else {
              result[at + j] = result[at + j] + sum[j];
            }
          }
        }
        workgroupBarrier();`,
    );
    return `
      var<workgroup> dys : array<f32, ${tm * 32}>;
      var<workgroup> partials : array<vec4<f32>, 64>;

      fn main(index : i32) {
        let tid = i32(localIndex);
        let cu = tid % 16;
        let lane = tid / 16;
        let tile = tileIndex();
        let busy = tile < uniforms.tiles;
        let n0 = (tile / uniforms.tilesAcross) * ${tm};
        let u = (tile % uniforms.tilesAcross) * 16 + cu;
        let mine = busy && u < uniforms.unitsPerRow;
        var acc : array<vec4<f32>, ${tm * vec}>;
        for (var r0 = 0; r0 < uniforms.wRows; r0 = r0 + 32) {
          for (var i = tid; i < ${tm * 32}; i = i + 64) {
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
            for (var kr = lane; kr < min(32, uniforms.wRows - r0); kr = kr + 4) {
              let wv = unitValues(r0 + kr, u);
              let scale = unitScale(r0 + kr, u);
              ${sums.join('')}
            }
          }
          workgroupBarrier();
        }
        ${rounds.join('')}
      }`;
  }
}

/**
 * dy [N, totalRows] · W → [N, cols] in 32 × 32 tiles of the output (rows of dy × columns of W), 64 threads
 * of 4 rows × one vec4 of columns each, summed over this part's rows 32 at a time: each step widens the
 * tile's 32 columns of 32 rows of W into shared memory (a thread takes half a row, reading its scale once)
 * next to the same 32 rows' values of dy.
 */
export class PackedInputGradientTiledProgram extends PackedProgram {
  constructor(format: PackedFormat, n: number, cols: number, dispatch: [number, number, number]) {
    super(format, 'dy', [n, cols], dispatch, 64, 'InputGradientTiled');
  }

  static tiles(n: number, units: number, format: PackedFormat): { tiles: number; tilesAcross: number } {
    const tilesAcross = Math.ceil(units / (format === 'nf4' ? 4 : 8));
    return { tiles: tilesAcross * Math.ceil(n / 32), tilesAcross };
  }

  protected body(): string {
    const vec = this.vec;
    const stepUnits = 8 / vec; // units per row of the tile's 32 columns
    const half = stepUnits / 2;
    const widen = range(half)
      .map(
        (q) => `
          {
            var wv = array<vec4<f32>, ${vec}>();
            if (inside && u0 + ${q} < uniforms.unitsPerRow) {
              wv = unitValues(r, u0 + ${q});
            }
            ${range(vec)
              .map(
                (g) =>
                  `ws[wr * 8 + (h * ${half} + ${q}) * ${vec} + ${g}] = ${this.times(`wv[${g}]`, 'scale')};`,
              )
              .join('\n')}
          }`,
      )
      .join('');
    const writes = range(4)
      .map(
        (i) => `
        if (busy && n0 + ty + ${8 * i} < uniforms.n) {
          let at = (n0 + ty + ${8 * i}) * uniforms.wCols + k;
          for (var j = 0; j < min(4, uniforms.wCols - k); j = j + 1) {
            if (uniforms.first == 1) {
              result[at + j] = acc[${i}][j];
            } else {
              result[at + j] = result[at + j] + acc[${i}][j];
            }
          }
        }`,
      )
      .join('');
    return `
      var<workgroup> dys : array<f32, ${32 * 33}>;
      var<workgroup> ws : array<vec4<f32>, 256>;

      fn main(index : i32) {
        let tid = i32(localIndex);
        let tx = tid % 8;
        let ty = tid / 8;
        let tile = tileIndex();
        let busy = tile < uniforms.tiles;
        let n0 = (tile / uniforms.tilesAcross) * 32;
        let cTile = tile % uniforms.tilesAcross;
        let k = cTile * 32 + tx * 4;
        let wr = tid / 2;
        let h = tid % 2;
        let u0 = cTile * ${stepUnits} + h * ${half};
        var acc : array<vec4<f32>, 4>;
        for (var r0 = 0; r0 < uniforms.wRows; r0 = r0 + 32) {
          for (var i = tid; i < 1024; i = i + 64) {
            let n = n0 + i / 32;
            let r = r0 + i % 32;
            var v = 0.0;
            if (busy && n < uniforms.n && r < uniforms.wRows) {
              v = dy[n * uniforms.totalRows + uniforms.rowStart + r];
            }
            dys[(i / 32) * 33 + i % 32] = v;
          }
          let r = r0 + wr;
          let inside = busy && r < uniforms.wRows;
          var scale = 0.0;
          if (inside && u0 < uniforms.unitsPerRow) {
            scale = unitScale(r, u0);
          }
          ${widen}
          workgroupBarrier();
          for (var kr = 0; kr < 32; kr = kr + 1) {
            let wv = ws[kr * 8 + tx];
            ${range(4)
              .map((i) => `acc[${i}] = acc[${i}] + dys[(ty + ${8 * i}) * 33 + kr] * wv;`)
              .join('\n')}
          }
          workgroupBarrier();
        }
        ${writes}
      }`;
  }
}
