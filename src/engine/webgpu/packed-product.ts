/**
 * x·Wᵀ on a packed matrix (see packed-matmul.ts for the layout and the tiling), two ways:
 * - few rows of x (decoding): PackedProductVectorProgram, where W's words go straight to registers and
 *   are read once, and lanes along each row keep the reads coalesced;
 * - more rows: PackedProductTiledProgram, a tiled matmul whose W tile is widened into shared memory.
 */
import type { PackedFormat } from './packed-gpu';
import { nextPowerOfTwo, PackedProgram } from './packed-wgsl';

/** Up to this many rows of x, the vector program; beyond, the tiled one. */
export const VECTOR_MAX_ROWS = 4;

/** Row slots of the vector program: 64 threads = 16 lanes × 4 slots. */
const SLOTS = 4;

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** x[n, k .. k + 3] (zeros past the row's end, or everywhere when not `inside`). */
const X_AT = `
  fn xAt(inside : bool, n : i32, k : i32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    if (inside) {
      let at = n * uniforms.wCols + k;
      if (k + 4 <= uniforms.wCols) {
        v = vec4<f32>(x[at], x[at + 1], x[at + 2], x[at + 3]);
      } else {
        for (var j = 0; j < uniforms.wCols - k; j = j + 1) {
          v[j] = x[at + j];
        }
      }
    }
    return v;
  }`;

/**
 * Rows of W per thread in the vector program: 8 for large matrices (fewer shared-memory reads of x, more
 * loads of W in flight), 2 for small ones (more workgroups).
 */
const rowsPerThread = (partRows: number) => (partRows >= 2048 ? 8 : 2);

/**
 * x [N ≤ 4, cols] · Wᵀ. 64 threads = 16 lanes along the row × 4 row slots, each slot PR rows of W (a tile
 * of 4·PR rows); a lane reads every 16th unit of its rows, so neighbouring threads read neighbouring words.
 * x is staged in shared memory (up to 256 units of a row at a time) and each value read serves PR rows;
 * the 16 lanes' partial sums are added through shared memory at the end.
 */
export class PackedProductVectorProgram extends PackedProgram {
  private readonly tm: number;
  private readonly pr: number;

  constructor(
    format: PackedFormat,
    n: number,
    totalRows: number,
    partRows: number,
    dispatch: [number, number, number],
  ) {
    const tm = nextPowerOfTwo(n);
    const pr = rowsPerThread(partRows);
    super(format, 'x', [n, totalRows], dispatch, 16 * SLOTS, `ProductVector${tm}x${pr}`);
    this.tm = tm;
    this.pr = pr;
  }

  static tiles(n: number, partRows: number): { tiles: number; tilesAcross: number } {
    const tilesAcross = Math.ceil(partRows / (SLOTS * rowsPerThread(partRows)));
    return { tiles: tilesAcross * Math.ceil(n / nextPowerOfTwo(n)), tilesAcross };
  }

  protected body(): string {
    const { tm, pr, vec } = this;
    const threads = 16 * SLOTS;
    const chunk = 256 / tm; // units of a row staged at a time: 16 lanes × (16 / TM)
    const staged = 256 * vec; // vec4s of x per chunk
    const round = Math.min(4, tm * pr); // partial sums reduced per round
    // Loops over accumulators are unrolled: a private array indexed by a loop variable can end up in
    // memory (on SwiftShader it made the kernel several times slower).
    const xs = range(tm).map((m) => range(vec).map((g) => `x${m}_${g}`));
    const loadX = range(tm)
      .flatMap((m) => range(vec).map((g) => `let ${xs[m][g]} = xs[(${m * chunk} + cu) * ${vec} + ${g}];`))
      .join('\n');
    const rowsOfW = range(pr)
      .map((p) => {
        const sums = range(tm).map((m) => {
          const dot = range(vec)
            .map((g) => `dot(${xs[m][g]}, wv[${g}])`)
            .join(' + ');
          return `acc[${m * pr + p}] = acc[${m * pr + p}] + ${this.times(dot, 'scale')};`;
        });
        // Rows past the part's end read its last row instead, and their sums are never written.
        return `
              {
                let r = min(rA + ${SLOTS * p}, uniforms.wRows - 1);
                let wv = unitValues(r, u);
                let scale = unitScale(r, u);
                ${sums.join('\n')}
              }`;
      })
      .join('');
    const rounds = range((tm * pr) / round).map((q) => {
      const stores = range(round).map((j) => `partials[${j * threads} + tid] = acc[${q * round + j}];`);
      return `
        ${stores.join('\n')}
        workgroupBarrier();
        if (busy && tid < ${round * SLOTS}) {
          let a = ${q * round} + tid / ${SLOTS};
          let rowSlot = tid % ${SLOTS};
          var sum = 0.0;
          for (var l = 0; l < 16; l = l + 1) {
            sum = sum + partials[(a - ${q * round}) * ${threads} + rowSlot * 16 + l];
          }
          let n = n0 + a / ${pr};
          let r = r0 + rowSlot + (a % ${pr}) * ${SLOTS};
          if (n < uniforms.n && r < uniforms.wRows) {
            result[n * uniforms.totalRows + uniforms.rowStart + r] = sum;
          }
        }
        workgroupBarrier();`;
    });
    return `
      ${X_AT}
      var<workgroup> xs : array<vec4<f32>, ${staged}>;
      var<workgroup> partials : array<f32, ${round * threads}>;

      fn main(index : i32) {
        let tid = i32(localIndex);
        let lane = tid % 16;
        let tile = tileIndex();
        let busy = tile < uniforms.tiles;
        let n0 = (tile / uniforms.tilesAcross) * ${tm};
        let r0 = (tile % uniforms.tilesAcross) * ${SLOTS * pr};
        let rA = r0 + tid / 16;
        var acc : array<f32, ${tm * pr}>;
        for (var c0 = 0; c0 < uniforms.unitsPerRow; c0 = c0 + ${chunk}) {
          for (var i = tid; i < ${staged}; i = i + ${threads}) {
            let t = i / ${vec};
            let n = n0 + t / ${chunk};
            let k = (c0 + t % ${chunk}) * ${4 * vec} + (i % ${vec}) * 4;
            xs[i] = xAt(busy && n < uniforms.n, n, k);
          }
          workgroupBarrier();
          let end = select(c0, min(c0 + ${chunk}, uniforms.unitsPerRow), busy);
          for (var u = c0 + lane; u < end; u = u + 16) {
            let cu = u - c0;
            ${loadX}
            ${rowsOfW}
          }
          workgroupBarrier();
        }
        ${rounds.join('')}
      }`;
  }
}

/**
 * x [N, cols] · Wᵀ in 32 × 32 tiles of the output, 64 threads of 4 × 4 each (rows ty + 8i of x, tx + 8j of
 * W: conflict-free reads of shared memory), as tfjs's own matmul. Each step widens 32 values of the tile's
 * 32 rows of W into shared memory (a thread takes half a row's step, reading its scale once) next to the
 * same 32 values of the tile's rows of x.
 */
export class PackedProductTiledProgram extends PackedProgram {
  constructor(format: PackedFormat, n: number, totalRows: number, dispatch: [number, number, number]) {
    super(format, 'x', [n, totalRows], dispatch, 64, 'ProductTiled');
  }

  static tiles(n: number, partRows: number): { tiles: number; tilesAcross: number } {
    const tilesAcross = Math.ceil(partRows / 32);
    return { tiles: tilesAcross * Math.ceil(n / 32), tilesAcross };
  }

  protected body(): string {
    const vec = this.vec;
    const stepUnits = 32 / (4 * vec); // units per row per step of 32 values
    const half = stepUnits / 2;
    const widen = range(half)
      .map(
        (q) => `
            {
              let u = c0 + h * ${half} + ${q};
              var wv = array<vec4<f32>, ${vec}>();
              if (inside && u < uniforms.unitsPerRow) {
                wv = unitValues(r, u);
              }
              ${range(vec)
                .map(
                  (g) =>
                    `ws[wr * 9 + (h * ${half} + ${q}) * ${vec} + ${g}] = ${this.times(`wv[${g}]`, 'scale')};`,
                )
                .join('\n')}
            }`,
      )
      .join('');
    const products = range(4)
      .map(
        (i) => `
              {
                let xv = xs[(ty + ${8 * i}) * 8 + k4];
                acc[${i}] = acc[${i}] + vec4<f32>(dot(xv, w0), dot(xv, w1), dot(xv, w2), dot(xv, w3));
              }`,
      )
      .join('');
    const writes = range(4)
      .flatMap((i) =>
        range(4).map(
          (j) => `
        if (busy && n0 + ty + ${8 * i} < uniforms.n && r0 + tx + ${8 * j} < uniforms.wRows) {
          result[(n0 + ty + ${8 * i}) * uniforms.totalRows + uniforms.rowStart + r0 + tx + ${8 * j}] =
            acc[${i}][${j}];
        }`,
        ),
      )
      .join('');
    return `
      ${X_AT}
      var<workgroup> xs : array<vec4<f32>, 256>;
      var<workgroup> ws : array<vec4<f32>, ${32 * 9}>;

      fn main(index : i32) {
        let tid = i32(localIndex);
        let tx = tid % 8;
        let ty = tid / 8;
        let tile = tileIndex();
        let busy = tile < uniforms.tiles;
        let n0 = (tile / uniforms.tilesAcross) * 32;
        let r0 = (tile % uniforms.tilesAcross) * 32;
        let wr = tid / 2;
        let h = tid % 2;
        let r = r0 + wr;
        let inside = busy && r < uniforms.wRows;
        var acc : array<vec4<f32>, 4>;
        for (var c0 = 0; c0 < uniforms.unitsPerRow; c0 = c0 + ${stepUnits}) {
          for (var i = tid; i < 256; i = i + 64) {
            let n = n0 + i / 8;
            xs[i] = xAt(busy && n < uniforms.n, n, c0 * ${4 * vec} + (i % 8) * 4);
          }
          var scale = 0.0;
          if (inside && c0 + h * ${half} < uniforms.unitsPerRow) {
            scale = unitScale(r, c0 + h * ${half});
          }
          ${widen}
          workgroupBarrier();
          for (var k4 = 0; k4 < 8; k4 = k4 + 1) {
            let w0 = ws[tx * 9 + k4];
            let w1 = ws[(tx + 8) * 9 + k4];
            let w2 = ws[(tx + 16) * 9 + k4];
            let w3 = ws[(tx + 24) * 9 + k4];
            ${products}
          }
          workgroupBarrier();
        }
        ${writes}
      }`;
  }
}
