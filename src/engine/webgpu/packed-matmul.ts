/**
 * x·Wᵀ (a linear layer's forward), dy·W (its input gradient) and a gather of rows (an embedding lookup) for
 * a frozen W [rows, cols] held packed on the GPU (formats: ../quant.ts), as WGSL kernels registered with
 * tfjs (tidy and memory accounting work). W is widened inside the kernels as it is read; no float32 copy of
 * it ever exists on the GPU.
 *
 * Layout (packed-gpu.ts), 32-bit words in int32 tensors. bf16/f16: two halves a word, the even flat index
 * low, rows running on unpadded. q8_0: int8 quants 4 a word little-endian, rows padded to whole blocks of
 * 32; f16 scales two a word. nf4: codes 8 a word (byte j: values 2j, 2j + 1, the first in the high nibble),
 * rows padded to whole blocks of 64; absmax float32. Larger than a storage binding: parts of whole rows.
 * Bytes per weight: float32 4, bf16/f16 2, q8_0 34/32 = 1.0625, nf4 36/64 = 0.5625 (cols a multiple of
 * the block).
 *
 * Tiling, sized for real GPUs, where reading W is the cost (and checked on SwiftShader); one dispatch per
 * part, any shape (bounds checks, no padding), 64-thread workgroups, < 10 KB of shared memory:
 * - N ≤ 4 rows of x or dy (decoding): W's words go from memory straight to registers, read once per
 *   workgroup by neighbouring threads (coalesced), each word's scale applied once to its partial sum. x·Wᵀ:
 *   16 lanes split each row, 4 slots × 2 or 8 rows a thread (8 for large W: each value of x read from
 *   shared memory then serves 8 rows), lanes summed at the end. dy·W: 16 words of columns × 4 lanes of rows.
 * - More rows (training, prefill): 32 × 32 output tiles, 4 × 4 per thread, as tfjs's own matmul; each step
 *   widens 32 × 32 of W into shared memory, each thread half a block-row with one read of its scale, and a
 *   widened value then serves 32 rows of x.
 * nf4's levels come from selects on the code's bits, not a table indexed per thread (which can land in
 * per-thread scratch memory). Workgroups past maxComputeWorkgroupsPerDimension go over y and z.
 */
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { tf } from '../tf';
import {
  dispatchFor,
  unitsPerRow,
  webgpuBackend,
  type GpuPackedMatrix,
  type PackedFormat,
} from './packed-gpu';
import { PackedInputGradientTiledProgram, PackedInputGradientVectorProgram } from './packed-gradient';
import { PackedProductTiledProgram, PackedProductVectorProgram, VECTOR_MAX_ROWS } from './packed-product';
import { GATHER_WORKGROUP, PACKED_UNIFORMS, PackedGatherProgram, type PackedUniforms } from './packed-wgsl';

export { packedKernelLimits, toGpu, type GpuPackedMatrix } from './packed-gpu';

type Kind = 'product' | 'inputGradient' | 'gather';

const KERNELS: Record<Kind, string> = {
  product: 'WebtunePackedProduct',
  inputGradient: 'WebtunePackedInputGradient',
  gather: 'WebtunePackedGather',
};

interface PackedAttrs {
  format: PackedFormat;
  rows: number;
  cols: number;
  blocksPerRow: number;
  partRows: number[];
}

/** One program per part of W, all writing into one output. */
function runParts(
  kind: Kind,
  backend: WebGPUBackend,
  inputs: Record<string, tf.TensorInfo>,
  { format, rows, cols, blocksPerRow, partRows }: PackedAttrs,
): tf.TensorInfo {
  const input = inputs.input;
  const n = input.shape[0];
  const output = backend.makeTensorInfo([n, kind === 'product' ? rows : cols], 'float32');
  const units = unitsPerRow(format, cols, blocksPerRow);
  let rowStart = 0;
  partRows.forEach((wRows, i) => {
    const words = inputs[`w${i}`];
    const scales = inputs[`s${i}`];
    const vector = n <= VECTOR_MAX_ROWS;
    const { tiles, tilesAcross } =
      kind === 'product'
        ? (vector ? PackedProductVectorProgram : PackedProductTiledProgram).tiles(n, wRows)
        : kind === 'inputGradient'
          ? vector
            ? PackedInputGradientVectorProgram.tiles(n, units)
            : PackedInputGradientTiledProgram.tiles(n, units, format)
          : { tiles: Math.ceil((n * units) / GATHER_WORKGROUP), tilesAcross: 1 };
    const dispatch = dispatchFor(backend, tiles);
    const program =
      kind === 'product'
        ? vector
          ? new PackedProductVectorProgram(format, n, rows, wRows, dispatch)
          : new PackedProductTiledProgram(format, n, rows, dispatch)
        : kind === 'inputGradient'
          ? vector
            ? new PackedInputGradientVectorProgram(format, n, cols, dispatch)
            : new PackedInputGradientTiledProgram(format, n, cols, dispatch)
          : new PackedGatherProgram(format, n, cols, dispatch);
    const uniforms: PackedUniforms = {
      n,
      wRows,
      wCols: cols,
      unitsPerRow: units,
      blocksPerRow,
      wordCount: words.shape[0],
      rowStart,
      totalRows: rows,
      tiles,
      tilesAcross,
      first: i === 0 ? 1 : 0,
    };
    backend.runWebGPUProgram(
      program,
      scales ? [input, words, scales] : [input, words],
      'float32',
      PACKED_UNIFORMS.map((name) => ({ type: 'int32', data: [uniforms[name]] })),
      output,
    );
    rowStart += wRows;
  });
  return output;
}

function register(kind: Kind): void {
  const kernelName = KERNELS[kind];
  if (tf.getKernel(kernelName, 'webgpu')) return;
  tf.registerKernel({
    kernelName,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend, attrs }) =>
      runParts(
        kind,
        backend as WebGPUBackend,
        inputs as Record<string, tf.TensorInfo>,
        attrs as unknown as PackedAttrs,
      ),
  });
}

/** Runs a kernel on `input` and W's parts (inputs w0, s0, w1, s1, …). */
function runPacked(kind: Kind, input: tf.Tensor, w: GpuPackedMatrix): tf.Tensor2D {
  register(kind);
  const inputs: Record<string, tf.Tensor> = { input };
  w.parts.forEach((part, i) => {
    inputs[`w${i}`] = part.words;
    if (part.scales) inputs[`s${i}`] = part.scales;
  });
  const attrs: PackedAttrs = {
    format: w.format,
    rows: w.rows,
    cols: w.cols,
    blocksPerRow: w.blocksPerRow,
    partRows: w.parts.map((p) => p.rows),
  };
  return tf
    .engine()
    .runKernel(
      KERNELS[kind],
      inputs as unknown as tf.NamedTensorMap,
      attrs as unknown as tf.NamedAttrMap,
    ) as tf.Tensor2D;
}

function check(what: string, t: tf.Tensor, dtype: tf.DataType, shape: (number | null)[], w: GpuPackedMatrix) {
  webgpuBackend(what);
  if (w.isDisposed) throw new Error(`${what}: the packed matrix has been disposed.`);
  const fits = t.rank === shape.length && shape.every((size, i) => size === null || size === t.shape[i]);
  if (t.dtype !== dtype || !fits)
    throw new RangeError(
      `${what}: expected ${dtype} [${shape.map((s) => s ?? 'N').join(', ')}], got ${t.dtype} [${t.shape.join(', ')}].`,
    );
}

/**
 * x · Wᵀ for x [N, cols]: [N, rows], the forward of a linear layer whose weight is W. Differentiable in x
 * (its gradient is packedInputGradient); W is frozen.
 */
export function packedProduct(x: tf.Tensor2D, w: GpuPackedMatrix): tf.Tensor2D {
  check('packedProduct', x, 'float32', [null, w.cols], w);
  const op = tf.customGrad(((input: tf.Tensor2D) => ({
    value: runPacked('product', input, w),
    gradFunc: (dy: tf.Tensor2D) => packedInputGradient(dy, w),
  })) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(x) as tf.Tensor2D;
}

/** dy · W for dy [N, rows]: [N, cols], the gradient of x·Wᵀ with respect to x. */
export function packedInputGradient(dy: tf.Tensor2D, w: GpuPackedMatrix): tf.Tensor2D {
  check('packedInputGradient', dy, 'float32', [null, w.rows], w);
  return runPacked('inputGradient', dy, w);
}

/** Rows `ids` [N] (int32) of W as float32 [N, cols]; an id outside [0, rows) gives a row of zeros. */
export function packedGatherRows(w: GpuPackedMatrix, ids: tf.Tensor1D): tf.Tensor2D {
  check('packedGatherRows', ids, 'int32', [null], w);
  return runPacked('gather', ids, w);
}
