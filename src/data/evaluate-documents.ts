/**
 * What training on documents did, measured on windows it held out: their perplexity — exp of the mean
 * negative log-likelihood over the windows' target tokens (context tokens are not scored) — for the base
 * model (adapter off) and the fine-tuned one. The same code serves `webtune eval` and the Evaluate step.
 */
import type { LlamaModel } from '../engine/model';
import { scoreCompletions } from '../engine/score';
import { makeBatches } from './batch';
import type { Dataset } from './dataset';
import { buildDocumentSplit, type DocumentWindow, type TextMapping } from './documents';
import type { EncodedExample } from './encode';
import type { EvalSplit } from './eval-items';
import { baseAndTuned } from './base-and-tuned';
import { EvalCancelled } from './evaluate';
import type { Tokenizer } from '../engine/tokenizer';

export interface WindowsScore {
  /** Mean negative log-likelihood per target token, and its exponential. */
  loss: number;
  perplexity: number;
  /** Target tokens that are the model's most likely next token. */
  token_accuracy: number;
}

export interface DocumentEvaluation {
  windows: number;
  /** Target tokens scored. */
  tokens: number;
  base: WindowsScore;
  /** null without an adapter. */
  tuned: WindowsScore | null;
}

export interface WindowsScoreOptions {
  batchSize?: number;
  signal?: AbortSignal;
  /** After each batch: windows scored so far, of how many. */
  onProgress?: (done: number, total: number) => void | Promise<void>;
}

/** The windows the evaluation scores: those held out (same max length, overlap, share and seed), or all. */
export function evaluationWindows(
  dataset: Dataset,
  mapping: TextMapping,
  tokenizer: Pick<Tokenizer, 'encode' | 'decode' | 'eosTokenId'>,
  options: { maxLength: number; valSplit: number; seed: number; split: EvalSplit },
): DocumentWindow[] {
  const split = buildDocumentSplit(dataset, mapping, tokenizer, options);
  return options.split === 'all' ? split.windows : split.validation.map((i) => split.windows[i]);
}

/** The windows' perplexity under the model as it is (adapter on or off as found). */
export async function windowsScore(
  model: LlamaModel,
  windows: EncodedExample[],
  padId: number,
  options: WindowsScoreOptions = {},
): Promise<WindowsScore & { tokens: number }> {
  if (windows.length === 0) throw new Error('There is nothing to evaluate: no window was held out.');
  const total = { nll: 0, correct: 0, tokens: 0 };
  let done = 0;
  const batchSize = options.batchSize ?? 4;
  const order = windows.map((_, i) => i);
  for (const batch of makeBatches(windows, batchSize, order, padId)) {
    if (options.signal?.aborted) throw new EvalCancelled('Evaluation was cancelled.');
    for (const s of await scoreCompletions(model, batch)) {
      total.nll += s.nll;
      total.correct += s.correct;
      total.tokens += s.tokens;
    }
    done += batch.batchSize;
    await options.onProgress?.(done, windows.length);
  }
  const loss = total.nll / total.tokens;
  return {
    loss,
    perplexity: Math.exp(loss),
    token_accuracy: total.correct / total.tokens,
    tokens: total.tokens,
  };
}

/**
 * The held-out windows scored by the base model (adapter off) and, when there is one, with the adapter on.
 * The adapter is left as it was found.
 */
export async function evaluateDocuments(
  model: LlamaModel,
  windows: EncodedExample[],
  padId: number,
  adapter: { enabled: boolean } | null,
  options: WindowsScoreOptions & { onStage?: (stage: 'base' | 'tuned') => void } = {},
): Promise<DocumentEvaluation> {
  let tokens = 0;
  const score = async () => {
    const { tokens: scored, ...rest } = await windowsScore(model, windows, padId, options);
    tokens = scored;
    return rest;
  };
  const scores = await baseAndTuned(adapter, score, options.onStage);
  return { windows: windows.length, tokens, ...scores };
}
