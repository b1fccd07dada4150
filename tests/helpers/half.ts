/** 16-bit helpers the tests need beside src/engine/half.ts. */
import { float16Bits, float16ToNumber, toHalfBytes } from '../../src/engine/half';

/** bfloat16 bits of one number (rounded to nearest even). */
export function bfloat16Bits(value: number): number {
  const bytes = toHalfBytes(Float32Array.of(value), 'BF16');
  return bytes[0] | (bytes[1] << 8);
}

/** Every value rounded through float16 and back: what a reader of an f16 file sees. */
export function roundToFloat16(values: Float32Array): Float32Array {
  return Float32Array.from(values, (v) => float16ToNumber(float16Bits(v)));
}
