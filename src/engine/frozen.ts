/**
 * One kind of frozen matrix. Every weight the model does not train — the decoder's projections (alone or
 * fused side by side), the lm_head and the embedding — is a FrozenMatrix W [rows, cols] (PyTorch's
 * [out, in]), whatever holds its values: float32 tensors in either layout, or packed 16-, 8- or 4-bit
 * blocks (quant.ts). The model only asks it for x·Wᵀ, the input gradient dy·W, rows of W (an embedding
 * lookup) and its values on the host; how each is computed is the matrix's business.
 */
import { packedProductRows } from './quant-product';
import { dequantizeRows, packedBytes, type PackedMatrix, type WeightFormat } from './quant';
import { tf } from './tf';
import { fusedKernelsApply } from './webgpu/program';
import {
  packedGatherRows,
  packedInputGradient,
  packedProduct,
  toGpu,
  type GpuPackedMatrix,
} from './webgpu/packed-matmul';

export interface FrozenMatrix {
  readonly format: WeightFormat;
  /** W's output and input sizes. */
  readonly rows: number;
  readonly cols: number;
  /** What it holds in memory, in bytes (padding and scales included). */
  readonly bytes: number;
  /** x [N, cols] → x·Wᵀ [N, rows]; records no gradient of its own (see frozenProduct). */
  product(x: tf.Tensor2D): tf.Tensor2D;
  /** dy [N, rows] → dy·W [N, cols]: the input gradient of the product. */
  inputGradient(dy: tf.Tensor2D): tf.Tensor2D;
  /** Rows `ids` [N] of W, [N, cols] (an embedding lookup; ids are all in range). */
  gatherRows(ids: tf.Tensor1D): tf.Tensor2D;
  /** W's values as float32, row-major [rows, cols]. */
  read(): Promise<Float32Array>;
  dispose(): void;
}

/**
 * x·Wᵀ with W frozen: the product, and as its gradient only the input's (nothing flows into W, and nothing
 * of the forward pass is saved for the backward).
 */
export function frozenProduct(matrix: FrozenMatrix, x: tf.Tensor2D): tf.Tensor2D {
  const op = tf.customGrad(((input: tf.Tensor2D, save: tf.GradSaveFunc) => {
    save([]);
    return {
      value: matrix.product(input),
      gradFunc: (dy: tf.Tensor2D) => tf.tidy(() => matrix.inputGradient(dy)),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(x) as tf.Tensor2D;
}

/**
 * W in float32 tensors, in the layout tfjs multiplies fastest for its use:
 *
 * - `transposed` (Wᵀ [cols, rows] stored, the default): x·Wᵀ is a plain product with W on the right.
 * - W [rows, cols] stored (compact weights): x·Wᵀ computed as (W·xᵀ)ᵀ, so W is only ever the left operand.
 *   tfjs-wasm (XNNPACK) keeps a packed copy of every right operand it has multiplied until that tensor is
 *   freed, so weights on the right sit in the wasm heap twice. The price: the activations are transposed,
 *   and decoding one token at a time is about half as fast on wasm. (Transposed operands are no way out:
 *   tfjs-wasm runs them in a slow loop.)
 *
 * `vocabulary` marks a vocabulary matrix (lm_head, embedding): its input gradient never transposes W, a
 * copy of the largest matrix of the model.
 */
export class F32Matrix implements FrozenMatrix {
  readonly format = 'f32';
  readonly rows: number;
  readonly cols: number;
  constructor(
    readonly tensor: tf.Tensor2D,
    readonly transposed: boolean,
    readonly vocabulary = false,
  ) {
    [this.rows, this.cols] = transposed ? [tensor.shape[1], tensor.shape[0]] : tensor.shape;
  }

  get bytes(): number {
    return this.rows * this.cols * 4;
  }

  product(x: tf.Tensor2D): tf.Tensor2D {
    return this.transposed
      ? tf.matMul(x, this.tensor)
      : tf.tidy(() => tf.transpose(tf.matMul(this.tensor, tf.transpose(x))));
  }

  inputGradient(dy: tf.Tensor2D): tf.Tensor2D {
    const t = this.tensor;
    return tf.tidy(() => {
      if (!this.transposed) return tf.transpose(tf.matMul(tf.transpose(t), tf.transpose(dy)));
      if (!this.vocabulary) return tf.matMul(dy, tf.transpose(t)); // a cheap copy next to the product
      // tfjs-webgpu multiplies by a transposed operand in the same kernel; elsewhere (Wᵀ·dyᵀ)ᵀ keeps every
      // operand plain (tfjs-wasm's transposed path is slow).
      return fusedKernelsApply()
        ? tf.matMul(dy, t, false, true)
        : tf.transpose(tf.matMul(t, tf.transpose(dy)));
    });
  }

  gatherRows(ids: tf.Tensor1D): tf.Tensor2D {
    return tf.tidy(() =>
      this.transposed ? tf.transpose(tf.gather(this.tensor, ids, 1)) : tf.gather(this.tensor, ids),
    ) as tf.Tensor2D;
  }

  async read(): Promise<Float32Array> {
    const values = (await this.tensor.data()) as Float32Array;
    return this.transposed ? transpose(values, this.cols, this.rows) : values;
  }

  dispose(): void {
    this.tensor.dispose();
  }
}

/**
 * W packed (16-bit halves, q8_0 or nf4), never widened as a whole model:
 *
 * - on WebGPU the packed words go to the GPU once (webgpu/packed-gpu.ts) and WGSL kernels dequantize them
 *   inside the products and the embedding lookup (webgpu/packed-matmul.ts);
 * - on the CPU backends (wasm, cpu) the packed bytes stay on the host, outside the wasm heap, and each
 *   product widens its one matrix to float32 (into a buffer reused on wasm), multiplies and frees it —
 *   except for a few rows of x (decoding), which are multiplied straight from the packed bytes.
 *
 * Either way it computes what a float32 model of the dequantized weights computes.
 */
export class PackedFrozenMatrix implements FrozenMatrix {
  readonly rows: number;
  readonly cols: number;
  readonly bytes: number;
  constructor(readonly packed: PackedMatrix) {
    this.rows = packed.rows;
    this.cols = packed.cols;
    this.bytes = packedBytes(packed);
  }

  get format(): WeightFormat {
    return this.packed.format;
  }

  /** The packed words on the GPU, uploaded the first time a product runs on WebGPU; null elsewhere. */
  private gpu: GpuPackedMatrix | null = null;

  private onGpu(): GpuPackedMatrix | null {
    if (!fusedKernelsApply()) return null;
    if (!this.gpu || this.gpu.isDisposed) this.gpu = toGpu(this.packed);
    return this.gpu;
  }

  /** W [rows, cols] in float32 for one use, handed to `f` and disposed after it. */
  private use<T>(f: (wide: tf.Tensor2D) => T): T {
    const { rows, cols } = this;
    const wide = tf.tensor2d(dequantizeRows(this.packed, 0, rows, scratch(rows * cols)), [rows, cols]);
    try {
      return f(wide);
    } finally {
      wide.dispose();
    }
  }

  product(x: tf.Tensor2D): tf.Tensor2D {
    const gpu = this.onGpu();
    if (gpu) return packedProduct(x, gpu);
    const n = x.shape[0];
    // Decoding: a few rows of x meet each weight once, read as stored (quant-product.ts).
    if (n <= HOST_PRODUCT_ROWS && tf.getBackend() !== 'webgpu')
      return tf.tensor2d(packedProductRows(this.packed, x.dataSync() as Float32Array, n), [n, this.rows]);
    return this.use((w) =>
      tf.getBackend() === 'webgpu'
        ? tf.matMul(x, w, false, true)
        : tf.tidy(() => tf.transpose(tf.matMul(w, tf.transpose(x)))),
    );
  }

  inputGradient(dy: tf.Tensor2D): tf.Tensor2D {
    const gpu = this.onGpu();
    if (gpu) return packedInputGradient(dy, gpu);
    return this.use((w) => tf.matMul(dy, w));
  }

  gatherRows(ids: tf.Tensor1D): tf.Tensor2D {
    const gpu = this.onGpu();
    if (gpu) return packedGatherRows(gpu, ids);
    // Only the rows asked for are widened.
    const wanted = ids.dataSync();
    const out = new Float32Array(wanted.length * this.cols);
    wanted.forEach((id, i) =>
      dequantizeRows(this.packed, id, 1, out.subarray(i * this.cols, (i + 1) * this.cols)),
    );
    return tf.tensor2d(out, [wanted.length, this.cols]);
  }

  async read(): Promise<Float32Array> {
    return dequantizeRows(this.packed);
  }

  dispose(): void {
    this.gpu?.dispose();
    this.gpu = null;
  }
}

/**
 * At most this many rows of x are multiplied straight from the packed bytes on the CPU backends (one token
 * per sequence while decoding); more rows share the widened matrix in one product.
 */
const HOST_PRODUCT_ROWS = 4;

/**
 * A host buffer reused for widening on wasm: tfjs-wasm copies a new tensor's values into its heap at once,
 * and one matrix is widened at a time. It grows to the largest matrix widened and stays. The cpu and webgpu
 * backends keep the array they are given (until it is read or uploaded), so there each widening gets an
 * array of its own.
 */
let buffer = new Float32Array(0);
function scratch(length: number): Float32Array<ArrayBuffer> {
  if (tf.getBackend() !== 'wasm') return new Float32Array(length);
  if (buffer.length < length) buffer = new Float32Array(length);
  return buffer.subarray(0, length);
}

/** data [rows, cols] row-major → [cols, rows], into `out` when given. */
export function transpose(
  data: Float32Array,
  rows: number,
  cols: number,
  out = new Float32Array(rows * cols),
): Float32Array {
  for (let r = 0; r < rows; r++) {
    const row = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = data[row + c];
  }
  return out;
}
