/**
 * What preference tuning did, measured on pairs: how often the model gives the chosen answer the higher
 * log-probability (log π(y⁺|x) > log π(y⁻|x), sequence log-probs summed over each answer's tokens; a tie
 * counts as not preferred), and the mean margin log π(y⁺|x) − log π(y⁻|x) — for the base model (adapter
 * off) and the fine-tuned one. The same code serves `webtune eval` and the Evaluate step.
 */
import type { LlamaModel } from '../engine/model';
import { scoreCompletions } from '../engine/score';
import { makePairBatches, type EncodedPair } from './batch';
import { baseAndTuned } from './base-and-tuned';
import { EvalCancelled } from './evaluate';

export interface PreferenceScore {
  /** Share of pairs whose chosen answer has the higher log-probability. */
  accuracy: number;
  /** Mean over pairs of log π(chosen) − log π(rejected), in nats. */
  margin: number;
  /** Mean over pairs of log π(chosen) and of log π(rejected) (TRL's logps/chosen, logps/rejected). */
  chosen: number;
  rejected: number;
}

export interface PreferenceEvaluation {
  pairs: number;
  base: PreferenceScore;
  /** null without an adapter. */
  tuned: PreferenceScore | null;
}

export interface PairScoreOptions {
  /** Pairs per batch (each pair is two rows). */
  batchSize?: number;
  signal?: AbortSignal;
  /** After each batch: pairs scored so far, of how many. */
  onProgress?: (done: number, total: number) => void | Promise<void>;
}

/** The pairs scored by the model as it is (adapter on or off as found). */
export async function pairsScore(
  model: LlamaModel,
  pairs: readonly EncodedPair[],
  padId: number,
  options: PairScoreOptions = {},
): Promise<PreferenceScore> {
  if (pairs.length === 0) throw new Error('There is nothing to evaluate: no pair was held out.');
  const total = { preferred: 0, chosen: 0, rejected: 0 };
  let done = 0;
  const order = pairs.map((_, i) => i);
  for (const batch of makePairBatches(pairs, options.batchSize ?? 2, order, padId)) {
    if (options.signal?.aborted) throw new EvalCancelled('Evaluation was cancelled.');
    const scores = await scoreCompletions(model, batch);
    const count = batch.pairIds.length;
    for (let p = 0; p < count; p++) {
      const [chosen, rejected] = [-scores[p].nll, -scores[count + p].nll];
      if (chosen > rejected) total.preferred++;
      total.chosen += chosen;
      total.rejected += rejected;
    }
    done += count;
    await options.onProgress?.(done, pairs.length);
  }
  const n = pairs.length;
  return {
    accuracy: total.preferred / n,
    margin: (total.chosen - total.rejected) / n,
    chosen: total.chosen / n,
    rejected: total.rejected / n,
  };
}

/**
 * The pairs scored by the base model (adapter off) and, when there is one, with the adapter on. The adapter
 * is left as it was found.
 */
export async function evaluatePreferences(
  model: LlamaModel,
  pairs: readonly EncodedPair[],
  padId: number,
  adapter: { enabled: boolean } | null,
  options: PairScoreOptions & { onStage?: (stage: 'base' | 'tuned') => void } = {},
): Promise<PreferenceEvaluation> {
  const score = () => pairsScore(model, pairs, padId, options);
  return { pairs: pairs.length, ...(await baseAndTuned(adapter, score, options.onStage)) };
}
