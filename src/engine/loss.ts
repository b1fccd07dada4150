/**
 * Next-token cross-entropy with per-token weights (the completion mask). The gradient is written by
 * hand, softmax − one_hot, because the generic one goes through a gather gradient
 * (UnsortedSegmentSum) that the wasm backend lacks, and because it saves a copy of the logits.
 */
import { tf } from './tf';

/** Σ weights[i] · −log softmax(logits[i])[targets[i]] over rows i of logits [N, vocab]. */
export function weightedCrossEntropySum(logits: tf.Tensor2D, targets: Int32Array, weights: Float32Array): tf.Scalar {
  const [rows, vocab] = logits.shape;
  const targetTensor = tf.tensor1d(targets, 'int32');
  const weightTensor = tf.tensor1d(weights);
  const flatIndex = tf.tensor1d(targets.map((t, i) => i * vocab + t), 'int32');
  const loss = tf.customGrad((x: tf.Tensor, save: tf.GradSaveFunc) => {
    const logZ = tf.logSumExp(x, 1);
    const picked = tf.gather(tf.reshape(x, [rows * vocab]), flatIndex);
    save([x, logZ]);
    return {
      value: tf.sum(tf.mul(tf.sub(logZ, picked), weightTensor)),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedLogits, savedLogZ] = saved;
        const probs = tf.exp(tf.sub(savedLogits, tf.expandDims(savedLogZ, 1)));
        const oneHot = tf.oneHot(targetTensor, vocab, 1, 0, 'float32');
        return tf.mul(tf.mul(tf.sub(probs, oneHot), tf.expandDims(weightTensor, 1)), dy);
      },
    };
  });
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
