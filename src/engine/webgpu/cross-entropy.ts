/**
 * The cross-entropy of a chunk of lm_head rows as two WGSL kernels, for `chunkLoss` in ../lm-head-loss.ts to
 * call on webgpu. The plain version spends about fifteen dispatches per chunk on log-sum-exp, the gather of
 * the target logits, softmax, the one-hot scatter and the weighting; here:   row statistics (one workgroup
 * per row):  logZ = log Σ exp(logits),  loss = weight · (logZ − logits[target])
 *   d(logits) (one thread per logit):        weight · (exp(logits − logZ) − [v = target])
 * The two vocabulary-wide products (hidden → logits, d(logits) → d(hidden)) stay tfjs's tiled matMul.
 */
import { lmHead, lmHeadBackward, type LlamaModel } from '../model';
import { tf } from '../tf';
import { registerWebGpuKernel, runKernel, type WebGPUProgram } from './program';

const STATS = 'WebtuneCrossEntropyRows';
const GRADIENT = 'WebtuneCrossEntropyGrad';
const ROW_WORKGROUP = 256;
const FLAT_WORKGROUP = 64;

/** Per row of logits [rows, vocab]: [logZ, weight · (logZ − logits[target])]. */
class RowStatsProgram implements WebGPUProgram {
  readonly variableNames = ['logits', 'targets', 'weights'];
  readonly outputShape: number[];
  readonly shaderKey = 'webtuneCrossEntropyRows';
  readonly dispatchLayout = { x: [0, 1] };
  readonly dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number] = [ROW_WORKGROUP, 1, 1];
  readonly uniforms = 'rows : i32, vocab : i32,';

  constructor(rows: number) {
    this.outputShape = [rows, 2];
    this.dispatch = [rows, 1, 1];
  }

  getUserCode(): string {
    const size = ROW_WORKGROUP;
    // Max first, then Σ exp(l − max): exp of the raw logits would overflow.
    return `
      var<workgroup> partial : array<f32, ${size}>;

      fn reduceRow(lane : i32, value : f32, takeMax : bool) -> f32 {
        partial[lane] = value;
        workgroupBarrier();
        for (var stride = ${size / 2}; stride > 0; stride = stride / 2) {
          if (lane < stride) {
            let other = partial[lane + stride];
            partial[lane] = select(partial[lane] + other, max(partial[lane], other), takeMax);
          }
          workgroupBarrier();
        }
        let total = partial[0];
        workgroupBarrier();
        return total;
      }

      fn main(index : i32) {
        let row = index / ${size};
        let lane = i32(localId.x);
        let inside = row < uniforms.rows;
        let offset = row * uniforms.vocab;
        var largest = -3.4e38;
        if (inside) {
          for (var v = lane; v < uniforms.vocab; v = v + ${size}) {
            largest = max(largest, logits[offset + v]);
          }
        }
        let rowMax = reduceRow(lane, largest, true);
        var sum = 0.0;
        if (inside) {
          for (var v = lane; v < uniforms.vocab; v = v + ${size}) {
            sum = sum + exp(logits[offset + v] - rowMax);
          }
        }
        let total = reduceRow(lane, sum, false);
        if (inside && lane == 0) {
          let logZ = rowMax + log(total);
          result[row * 2] = logZ;
          result[row * 2 + 1] = weights[row] * (logZ - logits[offset + targets[row]]);
        }
      }
    `;
  }
}

/** d(loss)/d(logits) = weight · (softmax − one_hot(target)), one thread per logit. */
class LogitGradientProgram implements WebGPUProgram {
  readonly variableNames = ['logits', 'stats', 'targets', 'weights'];
  readonly outputShape: number[];
  readonly shaderKey = 'webtuneCrossEntropyGrad';
  readonly dispatchLayout = { x: [0, 1] };
  readonly dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number] = [FLAT_WORKGROUP, 1, 1];
  readonly size = true;

  constructor(rows: number, vocab: number) {
    this.outputShape = [rows, vocab];
    this.dispatch = [Math.ceil((rows * vocab) / FLAT_WORKGROUP), 1, 1];
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          let vocab = uniforms.outShape[1];
          let row = index / vocab;
          let hit = select(0.0, 1.0, index - row * vocab == targets[row]);
          result[index] = weights[row] * (exp(logits[index] - stats[row * 2]) - hit);
        }
      }
    `;
  }
}

function register(): void {
  registerWebGpuKernel(
    STATS,
    (backend, inputs) => {
      const [rows, vocab] = inputs[0].shape;
      return backend.runWebGPUProgram(new RowStatsProgram(rows), inputs, 'float32', [
        { type: 'int32', data: [rows] },
        { type: 'int32', data: [vocab] },
      ]);
    },
    ['logits', 'targets', 'weights'],
  );
  registerWebGpuKernel(
    GRADIENT,
    (backend, inputs) => {
      const [rows, vocab] = inputs[0].shape;
      return backend.runWebGPUProgram(new LogitGradientProgram(rows, vocab), inputs, 'float32');
    },
    ['logits', 'stats', 'targets', 'weights'],
  );
}

/**
 * weights[i] · −log softmax(lm_head(hidden[i]))[targets[i]] for each row of a chunk of hidden [N, hidden],
 * and d(their sum)/d(hidden) when `withGradient`: what `chunkLoss` in ../lm-head-loss.ts computes, on the
 * webgpu backend (it throws elsewhere). Tensors the size of the chunk's logits are freed as soon as used.
 */
export function lmHeadChunkLossOnGpu(
  model: LlamaModel,
  hidden: tf.Tensor2D,
  targets: Int32Array,
  weights: Float32Array,
  withGradient: boolean,
): { rowLosses: tf.Tensor1D; dHidden?: tf.Tensor2D } {
  if (tf.getBackend() !== 'webgpu')
    throw new Error(
      `lmHeadChunkLossOnGpu runs on the webgpu backend only (tfjs runs on ${tf.getBackend()}).`,
    );
  register();
  const rows = hidden.shape[0];
  const targetIds = tf.tensor1d(targets, 'int32');
  const rowWeights = tf.tensor1d(weights);
  const logits = lmHead(model, hidden);
  const stats = runKernel<tf.Tensor2D>(STATS, { logits, targets: targetIds, weights: rowWeights });
  const rowLosses = tf.tidy(() => tf.reshape(tf.slice(stats, [0, 1], [rows, 1]), [rows]) as tf.Tensor1D);
  let dHidden: tf.Tensor2D | undefined;
  if (withGradient) {
    const dLogits = runKernel<tf.Tensor2D>(GRADIENT, {
      logits,
      stats,
      targets: targetIds,
      weights: rowWeights,
    });
    logits.dispose();
    dHidden = lmHeadBackward(model, dLogits);
    dLogits.dispose();
  }
  tf.dispose([logits, stats, targetIds, rowWeights]);
  return dHidden ? { rowLosses, dHidden } : { rowLosses };
}
