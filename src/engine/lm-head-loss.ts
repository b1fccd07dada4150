/**
 * The training loss over the vocabulary without the vocabulary-wide logits: rows of hidden states go
 * through the lm_head a chunk at a time, and each chunk is reduced to its loss and, when a gradient is
 * being recorded, to its rows of d(loss)/d(hidden) before the next chunk starts (the idea of
 * Liger-Kernel's fused linear cross-entropy). Neither pass ever holds [rows, vocab] logits whole.
 */
import { lmHead, lmHeadBackward, logitRowsPerChunk, type LlamaModel } from './model';
import { recordingGradients, tf } from './tf';
import { lmHeadChunkLossOnGpu } from './webgpu/cross-entropy';
import { fusedKernelsApply } from './webgpu/program';

/**
 * Σ weights[i] · −log softmax(lm_head(hidden[i]))[targets[i]] over the rows of hidden [N, hidden].
 * The gradient, (softmax − one_hot) · weight · W per row, is computed in the forward pass (the logits are
 * at hand there) and saved as [N, hidden]; the backward pass only scales it.
 */
export function lmHeadCrossEntropySum(
  model: LlamaModel,
  hidden: tf.Tensor2D,
  targets: Int32Array,
  weights: Float32Array,
): tf.Scalar {
  const withGradient = recordingGradients();
  const rows = hidden.shape[0];
  const chunkRows = logitRowsPerChunk(model);
  const op = tf.customGrad(((input: tf.Tensor2D, save: tf.GradSaveFunc) => {
    let loss: tf.Scalar = tf.scalar(0);
    const gradients: tf.Tensor2D[] = [];
    for (let start = 0; start < rows; start += chunkRows) {
      const size = Math.min(chunkRows, rows - start);
      const chunk = tf.tidy(() =>
        chunkLoss(
          model,
          tf.slice(input, [start, 0], [size, -1]),
          targets.subarray(start, start + size),
          weights.subarray(start, start + size),
          withGradient,
        ),
      );
      const total = tf.add(loss, chunk.loss) as tf.Scalar;
      tf.dispose([loss, chunk.loss]);
      loss = total;
      if (chunk.dHidden) gradients.push(chunk.dHidden);
    }
    const dHidden = gradients.length > 1 ? tf.concat(gradients) : gradients[0];
    save(dHidden ? [dHidden] : []);
    return {
      value: loss,
      // No rows: the loss is 0 whatever the input, so its gradient is zero (and nothing was saved).
      gradFunc: (dy: tf.Scalar, saved: tf.Tensor[]) =>
        saved.length ? tf.mul(saved[0], dy) : tf.zerosLike(input),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(hidden) as tf.Scalar;
}

/**
 * Loss of one chunk of rows, and d(loss)/d(rows) when asked. Tensors the size of the chunk's logits are
 * freed as soon as they are used, so at most three exist at once.
 */
function chunkLoss(
  model: LlamaModel,
  hidden: tf.Tensor2D,
  targets: Int32Array,
  weights: Float32Array,
  withGradient: boolean,
): { loss: tf.Scalar; dHidden?: tf.Tensor2D } {
  // On WebGPU the softmax, the loss and d(logits) are two WGSL kernels rather than ~20 dispatches.
  if (fusedKernelsApply()) return lmHeadChunkLossOnGpu(model, hidden, targets, weights, withGradient);
  const logits = lmHead(model, hidden);
  const [rows, vocab] = logits.shape;
  const logZ = tf.logSumExp(logits, 1);
  const loss = tf.tidy(() => {
    const picked = tf.gather(
      tf.reshape(logits, [rows * vocab]),
      tf.tensor1d(
        targets.map((t, i) => i * vocab + t),
        'int32',
      ),
    );
    return tf.sum(tf.mul(tf.sub(logZ, picked), tf.tensor1d(weights))) as tf.Scalar;
  });
  if (!withGradient) return { loss };
  // d(loss)/d(logits) = weight · (softmax − one_hot(target)), row by row.
  const probs = tf.tidy(() => tf.exp(tf.sub(logits, tf.expandDims(logZ, 1))));
  logits.dispose();
  const scaled = tf.mul(probs, tf.tensor2d(weights, [rows, 1]));
  probs.dispose();
  // A scatter places the one-hot terms: tfjs-wasm's OneHot gives wrong float32 values.
  const positions = new Int32Array(rows * 2);
  targets.forEach((t, i) => positions.set([i, t], 2 * i));
  const hits = tf.scatterND(tf.tensor2d(positions, [rows, 2], 'int32'), tf.tensor1d(weights), [rows, vocab]);
  const dLogits = tf.sub(scaled, hits) as tf.Tensor2D;
  tf.dispose([scaled, hits]);
  const dHidden = lmHeadBackward(model, dLogits);
  dLogits.dispose();
  return { loss, dHidden };
}
