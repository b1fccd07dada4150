/**
 * Products with a frozen matrix W [rows, cols] that stays packed on the GPU (formats: ../quant.ts), as
 * WGSL kernels registered with tfjs (so tidy and memory accounting work): x·Wᵀ (a linear layer's forward),
 * dy·W (its input gradient) and a gather of W's rows (an embedding lookup). W is widened inside the
 * kernels, value by value as it is read; no float32 copy of it ever exists on the GPU.
 *
 * Layout (packed-gpu.ts): 32-bit words in int32 tensors. bf16/f16: the bits, two per word, the even flat
 * index in the low half, rows running on with no padding. q8_0: the int8 quants, 4 per word little-endian,
 * each row padded to whole blocks of 32 (8 words), and the f16 scales two per word. nf4: the codes, 8 per
 * word (byte j holds values 2j, 2j + 1, the first in its high nibble), rows padded to whole blocks of 64
 * (8 words), and the absmax as float32. A matrix larger than a storage binding is held in parts of whole
 * rows, one dispatch each.
 *
 * Bytes per weight on the GPU: float32 4; bf16/f16 2; q8_0 34/32 = 1.0625; nf4 36/64 = 0.5625 (with cols a
 * multiple of the block; a short last block is padded).
 *
 * Tiling (packed-programs.ts), sized for real GPUs, where reading W is what costs; every shape is handled
 * by bounds checks rather than by padding, and each kernel is one dispatch per part:
 * - x·Wᵀ: a workgroup computes up to 16 of x's rows × 32 of W's rows. 16 lanes split each W row, reading
 *   neighbouring words (coalesced) straight into registers, so each packed word is read once per tile and
 *   its scale once per word, applied to the word's partial sum rather than to each value; x's rows are
 *   staged in shared memory a chunk at a time and reused across the tile's 32 W rows. N = 1 (decoding a
 *   token) takes tiles of one x row with long chunks, so nothing is computed for padding rows; larger N
 *   takes 2-, 4-, 8- or 16-row tiles.
 * - dy·W: a workgroup computes up to 8 (nf4: 4) of dy's rows × 64 words of W's columns; 4 lanes split W's
 *   rows, dy is staged 32 rows at a time, each thread keeps its word's 4 or 8 columns in registers.
 * - gather: one thread per word of an output row.
 * Shared memory stays under 12 KB (WebGPU guarantees 16), workgroups are 256 threads (the guaranteed
 * maximum), tiles past maxComputeWorkgroupsPerDimension spill over y and z, and barriers sit in uniform
 * control flow only, as Dawn's uniformity analysis requires. SwiftShader runs them exactly as written.
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
import {
  GATHER_WORKGROUP,
  PACKED_UNIFORMS,
  PackedGatherProgram,
  PackedInputGradientProgram,
  PackedProductProgram,
  type PackedUniforms,
} from './packed-programs';

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
    const { tiles, tilesAcross } =
      kind === 'product'
        ? PackedProductProgram.tiles(n, wRows)
        : kind === 'inputGradient'
          ? PackedInputGradientProgram.tiles(n, format, units)
          : { tiles: Math.ceil((n * units) / GATHER_WORKGROUP), tilesAcross: 1 };
    const dispatch = dispatchFor(backend, tiles);
    const program =
      kind === 'product'
        ? new PackedProductProgram(format, n, rows, dispatch)
        : kind === 'inputGradient'
          ? new PackedInputGradientProgram(format, n, cols, dispatch)
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
