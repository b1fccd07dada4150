/**
 * Next-token cross-entropy with per-token weights (the completion mask). The gradient is written by
 * hand, softmax − one_hot, because the generic one goes through a gather gradient
 * (UnsortedSegmentSum) that the wasm backend lacks, and because it saves a copy of the logits.
 */
import { tf } from './tf';

/** Σ weights[i] · −log softmax(logits[i])[targets[i]] over rows i of logits [N, vocab]. */
export function weightedCrossEntropySum(
  logits: tf.Tensor2D,
  targets: Int32Array,
  weights: Float32Array,
): tf.Scalar {
  const [rows, vocab] = logits.shape;
  const flatIndex = tf.tensor1d(
    targets.map((t, i) => i * vocab + t),
    'int32',
  );
  const loss = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
    const logZ = tf.logSumExp(x, 1);
    const picked = tf.gather(tf.reshape(x, [rows * vocab]), flatIndex);
    save([x, logZ]);
    return {
      value: tf.sum(tf.mul(tf.sub(logZ, picked), tf.tensor1d(weights))),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedLogits, savedLogZ] = saved;
        const probs = tf.exp(tf.sub(savedLogits, tf.expandDims(savedLogZ, 1)));
        // Tensors made in the forward scope are gone by now (tfjs tidies it), so rebuild from host arrays.
        // A scatter builds the one-hot: tfjs-wasm's OneHot gives wrong float32 values, and comparing
        // against a range costs a full pass over [rows, vocab].
        const positions = new Int32Array(rows * 2);
        targets.forEach((t, i) => positions.set([i, t], 2 * i));
        const oneHot = tf.scatterND(tf.tensor2d(positions, [rows, 2], 'int32'), tf.ones([rows]), [
          rows,
          vocab,
        ]);
        return tf.mul(tf.mul(tf.sub(probs, oneHot), tf.expandDims(tf.tensor1d(weights), 1)), dy);
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return loss(logits) as tf.Scalar;
}

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
