/**
 * Preference objectives over pairs of answers to one prompt (a PreferenceBatch: chosen rows, then rejected).
 *
 * DPO (Rafailov et al., 2023), per pair:
 *   loss = −log σ(β · [(log π(y⁺|x) − log π_ref(y⁺|x)) − (log π(y⁻|x) − log π_ref(y⁻|x))])
 * with sequence log-probs summed over the completion tokens and π_ref the same model with the adapter off,
 * computed once before the first step and kept with the run's state.
 *
 * ORPO (Hong et al., 2024), per pair, no reference model:
 *   loss = −ȳ⁺ − λ · log σ(log-odds(ȳ⁺) − log-odds(ȳ⁻)),   log-odds(ȳ) = ȳ − log(1 − e^ȳ)
 * with ȳ a completion's mean per-token log-prob (the paper's length-normalised likelihood; −ȳ⁺ is its
 * L_SFT). log(1 − e^ȳ) is taken as log(−expm1(ȳ)), exact where e^ȳ is close to 1 (a confident model).
 *
 * Both report TRL's figures, each a mean over pairs: rewards/chosen and rewards/rejected (DPO: β times the
 * log-ratio to the reference; ORPO: λ · ȳ, as TRL's ORPOTrainer), rewards/margins, rewards/accuracies (the
 * share of pairs whose chosen reward is the higher); ORPO adds nll_loss (the mean −ȳ⁺), log_odds_ratio (the
 * mean log σ term) and log_odds_chosen (the mean log-odds difference).
 */
import { isPreferenceBatch, targetsPerRow, type Batch, type PreferenceBatch } from './batch';
import {
  batchLogProbs,
  SFT,
  TrainingError,
  type Objective,
  type ObjectiveName,
  type ObjectiveState,
  type PrepareContext,
} from './objective';
import { tf } from './tf';

export const DEFAULT_DPO_BETA = 0.1;
export const DEFAULT_ORPO_LAMBDA = 0.1;

const REWARD_METRICS = ['rewards/chosen', 'rewards/rejected', 'rewards/margins', 'rewards/accuracies'];

/** The batch as pairs, refusing a batch that is not one or a pair with an answer that has no tokens left. */
function pairsOf(batch: Batch): PreferenceBatch {
  if (!isPreferenceBatch(batch) || batch.batchSize !== 2 * batch.pairIds.length)
    throw new TrainingError(
      'A preference objective (DPO, ORPO) needs batches of answer pairs (chosen and rejected answers to ' +
        'the same prompts); this run was given single examples. Choose SFT for them, or a pairs dataset.',
    );
  const counts = targetsPerRow(batch);
  const pairs = batch.pairIds.length;
  for (let p = 0; p < 2 * pairs; p++)
    if (counts[p] === 0)
      throw new TrainingError(
        `Pair ${batch.pairIds[p % pairs]}: its ${p < pairs ? 'chosen' : 'rejected'} answer has no tokens ` +
          'left to score (it is empty, or the prompt fills the max length). Raise the max length, shorten ' +
          'the prompt, or remove the pair.',
      );
  return batch;
}

/**
 * log σ(x) = −softplus(−x). Not tf.logSigmoid: its gradient reads its input from the forward pass's scope,
 * which tf.variableGrads has freed by the time the backward pass runs.
 */
function logSigmoid(x: tf.Tensor1D): tf.Tensor1D {
  return tf.neg(tf.softplus(tf.neg(x)));
}

/** [chosen, rejected] halves of a [2P] tensor. */
function halves(values: tf.Tensor1D, pairs: number): [tf.Tensor1D, tf.Tensor1D] {
  return [tf.slice(values, [0], [pairs]), tf.slice(values, [pairs], [pairs])];
}

/** The sums of the four reward figures over the pairs, from each pair's chosen and rejected reward. */
function rewardSums(chosen: tf.Tensor1D, rejected: tf.Tensor1D): tf.Tensor1D[] {
  return [
    tf.sum(chosen),
    tf.sum(rejected),
    tf.sum(tf.sub(chosen, rejected)),
    tf.sum(tf.cast(tf.greater(chosen, rejected), 'float32')),
  ] as tf.Tensor1D[];
}

export class Dpo implements Objective {
  readonly name = 'dpo';
  readonly grouping = 'sequence';
  readonly metricNames = REWARD_METRICS;
  /** log π_ref of each pair's [chosen, rejected] answer, by pair id. */
  private readonly reference = new Map<number, [number, number]>();

  constructor(readonly beta = DEFAULT_DPO_BETA) {
    if (!(beta > 0)) throw new RangeError(`DPO's beta must be above 0, got ${beta}.`);
  }

  count(batch: Batch): number {
    return pairsOf(batch).pairIds.length;
  }

  lossSum(logProbs: tf.Tensor1D, batch: Batch): { loss: tf.Scalar; metrics: tf.Tensor1D } {
    const { pairIds } = pairsOf(batch);
    const pairs = pairIds.length;
    const stored = Array.from(pairIds, (id) => {
      const ref = this.reference.get(id);
      if (!ref)
        throw new TrainingError(
          `Pair ${id} has no reference log-probabilities: the trainer computes them before its first step.`,
        );
      return ref;
    });
    const [policyChosen, policyRejected] = halves(logProbs, pairs);
    const chosen = tf.mul(
      tf.sub(
        policyChosen,
        stored.map((r) => r[0]),
      ),
      this.beta,
    ) as tf.Tensor1D;
    const rejected = tf.mul(
      tf.sub(
        policyRejected,
        stored.map((r) => r[1]),
      ),
      this.beta,
    ) as tf.Tensor1D;
    const loss = tf.neg(tf.sum(logSigmoid(tf.sub(chosen, rejected)))) as tf.Scalar;
    return { loss, metrics: tf.stack(rewardSums(chosen, rejected)) as tf.Tensor1D };
  }

  /** log π_ref of every pair not known yet: the same model with the adapter switched off, no gradient. */
  async prepare({ model, adapter, batches }: PrepareContext): Promise<void> {
    const missing = batches.filter((b) => !pairsOf(b).pairIds.every((id) => this.reference.has(id)));
    if (!missing.length) return;
    const wasEnabled = adapter.enabled;
    adapter.enabled = false;
    try {
      for (const batch of missing) {
        const { pairIds } = pairsOf(batch);
        const sums = tf.tidy(() => batchLogProbs(model, batch, 'sequence'));
        const values = await sums.data();
        sums.dispose();
        pairIds.forEach((id, p) => this.reference.set(id, [values[p], values[pairIds.length + p]]));
      }
    } finally {
      adapter.enabled = wasEnabled;
    }
  }

  exportState(): ObjectiveState {
    const ids = [...this.reference.keys()];
    return {
      pairIds: ids,
      chosen: ids.map((id) => this.reference.get(id)![0]),
      rejected: ids.map((id) => this.reference.get(id)![1]),
    };
  }

  importState(state: ObjectiveState): void {
    const { pairIds = [], chosen = [], rejected = [] } = state;
    pairIds.forEach((id, i) => this.reference.set(id, [chosen[i], rejected[i]]));
  }
}

export class Orpo implements Objective {
  readonly name = 'orpo';
  readonly grouping = 'sequence';
  readonly metricNames = [...REWARD_METRICS, 'nll_loss', 'log_odds_ratio', 'log_odds_chosen'];

  constructor(readonly lambda = DEFAULT_ORPO_LAMBDA) {
    if (!(lambda >= 0)) throw new RangeError(`ORPO's lambda must be 0 or more, got ${lambda}.`);
  }

  count(batch: Batch): number {
    return pairsOf(batch).pairIds.length;
  }

  lossSum(logProbs: tf.Tensor1D, batch: Batch): { loss: tf.Scalar; metrics: tf.Tensor1D } {
    const pairs = pairsOf(batch).pairIds.length;
    const mean = tf.div(logProbs, targetsPerRow(batch)) as tf.Tensor1D;
    const logOdds = tf.sub(mean, tf.log(tf.neg(tf.expm1(mean)))) as tf.Tensor1D;
    const [oddsChosen, oddsRejected] = halves(logOdds, pairs);
    const oddsDifference = tf.sub(oddsChosen, oddsRejected) as tf.Tensor1D;
    const ratio = logSigmoid(oddsDifference);
    const [meanChosen, meanRejected] = halves(mean, pairs);
    const nll = tf.neg(tf.sum(meanChosen));
    const loss = tf.sub(nll, tf.mul(tf.sum(ratio), this.lambda)) as tf.Scalar;
    const rewards = rewardSums(
      tf.mul(meanChosen, this.lambda) as tf.Tensor1D,
      tf.mul(meanRejected, this.lambda) as tf.Tensor1D,
    );
    const metrics = tf.stack([...rewards, nll, tf.sum(ratio), tf.sum(oddsDifference)]) as tf.Tensor1D;
    return { loss, metrics };
  }
}

/** The objective of a name, with its β (DPO) or λ (ORPO) when given. */
export function objectiveNamed(name: ObjectiveName, strength?: number): Objective {
  if (name === 'dpo') return new Dpo(strength);
  if (name === 'orpo') return new Orpo(strength);
  return SFT;
}
