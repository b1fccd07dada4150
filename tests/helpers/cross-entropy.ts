/** The engine's grouped log-prob primitive summed as one group: the old fused cross-entropy's sum. */
import { lmHeadGroupLogProbs } from '../../src/engine/lm-head-loss';
import type { LlamaModel } from '../../src/engine/model';
import { tf } from '../../src/engine/tf';

/** Σ weights[i] · −log p(targets[i]) over all rows: the negated log-prob of the rows as one group. */
export function crossEntropySum(
  model: LlamaModel,
  hidden: tf.Tensor2D,
  targets: Int32Array,
  weights: Float32Array,
): tf.Scalar {
  const groups = { starts: Int32Array.from([0, hidden.shape[0]]) };
  return tf.tidy(() => tf.neg(tf.sum(lmHeadGroupLogProbs(model, hidden, targets, weights, groups))));
}
