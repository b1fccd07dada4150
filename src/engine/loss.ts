/**
 * Next-token cross-entropy with per-token weights (the completion mask). The gradient is written by
 * hand, softmax − one_hot, because the generic one goes through a gather gradient
 * (UnsortedSegmentSum) that the wasm backend lacks, and because it saves a copy of the logits.
 */
import { tf } from './tf';

/** Σ weights[i] · −log softmax(logits[i])[targets[i]] over rows i of logits [N, vocab]. */
export function weightedCrossEntropySum(logits: tf.Tensor2D, targets: Int32Array, weights: Float32Array): tf.Scalar {
  const [rows, vocab] = logits.shape;
  const flatIndex = tf.tensor1d(targets.map((t, i) => i * vocab + t), 'int32');
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
        // (tfjs-wasm's OneHot kernel gives wrong values for float32 output, so compare against a range instead.)
        const oneHot = tf.cast(tf.equal(tf.tensor2d(targets, [rows, 1], 'int32'), tf.range(0, vocab, 1, 'int32')), 'float32');
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
    const flatIndex = tf.tensor1d(targets.map((t, i) => i * vocab + t), 'int32');
    const picked = tf.gather(tf.reshape(logits, [rows * vocab]), flatIndex);
    return tf.sub(picked, tf.logSumExp(logits, 1)) as tf.Tensor1D;
  });
}
