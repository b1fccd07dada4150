/**
 * What holding the base in fewer bits costs, measured on a text: how far each next-token log-probability
 * moves from the 32-bit model's, and the KL divergence of the whole next-token distribution,
 * KL(p₃₂ ‖ p_q) = Σ_v p₃₂(v) · (log p₃₂(v) − log p_q(v)), averaged over the text's positions.
 */
import { hiddenStates, lmHead, logitRowsPerChunk, type LlamaModel } from './model';
import { tf } from './tf';

/** log softmax of every next-token distribution of `tokens` (positions 0 … n−2), rows of [vocab]. */
export async function nextTokenDistributions(model: LlamaModel, tokens: number[]): Promise<Float32Array[]> {
  if (tokens.length < 2) throw new Error('Measuring needs at least two tokens (the first is only context).');
  const vocab = model.args.vocabSize;
  const hidden = tf.tidy(() => hiddenStates(model, Int32Array.from(tokens.slice(0, -1)), 1));
  const rows: Float32Array[] = [];
  try {
    const positions = tokens.length - 1;
    const chunk = Math.min(positions, logitRowsPerChunk(model));
    for (let start = 0; start < positions; start += chunk) {
      const size = Math.min(chunk, positions - start);
      const logProbs = tf.tidy(() => tf.logSoftmax(lmHead(model, tf.slice(hidden, [start, 0], [size, -1]))));
      const data = (await logProbs.data()) as Float32Array;
      logProbs.dispose();
      for (let r = 0; r < size; r++) rows.push(data.slice(r * vocab, (r + 1) * vocab));
    }
  } finally {
    hidden.dispose();
  }
  return rows;
}

export interface QuantizationCost {
  /** Mean over positions of |log p₃₂(next token) − log p_q(next token)|. */
  meanAbsLogprobDiff: number;
  /** Mean and largest KL(p₃₂ ‖ p_q) over positions, in nats. */
  meanKl: number;
  maxKl: number;
  positions: number;
}

/** The cost from the 32-bit model's distributions (`wide`) to the narrower one's (`narrow`) on `tokens`. */
export function quantizationCost(
  wide: Float32Array[],
  narrow: Float32Array[],
  tokens: number[],
): QuantizationCost {
  if (wide.length !== narrow.length || wide.length !== tokens.length - 1)
    throw new RangeError('quantizationCost: both models must be measured on the same text.');
  let absDiff = 0;
  let klSum = 0;
  let maxKl = 0;
  wide.forEach((p, i) => {
    const q = narrow[i];
    const next = tokens[i + 1];
    absDiff += Math.abs(p[next] - q[next]);
    let kl = 0;
    for (let v = 0; v < p.length; v++) kl += Math.exp(p[v]) * (p[v] - q[v]);
    // Rounding can make a tiny divergence come out a hair below zero.
    kl = Math.max(0, kl);
    klSum += kl;
    maxKl = Math.max(maxKl, kl);
  });
  const n = wide.length;
  return { meanAbsLogprobDiff: absDiff / n, meanKl: klSum / n, maxKl, positions: n };
}
