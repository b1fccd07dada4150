/**
 * Log-probabilities over the vocabulary without the vocabulary-wide logits: rows of hidden states go
 * through the lm_head a chunk at a time, and each chunk is reduced to its rows' log-probabilities and,
 * when a gradient is being recorded, to its rows of d(−log p)/d(hidden) before the next chunk starts (the
 * idea of Liger-Kernel's fused linear cross-entropy). Neither pass ever holds [rows, vocab] logits whole.
 *
 * The one primitive every training objective builds on is `lmHeadGroupLogProbs`: the summed
 * log-probability of each group of rows (a group is a sequence's target tokens for DPO and ORPO, the whole
 * batch for SFT, which only needs the total).
 */
import { lmHead, lmHeadBackward, logitRowsPerChunk, type LlamaModel } from './model';
import { recordingGradients, tf } from './tf';
import { lmHeadChunkLossOnGpu } from './webgpu/cross-entropy';
import { fusedKernelsApply } from './webgpu/program';

/**
 * Which sum each row adds to: rows [starts[g], starts[g + 1]) form group g (groups are contiguous and in
 * order, as a batch's sequences are after the shift for next-token prediction).
 */
export interface RowGroups {
  /** starts.length − 1 groups; starts[0] = 0 and the last entry is the number of rows. */
  starts: Int32Array;
}

/**
 * [G] with entry g = Σ over the rows i of group g of
 * weights[i] · log softmax(lm_head(hidden[i]))[targets[i]], for hidden [N, hidden]. The gradient of each
 * row's −log p, (softmax − one_hot) · weight · W, is computed in the forward pass (the logits are at hand
 * there) and saved as [N, hidden]; the backward pass scales row i by the upstream gradient of its group
 * (negated: the saved gradient is that of −log p).
 */
export function lmHeadGroupLogProbs(
  model: LlamaModel,
  hidden: tf.Tensor2D,
  targets: Int32Array,
  weights: Float32Array,
  groups: RowGroups,
): tf.Tensor1D {
  const withGradient = recordingGradients();
  const rows = hidden.shape[0];
  const { starts } = groups;
  const groupCount = starts.length - 1;
  if (starts[0] !== 0 || starts[groupCount] !== rows)
    throw new Error(`The row groups cover rows ${starts[0]}..${starts[groupCount]}, not the ${rows} given.`);
  const chunkRows = logitRowsPerChunk(model);
  const op = tf.customGrad(((input: tf.Tensor2D, save: tf.GradSaveFunc) => {
    // Per group, its running sum of −log p; each chunk adds the part of every group it holds.
    const negated: tf.Scalar[] = Array.from({ length: groupCount }, () => tf.scalar(0));
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
      for (let g = 0; g < groupCount; g++) {
        const from = Math.max(starts[g], start);
        const to = Math.min(starts[g + 1], start + size);
        if (to <= from) continue;
        const part =
          from === start && to === start + size
            ? tf.sum(chunk.rowLosses)
            : tf.tidy(() => tf.sum(tf.slice(chunk.rowLosses, [from - start], [to - from])));
        const total = tf.add(negated[g], part) as tf.Scalar;
        tf.dispose([negated[g], part]);
        negated[g] = total;
      }
      chunk.rowLosses.dispose();
      if (chunk.dHidden) gradients.push(chunk.dHidden);
    }
    const value = tf.tidy(() => tf.neg(tf.stack(negated)) as tf.Tensor1D);
    tf.dispose(negated);
    const dHidden = gradients.length > 1 ? tf.concat(gradients) : gradients[0];
    if (gradients.length > 1) tf.dispose(gradients);
    save(dHidden ? [dHidden] : []);
    return {
      value,
      // No rows: every sum is 0 whatever the input, so its gradient is zero (and nothing was saved).
      gradFunc: (dy: tf.Tensor1D, saved: tf.Tensor[]) => {
        if (!saved.length) return tf.zerosLike(input);
        if (groupCount === 1) return tf.mul(saved[0], tf.neg(tf.reshape(dy, [])));
        const groupOfRow = new Int32Array(rows);
        for (let g = 0; g < groupCount; g++) groupOfRow.fill(g, starts[g], starts[g + 1]);
        return tf.mul(saved[0], tf.reshape(tf.neg(tf.gather(dy, groupOfRow)), [rows, 1]));
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(hidden) as tf.Tensor1D;
}

/**
 * Each row's weighted −log p of a chunk of rows [rows], and d(Σ of them)/d(rows) when asked. Tensors the
 * size of the chunk's logits are freed as soon as they are used, so at most three exist at once.
 */
function chunkLoss(
  model: LlamaModel,
  hidden: tf.Tensor2D,
  targets: Int32Array,
  weights: Float32Array,
  withGradient: boolean,
): { rowLosses: tf.Tensor1D; dHidden?: tf.Tensor2D } {
  // On WebGPU the softmax, the loss and d(logits) are two WGSL kernels rather than ~20 dispatches.
  if (fusedKernelsApply()) return lmHeadChunkLossOnGpu(model, hidden, targets, weights, withGradient);
  const logits = lmHead(model, hidden);
  const [rows, vocab] = logits.shape;
  const logZ = tf.logSumExp(logits, 1);
  const rowLosses = tf.tidy(() => {
    const picked = tf.gather(
      tf.reshape(logits, [rows * vocab]),
      tf.tensor1d(
        targets.map((t, i) => i * vocab + t),
        'int32',
      ),
    );
    return tf.mul(tf.sub(logZ, picked), tf.tensor1d(weights)) as tf.Tensor1D;
  });
  if (!withGradient) return { rowLosses };
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
  return { rowLosses, dHidden };
}
