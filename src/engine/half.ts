/**
 * float32 → 16-bit floats, rounding to nearest with ties to even as PyTorch's `.half()` / `.bfloat16()`
 * and numpy's `astype(float16)` do. NaN stays NaN (quiet), values past the range become ±Infinity.
 * Whole tensors convert through a Uint32Array view of their bits (hosts are little-endian, as every
 * browser and Node platform is; safetensors.ts assumes the same).
 */

/** IEEE binary16 bits from a float32's bit pattern. */
function float16FromBits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0); // inf, or a quiet NaN
  const e = exponent - 127 + 15; // the exponent re-biased for half precision
  if (e >= 0x1f) return sign | 0x7c00; // too large even before rounding
  if (e <= 0) {
    // A subnormal half (or zero): value = h · 2^-24, so drop 14 − e bits of the 24-bit significand.
    if (e < -10) return sign; // below half the smallest subnormal: rounds to (signed) zero
    const significand = mantissa | 0x800000;
    const shift = 14 - e;
    const rest = significand & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    let h = significand >>> shift;
    if (rest > halfway || (rest === halfway && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  // A carry out of the mantissa steps the exponent, and past the largest finite half lands on inf: both
  // right.
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++;
  return sign | h;
}

/** bfloat16 bits from a float32's bit pattern (its upper half, rounded). */
function bfloat16FromBits(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x40) & 0xffff;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

/** IEEE binary16 bits of one number. */
export function float16Bits(value: number): number {
  scratch[0] = value;
  return float16FromBits(scratchBits[0]);
}

/** The number a binary16 bit pattern stands for. */
export function float16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >>> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

export type HalfKind = 'F16' | 'BF16';

/** The little-endian bytes of `values` as 16-bit floats. */
export function toHalfBytes(values: Float32Array, kind: HalfKind): Uint8Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  const convert = kind === 'F16' ? float16FromBits : bfloat16FromBits;
  for (let i = 0; i < values.length; i++) out[i] = convert(bits[i]);
  return new Uint8Array(out.buffer);
}
