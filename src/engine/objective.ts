/**
 * The training objective as a part the trainer is given (MLX-LM's trainer takes its loss as an argument the
 * same way): SFT, DPO and ORPO all start from one primitive, the summed log-probability of target tokens
 * through the chunked lm_head (`lmHeadGroupLogProbs`), and differ only in what they make of those sums.
 *
 * A step's loss is Σ over its micro-batches of `lossSum` / Σ of their `count`s: the mean per target token for
 * SFT, per pair for DPO and ORPO. So accumulation, validation and early stopping treat every objective alike.
 */
import { shiftForNextToken, type Batch } from './batch';
import type { LoraAdapter } from './lora';
import { lmHeadGroupLogProbs, type RowGroups } from './lm-head-loss';
import { selectRows } from './loss';
import { hiddenStates, type LlamaModel } from './model';
import type { Rng } from './random';
import { tf } from './tf';

export type ObjectiveName = 'sft' | 'dpo' | 'orpo';

export class TrainingError extends Error {
  override name = 'TrainingError';
}

export interface LossOptions {
  /** Dropout draws its masks from this generator; none: no dropout. */
  rng?: Rng;
  /** Recompute each decoder layer in the backward pass instead of keeping its activations. */
  recompute?: boolean;
}

/** How the log-probs of a batch's target tokens are summed: over the whole batch, or per sequence. */
export type Grouping = 'batch' | 'sequence';

/** What the trainer hands an objective to prepare itself before the first step. */
export interface PrepareContext {
  model: LlamaModel;
  adapter: LoraAdapter;
  /** Every batch the run will see once: the training split's (one epoch) and the validation split's. */
  batches: Batch[];
}

/** An objective's saved state (DPO: its reference log-probs), plain data for a checkpoint. */
export type ObjectiveState = Record<string, number[]>;

export interface Objective {
  readonly name: ObjectiveName;
  readonly grouping: Grouping;
  /** The figures reported beside the loss, each the mean over what `count` counts (TRL's names). */
  readonly metricNames: readonly string[];
  /** What this batch adds to the number the step's loss is a mean over: target tokens, or pairs. */
  count(batch: Batch): number;
  /**
   * The sum of the batch's losses, from `logProbs` (one per group of `grouping`), and the sum of each metric
   * in `metricNames` order (none without metrics).
   */
  lossSum(logProbs: tf.Tensor1D, batch: Batch): { loss: tf.Scalar; metrics?: tf.Tensor1D };
  /** Work done once before the first step, without gradients (DPO: the reference model's log-probs). */
  prepare?(context: PrepareContext): Promise<void>;
  exportState?(): ObjectiveState;
  importState?(state: ObjectiveState): void;
}

/**
 * The summed log-probabilities of the batch's target tokens (weighted by its target mask): [1] for the whole
 * batch, or [batchSize] per sequence. Only the positions that predict a target go through the lm_head: the
 * vocabulary-wide product is the costliest step, and prompt and padding positions contribute nothing.
 */
export function batchLogProbs(
  model: LlamaModel,
  batch: Batch,
  grouping: Grouping,
  options: LossOptions = {},
): tf.Tensor1D {
  const { inputs, keyMask, targets, weights, batchSize } = shiftForNextToken(batch);
  const { rng, recompute } = options;
  const hidden = hiddenStates(model, inputs, batchSize, {
    attentionMask: keyMask,
    dropoutSeed: rng ? () => rng.nextSeed() : undefined,
    recompute,
  });
  const steps = batch.seqLength - 1;
  const rows = Int32Array.from(Array.from(weights.keys()).filter((i) => weights[i] > 0));
  const groups: RowGroups = { starts: new Int32Array(grouping === 'batch' ? 2 : batchSize + 1) };
  if (grouping === 'batch') groups.starts[1] = rows.length;
  else rows.forEach((i) => groups.starts[Math.floor(i / steps) + 1]++);
  for (let g = 1; g < groups.starts.length; g++) groups.starts[g] += groups.starts[g - 1];
  if (rows.length === weights.length) return lmHeadGroupLogProbs(model, hidden, targets, weights, groups);
  return lmHeadGroupLogProbs(
    model,
    selectRows(hidden, rows),
    Int32Array.from(rows, (i) => targets[i]),
    Float32Array.from(rows, (i) => weights[i]),
    groups,
  );
}

/** Supervised fine-tuning: the completion tokens' cross-entropy, a mean over every target token of a step. */
export const SFT: Objective = {
  name: 'sft',
  grouping: 'batch',
  metricNames: [],
  count(batch) {
    let n = 0;
    // The first token of a row is never a target: nothing precedes it.
    for (let b = 0; b < batch.batchSize; b++)
      for (let t = 1; t < batch.seqLength; t++) n += batch.targetMask[b * batch.seqLength + t];
    return n;
  },
  lossSum(logProbs) {
    return { loss: tf.neg(tf.reshape(logProbs, [])) };
  },
};

/** Σ weighted token losses of one batch (a scalar): SFT's loss sum. */
export function batchLossSum(model: LlamaModel, batch: Batch, options: LossOptions = {}): tf.Scalar {
  return SFT.lossSum(batchLogProbs(model, batch, SFT.grouping, options), batch).loss;
}
