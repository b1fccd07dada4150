/**
 * The storage formats a frozen matrix can be held in, defined exactly so that any tool can reproduce them.
 * A matrix is W [rows, cols] as PyTorch's Linear holds it ([out, in]); blocks run along each row, over the
 * input dimension, and the last block of a row is short when cols is not a multiple of the block size.
 *
 * - `bf16` / `f16`: the checkpoint's own 16-bit values, kept as they are (widening them is exact).
 * - `q8_0`, as llama.cpp's quantize_row_q8_0_ref: blocks of 32; d = max|x| / 127 (float32), stored as f16;
 *   q = round(x · (1/d)) as int8, halves away from zero (C's roundf), 0 when d is 0; value = f16(d) · q.
 * - `nf4`, as bitsandbytes' blockwise NF4: blocks of 64; absmax = max|x| (float32); each x · (1/absmax)
 *   becomes the nearest of the 16 NF4 levels (the midpoints between levels decide, a value on a midpoint
 *   going to the lower level, as bitsandbytes' comparison tree does); two codes per byte, the first value
 *   in the high nibble; value = level · absmax. bitsandbytes blocks the flattened tensor; with cols a
 *   multiple of 64 (every model in the catalog) its blocks and these are the same. A block of zeros
 *   (absmax 0) is all code 7, as bitsandbytes' torch backend has it (its CUDA kernel's 0 · (1/0) is NaN
 *   there: code 0, which decodes to -0.0).
 *
 * Quantized values are padded to whole blocks (zeros), so a row of q8_0 is `blocksPerRow` · 32 int8s and a
 * row of nf4 `blocksPerRow` · 32 bytes; the packed arrays are what a GPU buffer holds, 4 bytes to a u32.
 */
import { float16Bits, float16ToNumber } from './half';

export type QuantFormat = 'q8_0' | 'nf4';
export type HalfFormat = 'bf16' | 'f16';
/** How a frozen matrix is held: 32-bit floats, 16-bit halves, or blocks of 8 or 4 bits. */
export type WeightFormat = 'f32' | HalfFormat | QuantFormat;

export const Q8_0_BLOCK = 32;
export const NF4_BLOCK = 64;

/** bitsandbytes' NF4 levels (functional.py's `get_4bit_type('nf4')`), codes 0–15. */
export const NF4_LEVELS = Float32Array.from([
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
  -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
  0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
]);

/** Midpoints between neighbouring NF4 levels (float32): the thresholds a normalized value is sorted by. */
const NF4_MIDPOINTS = Float32Array.from({ length: 15 }, (_, i) =>
  Math.fround((NF4_LEVELS[i] + NF4_LEVELS[i + 1]) / 2),
);

export interface HalfMatrix {
  format: HalfFormat;
  rows: number;
  cols: number;
  /** rows · cols 16-bit patterns, row-major. */
  bits: Uint16Array;
}

export interface Q8_0Matrix {
  format: 'q8_0';
  rows: number;
  cols: number;
  blocksPerRow: number;
  /** f16 bit patterns of d, [rows, blocksPerRow]. */
  scales: Uint16Array;
  /** [rows, blocksPerRow · 32], zero past cols. */
  quants: Int8Array;
}

export interface Nf4Matrix {
  format: 'nf4';
  rows: number;
  cols: number;
  blocksPerRow: number;
  /** [rows, blocksPerRow]. */
  absmax: Float32Array;
  /** [rows, blocksPerRow · 32] bytes: value 2j in the high nibble of byte j, 2j + 1 in the low. */
  codes: Uint8Array;
}

export type PackedMatrix = HalfMatrix | Q8_0Matrix | Nf4Matrix;

const blocks = (cols: number, size: number) => Math.ceil(cols / size);

/** C's roundf: halves away from zero. */
const roundAway = (x: number) => (x < 0 ? -Math.floor(-x + 0.5) : Math.floor(x + 0.5));

/** `values` [rows, cols] (row-major) in q8_0. */
export function quantizeQ8_0(values: Float32Array, rows: number, cols: number): Q8_0Matrix {
  checkLength(values, rows, cols);
  const blocksPerRow = blocks(cols, Q8_0_BLOCK);
  const scales = new Uint16Array(rows * blocksPerRow);
  const quants = new Int8Array(rows * blocksPerRow * Q8_0_BLOCK);
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < blocksPerRow; b++) {
      const start = r * cols + b * Q8_0_BLOCK;
      const end = r * cols + Math.min(cols, (b + 1) * Q8_0_BLOCK);
      let amax = 0;
      for (let i = start; i < end; i++) amax = Math.max(amax, Math.abs(values[i]));
      const d = Math.fround(amax / 127);
      const id = d ? Math.fround(1 / d) : 0;
      const block = r * blocksPerRow + b;
      scales[block] = float16Bits(d);
      const out = block * Q8_0_BLOCK;
      for (let i = start; i < end; i++) quants[out + i - start] = roundAway(Math.fround(values[i] * id));
    }
  }
  return { format: 'q8_0', rows, cols, blocksPerRow, scales, quants };
}

/** `values` [rows, cols] (row-major) in nf4. */
export function quantizeNf4(values: Float32Array, rows: number, cols: number): Nf4Matrix {
  checkLength(values, rows, cols);
  const blocksPerRow = blocks(cols, NF4_BLOCK);
  const absmax = new Float32Array(rows * blocksPerRow);
  const codes = new Uint8Array((rows * blocksPerRow * NF4_BLOCK) / 2);
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < blocksPerRow; b++) {
      const start = r * cols + b * NF4_BLOCK;
      const end = r * cols + Math.min(cols, (b + 1) * NF4_BLOCK);
      let amax = 0;
      for (let i = start; i < end; i++) amax = Math.max(amax, Math.abs(values[i]));
      const block = r * blocksPerRow + b;
      absmax[block] = amax;
      const scale = amax ? Math.fround(1 / amax) : 0;
      const out = block * NF4_BLOCK;
      for (let i = start; i < end; i++) {
        const code = nf4Code(Math.fround(values[i] * scale));
        const j = out + i - start;
        codes[j >> 1] |= j & 1 ? code : code << 4;
      }
      // Padding past cols is a zero quantized like the block's own zeros: code 7, the level 0, except
      // where 1/absmax overflows to inf (absmax below ~2.9e-39) and 0 · inf is NaN, code 0, as in
      // bitsandbytes' kernel.
      const pad = nf4Code(0 * scale);
      for (let j = out + end - start; j < out + NF4_BLOCK; j++) codes[j >> 1] |= j & 1 ? pad : pad << 4;
    }
  }
  return { format: 'nf4', rows, cols, blocksPerRow, absmax, codes };
}

/** The NF4 code of a value normalized to [-1, 1]. */
export function nf4Code(x: number): number {
  let code = 0;
  while (code < 15 && x > NF4_MIDPOINTS[code]) code++;
  return code;
}

/** `values` [rows, cols] as 16-bit halves (rounded to nearest even, as PyTorch's .bfloat16() / .half()). */
export function toHalfMatrix(
  values: Float32Array,
  rows: number,
  cols: number,
  format: HalfFormat,
): HalfMatrix {
  checkLength(values, rows, cols);
  const bits = new Uint16Array(values.length);
  const scratch = new Float32Array(1);
  const scratchBits = new Uint32Array(scratch.buffer);
  for (let i = 0; i < values.length; i++) {
    if (format === 'f16') bits[i] = float16Bits(values[i]);
    else {
      scratch[0] = values[i];
      const b = scratchBits[0];
      bits[i] =
        (b & 0x7fffffff) > 0x7f800000
          ? ((b >>> 16) | 0x40) & 0xffff
          : ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
    }
  }
  return { format, rows, cols, bits };
}

let f16Table: Float32Array | null = null;
/** f16 bit pattern → float32 value, by table (65,536 entries, 256 KB, built once). */
export function halfTable(): Float32Array {
  f16Table ??= Float32Array.from({ length: 65536 }, (_, h) => float16ToNumber(h));
  return f16Table;
}

/**
 * Rows [start, start + count) of `m` widened to float32, row-major [count, cols], into `out` when given (a
 * buffer reused between calls) or a new array.
 */
export function dequantizeRows(
  m: PackedMatrix,
  start = 0,
  count = m.rows - start,
  out = new Float32Array(count * m.cols),
): Float32Array {
  const { cols } = m;
  if (start < 0 || count < 0 || start + count > m.rows || out.length < count * cols)
    throw new RangeError(`dequantizeRows: rows ${start}–${start + count} of ${m.rows} into ${out.length}.`);
  if (m.format === 'q8_0') {
    const table = halfTable();
    const stride = m.blocksPerRow * Q8_0_BLOCK;
    for (let r = 0; r < count; r++) {
      const row = start + r;
      // Block by block: one scale looked up per 32 values.
      for (let b = 0; b < m.blocksPerRow; b++) {
        const d = table[m.scales[row * m.blocksPerRow + b]];
        const first = b * Q8_0_BLOCK;
        const end = Math.min(cols, first + Q8_0_BLOCK);
        const from = row * stride;
        const to = r * cols;
        for (let c = first; c < end; c++) out[to + c] = d * m.quants[from + c];
      }
    }
  } else if (m.format === 'nf4') {
    const stride = m.blocksPerRow * NF4_BLOCK;
    for (let r = 0; r < count; r++) {
      const row = start + r;
      for (let b = 0; b < m.blocksPerRow; b++) {
        const absmax = m.absmax[row * m.blocksPerRow + b];
        const first = b * NF4_BLOCK;
        const end = Math.min(cols, first + NF4_BLOCK);
        for (let c = first; c < end; c++) {
          const j = row * stride + c;
          const byte = m.codes[j >> 1];
          out[r * cols + c] = NF4_LEVELS[j & 1 ? byte & 15 : byte >> 4] * absmax;
        }
      }
    }
  } else if (m.format === 'bf16') {
    const bits = new Uint32Array(out.buffer, out.byteOffset, count * cols);
    const from = start * cols;
    for (let i = 0; i < count * cols; i++) bits[i] = m.bits[from + i] << 16;
  } else {
    const table = halfTable();
    const from = start * cols;
    for (let i = 0; i < count * cols; i++) out[i] = table[m.bits[from + i]];
  }
  return out;
}

/** Bytes the packed matrix holds (what a weight costs in this format, padding included). */
export function packedBytes(m: PackedMatrix): number {
  if (m.format === 'q8_0') return m.scales.byteLength + m.quants.byteLength;
  if (m.format === 'nf4') return m.absmax.byteLength + m.codes.byteLength;
  return m.bits.byteLength;
}

/** Bytes per weight of each format for a row of `cols` values (padding included). */
export function bytesPerWeight(format: WeightFormat, cols: number): number {
  if (format === 'f32') return 4;
  if (format === 'bf16' || format === 'f16') return 2;
  const size = format === 'q8_0' ? Q8_0_BLOCK : NF4_BLOCK;
  const perBlock = format === 'q8_0' ? 2 + Q8_0_BLOCK : 4 + NF4_BLOCK / 2;
  return (blocks(cols, size) * perBlock) / cols;
}

/** `values` [rows, cols] in `format` (16-bit formats round the values; the checkpoint's halves need not). */
export function pack(
  values: Float32Array,
  rows: number,
  cols: number,
  format: Exclude<WeightFormat, 'f32'>,
): PackedMatrix {
  if (format === 'q8_0') return quantizeQ8_0(values, rows, cols);
  if (format === 'nf4') return quantizeNf4(values, rows, cols);
  return toHalfMatrix(values, rows, cols, format);
}

/** Rows of several packed matrices of one format and width, one after another (the fused q/k/v). */
export function concatRows(parts: PackedMatrix[]): PackedMatrix {
  const [first] = parts;
  const rows = parts.reduce((n, p) => n + p.rows, 0);
  if (parts.some((p) => p.format !== first.format || p.cols !== first.cols))
    throw new RangeError('concatRows: the parts differ in format or width.');
  const join = <T extends Uint16Array | Int8Array | Uint8Array | Float32Array>(
    arrays: T[],
    make: (n: number) => T,
  ): T => {
    const out = make(arrays.reduce((n, a) => n + a.length, 0));
    let at = 0;
    for (const a of arrays) {
      out.set(a as never, at);
      at += a.length;
    }
    return out;
  };
  if (first.format === 'q8_0') {
    const ps = parts as Q8_0Matrix[];
    return {
      ...first,
      rows,
      scales: join(
        ps.map((p) => p.scales),
        (n) => new Uint16Array(n),
      ),
      quants: join(
        ps.map((p) => p.quants),
        (n) => new Int8Array(n),
      ),
    };
  }
  if (first.format === 'nf4') {
    const ps = parts as Nf4Matrix[];
    return {
      ...first,
      rows,
      absmax: join(
        ps.map((p) => p.absmax),
        (n) => new Float32Array(n),
      ),
      codes: join(
        ps.map((p) => p.codes),
        (n) => new Uint8Array(n),
      ),
    };
  }
  return {
    ...first,
    rows,
    bits: join(
      (parts as HalfMatrix[]).map((p) => p.bits),
      (n) => new Uint16Array(n),
    ),
  };
}

function checkLength(values: Float32Array, rows: number, cols: number): void {
  if (values.length !== rows * cols)
    throw new RangeError(`A [${rows}, ${cols}] matrix takes ${rows * cols} values, not ${values.length}.`);
}
