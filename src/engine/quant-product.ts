/**
 * x·Wᵀ for a few rows of x straight from the packed bytes, on the host: what decoding one token on the CPU
 * backends needs. Widening a whole matrix to float32 for one row of x writes four bytes a weight, and the
 * wasm backend's XNNPACK then packs that matrix again before it multiplies; here each weight is read once,
 * in its own format, and never written. Blocks are summed as llama.cpp's vec_dot does (the block's
 * integer-coded values times x, then one multiply by the block's scale), so the result is the float32
 * product of the dequantized weights up to the order of the additions.
 */
import { halfTable, NF4_BLOCK, NF4_LEVELS, Q8_0_BLOCK, type PackedMatrix } from './quant';

/** x [n, cols] (row-major) times Wᵀ → [n, rows], for W packed. */
export function packedProductRows(m: PackedMatrix, x: Float32Array, n: number): Float32Array {
  const { rows, cols } = m;
  if (x.length !== n * cols)
    throw new RangeError(`packedProductRows: x holds ${x.length} values, not ${n} rows of ${cols}.`);
  const out = new Float32Array(n * rows);
  for (let t = 0; t < n; t++) {
    const xt = x.subarray(t * cols, (t + 1) * cols);
    const o = t * rows;
    if (m.format === 'q8_0') {
      const table = halfTable();
      const { quants, scales, blocksPerRow } = m;
      const stride = blocksPerRow * Q8_0_BLOCK;
      const whole = Math.floor(cols / Q8_0_BLOCK);
      for (let r = 0; r < rows; r++) {
        let acc = 0;
        let q = r * stride;
        for (let b = 0; b < blocksPerRow; b++, q += Q8_0_BLOCK) {
          const first = b * Q8_0_BLOCK;
          let sum = 0;
          if (b < whole)
            for (let c = 0; c < Q8_0_BLOCK; c += 4)
              sum +=
                quants[q + c] * xt[first + c] +
                quants[q + c + 1] * xt[first + c + 1] +
                quants[q + c + 2] * xt[first + c + 2] +
                quants[q + c + 3] * xt[first + c + 3];
          else for (let c = first; c < cols; c++) sum += quants[q + c - first] * xt[c];
          acc += table[scales[r * blocksPerRow + b]] * sum;
        }
        out[o + r] = acc;
      }
    } else if (m.format === 'nf4') {
      const { codes, absmax, blocksPerRow } = m;
      const stride = (blocksPerRow * NF4_BLOCK) >> 1;
      for (let r = 0; r < rows; r++) {
        let acc = 0;
        for (let b = 0; b < blocksPerRow; b++) {
          const first = b * NF4_BLOCK;
          const end = Math.min(cols, first + NF4_BLOCK);
          let j = r * stride + (first >> 1);
          let sum = 0;
          let c = first;
          for (; c + 1 < end; c += 2, j++) {
            const byte = codes[j];
            sum += NF4_LEVELS[byte >> 4] * xt[c] + NF4_LEVELS[byte & 15] * xt[c + 1];
          }
          if (c < end) sum += NF4_LEVELS[codes[j] >> 4] * xt[c];
          acc += absmax[r * blocksPerRow + b] * sum;
        }
        out[o + r] = acc;
      }
    } else {
      const table = m.format === 'f16' ? halfTable() : null;
      const word = new Uint32Array(1);
      const asFloat = new Float32Array(word.buffer);
      for (let r = 0; r < rows; r++) {
        let acc = 0;
        const from = r * cols;
        if (table) for (let c = 0; c < cols; c++) acc += table[m.bits[from + c]] * xt[c];
        else
          for (let c = 0; c < cols; c++) {
            word[0] = m.bits[from + c] << 16;
            acc += asFloat[0] * xt[c];
          }
        out[o + r] = acc;
      }
    }
  }
  return out;
}
