/**
 * A packed frozen matrix (../quant.ts) held on the GPU as tfjs int32 tensors of 32-bit words, as the
 * kernels of packed-matmul.ts read them, and the device limits those kernels must respect.
 *
 * A matrix is cut into parts of whole rows when one array would exceed what a storage binding may hold;
 * each part is laid out as a matrix of its own, so a part's first value is always word 0's low half.
 */
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { NF4_BLOCK, Q8_0_BLOCK, type HalfFormat, type PackedMatrix, type QuantFormat } from '../quant';
import { tf } from '../tf';

export type PackedFormat = HalfFormat | QuantFormat;

/** Rows [rowStart, rowStart + rows) of the matrix, in tensors of their own. */
export interface GpuPackedPart {
  readonly rowStart: number;
  readonly rows: number;
  /** bf16/f16: the bits, two to a word, low half first; q8_0: quants, nf4: codes, 4 bytes to a word. */
  readonly words: tf.Tensor1D;
  /** q8_0: f16 scales, two to a word (int32); nf4: absmax (float32); none for bf16/f16. */
  readonly scales?: tf.Tensor1D;
}

export interface GpuPackedMatrix {
  readonly format: PackedFormat;
  readonly rows: number;
  readonly cols: number;
  /** Blocks along each row (0 for bf16/f16, which have none). */
  readonly blocksPerRow: number;
  /** Bytes the matrix holds on the GPU (padding included). */
  readonly bytes: number;
  readonly parts: readonly GpuPackedPart[];
  /** Frees the GPU tensors; the matrix cannot be used afterwards. */
  dispose(): void;
  readonly isDisposed: boolean;
}

/**
 * Limits below the device's, for tests of the paths that large matrices take (0: the device's own).
 * Not for production use: smaller limits only cost dispatches.
 */
export const packedKernelLimits = { maxBindingBytes: 0, maxWorkgroupsPerDimension: 0 };

/** Parts stay under 1 GiB whatever the device allows, so every index fits an i32 in the shaders. */
const MAX_PART_BYTES = 2 ** 30;

/** tfjs's webgpu backend, which must be the one computing now. */
export function webgpuBackend(what: string): WebGPUBackend {
  if (tf.getBackend() !== 'webgpu')
    throw new Error(`${what} runs on the webgpu backend only (tfjs runs on ${tf.getBackend()}).`);
  return tf.backend() as WebGPUBackend;
}

function maxBindingBytes(backend: WebGPUBackend): number {
  const { maxStorageBufferBindingSize, maxBufferSize } = backend.device.limits;
  const device = Math.min(maxStorageBufferBindingSize, maxBufferSize, MAX_PART_BYTES);
  return packedKernelLimits.maxBindingBytes > 0
    ? Math.min(device, packedKernelLimits.maxBindingBytes)
    : device;
}

/**
 * Units per row, a unit being what the kernels read at a time: one word of q8_0 (4 values) or nf4 (8), whose
 * rows are padded to whole blocks of 8 words; 4 values of bf16/f16, whose rows run on unpadded.
 */
export function unitsPerRow(format: PackedFormat, cols: number, blocksPerRow: number): number {
  return format === 'q8_0' || format === 'nf4' ? blocksPerRow * 8 : Math.ceil(cols / 4);
}

/** Little-endian bytes into 32-bit words (the last one zero-padded). */
function toWords(bytes: Uint8Array): Int32Array {
  const words = new Int32Array(Math.ceil(bytes.byteLength / 4));
  new Uint8Array(words.buffer).set(bytes);
  return words;
}

const bytesOf = (a: Uint16Array | Int8Array | Uint8Array) =>
  new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Bytes per row of the part's largest array, and the tensors holding rows [start, end). */
function layout(m: PackedMatrix): {
  rowBytes: number;
  tensors: (start: number, end: number) => { words: tf.Tensor1D; scales?: tf.Tensor1D };
} {
  const int32 = (a: Int32Array) => tf.tensor1d(a, 'int32');
  if (m.format === 'q8_0') {
    const stride = m.blocksPerRow * Q8_0_BLOCK;
    return {
      rowBytes: stride,
      tensors: (start, end) => ({
        words: int32(toWords(bytesOf(m.quants.subarray(start * stride, end * stride)))),
        scales: int32(toWords(bytesOf(m.scales.subarray(start * m.blocksPerRow, end * m.blocksPerRow)))),
      }),
    };
  }
  if (m.format === 'nf4') {
    const stride = (m.blocksPerRow * NF4_BLOCK) / 2;
    return {
      rowBytes: stride,
      tensors: (start, end) => ({
        words: int32(toWords(m.codes.subarray(start * stride, end * stride))),
        scales: tf.tensor1d(m.absmax.slice(start * m.blocksPerRow, end * m.blocksPerRow), 'float32'),
      }),
    };
  }
  return {
    rowBytes: m.cols * 2,
    tensors: (start, end) => ({
      words: int32(toWords(bytesOf(m.bits.subarray(start * m.cols, end * m.cols)))),
    }),
  };
}

/**
 * Uploads `m`'s packed arrays to the GPU (now, so that the host copies can go) as int32 tensors, in parts
 * of whole rows when the matrix is larger than one storage binding may be. Nothing float32 of the matrix
 * is created: the kernels widen the values as they read them. The tensors outlive any tf.tidy around the
 * call; `dispose()` frees them.
 */
export function toGpu(m: PackedMatrix): GpuPackedMatrix {
  const backend = webgpuBackend('toGpu');
  if (m.rows < 1 || m.cols < 1) throw new RangeError(`toGpu: an empty [${m.rows}, ${m.cols}] matrix.`);
  const { rowBytes, tensors } = layout(m);
  // A part's array may end in a padding word (an odd count of halves).
  const limit = maxBindingBytes(backend) - 4;
  if (rowBytes > limit)
    throw new RangeError(`toGpu: one row takes ${rowBytes} bytes, more than a storage binding holds.`);
  const rowsPerPart = Math.floor(limit / rowBytes);
  const parts: GpuPackedPart[] = [];
  for (let rowStart = 0; rowStart < m.rows; rowStart += rowsPerPart) {
    const rows = Math.min(rowsPerPart, m.rows - rowStart);
    const { words, scales } = tensors(rowStart, rowStart + rows);
    for (const t of scales ? [words, scales] : [words]) {
      tf.keep(t);
      backend.uploadToGPU(t.dataId);
    }
    parts.push(scales ? { rowStart, rows, words, scales } : { rowStart, rows, words });
  }
  const all = parts.flatMap((p) => (p.scales ? [p.words, p.scales] : [p.words]));
  let disposed = false;
  return {
    format: m.format,
    rows: m.rows,
    cols: m.cols,
    blocksPerRow: m.format === 'q8_0' || m.format === 'nf4' ? m.blocksPerRow : 0,
    bytes: all.reduce((sum, t) => sum + t.size * 4, 0),
    parts,
    dispose() {
      if (disposed) return;
      disposed = true;
      tf.dispose(all);
    },
    get isDisposed() {
      return disposed;
    },
  };
}

/**
 * Workgroups for `tiles` tiles within maxComputeWorkgroupsPerDimension: along x while they fit, then over y
 * and z. The kernels number a workgroup x + y·X + z·X·Y and leave the few past `tiles` idle.
 */
export function dispatchFor(backend: WebGPUBackend, tiles: number): [number, number, number] {
  const device = backend.device.limits.maxComputeWorkgroupsPerDimension;
  const max =
    packedKernelLimits.maxWorkgroupsPerDimension > 0
      ? Math.min(device, packedKernelLimits.maxWorkgroupsPerDimension)
      : device;
  const x = Math.min(Math.max(tiles, 1), max);
  const rest = Math.ceil(Math.max(tiles, 1) / x);
  const y = Math.min(rest, max);
  const z = Math.ceil(rest / y);
  if (z > max) throw new RangeError(`${tiles} workgroups exceed what one dispatch can run.`);
  return [x, y, z];
}
