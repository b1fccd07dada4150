/**
 * Pieces of the next-token loss shared by scoring and training: per-token log-probabilities, and a row
 * selection whose gradient tfjs-wasm can run (the weighted cross-entropy itself is in lm-head-loss.ts).
 */
import { tf } from './tf';

/** log p(targets[i] | row i) for logits [N, vocab], without gradients. */
export function tokenLogProbs(logits: tf.Tensor2D, targets: Int32Array): tf.Tensor1D {
  return tf.tidy(() => {
    const [rows, vocab] = logits.shape;
    const flatIndex = tf.tensor1d(
      targets.map((t, i) => i * vocab + t),
      'int32',
    );
    const picked = tf.gather(tf.reshape(logits, [rows * vocab]), flatIndex);
    return tf.sub(picked, tf.logSumExp(logits, 1)) as tf.Tensor1D;
  });
}

/**
 * Rows `rows` of x [N, D] (a gather), with a gradient that scatters back: the generic gather
 * gradient needs UnsortedSegmentSum, which tfjs-wasm lacks.
 */
export function selectRows(x: tf.Tensor2D, rows: Int32Array): tf.Tensor2D {
  const [n, width] = x.shape;
  const select = tf.customGrad(((input: tf.Tensor2D, save: tf.GradSaveFunc) => {
    save([]);
    return {
      value: tf.gather(input, tf.tensor1d(rows, 'int32')),
      gradFunc: (dy: tf.Tensor2D) =>
        tf.scatterND(tf.tensor2d(rows, [rows.length, 1], 'int32'), dy, [n, width]),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return select(x) as tf.Tensor2D;
}
