/**
 * What an adapter learned, measured on held-out examples: greedy answers compared with the expected
 * completions (exact match; accuracy and a confusion matrix for label datasets), token accuracy and
 * loss under teacher forcing, and what happened to text the adapter was not trained on (forgetting).
 * The same code serves the CLI's `webtune eval` and the page's Evaluate step.
 */
import { generate } from '../engine/generate';
import type { LlamaModel } from '../engine/model';
import { scoreCompletions, scoreTokens, type CompletionScore } from '../engine/score';
import type { Tokenizer } from '../engine/tokenizer';
import { makeBatches } from './batch';
import type { Segment } from './conversation';
import { encodeExample, type EncodedExample } from './encode';
import { classify, cleanOutput, detectLabels, isExactMatch, type Classification } from './metrics';

/**
 * One example to evaluate: the prompt and completion exactly as training rendered them, and the answer
 * expected.
 */
export interface EvalItem {
  prompt: string;
  completion: string;
  /**
   * The whole example as training rendered it, when it has more than the prompt and completion (every
   * assistant turn of a conversation): teacher forcing scores all its trained turns, as validation does.
   */
  segments?: Segment[];
  /** The completion as the data has it (no end-of-turn or EOS), which an output is compared with. */
  expected: string;
}

export interface EvalSettings {
  maxLength: number;
  /** End the completion with EOS, as training did. */
  addEos: boolean;
  maxNewTokens: number;
  /** Token ids that end an answer (EOS and the like). */
  endTokenIds: number[];
  /** Strings that end an answer; the output is cut before the first one. */
  stopStrings: string[];
  /**
   * The dataset's labels, when its completions are labels (see buildEvalItems): detected over every row,
   * since a few held-out rows seldom use each label twice. Without it, detected from the items.
   */
  labels?: string[] | null;
  /** Examples per teacher-forced batch. */
  batchSize?: number;
  /** After each example's answer: how many are done, of how many. */
  onProgress?: (done: number, total: number) => void | Promise<void>;
  signal?: AbortSignal;
}

export interface EvalResult {
  prompt: string;
  expected: string;
  output: string;
  exact: boolean;
}

export interface EvalReport {
  examples: number;
  exact_match: number;
  token_accuracy: number;
  /** Mean negative log-likelihood per completion token, and its exponential. */
  loss: number;
  perplexity: number;
  classification: Classification | null;
  results: EvalResult[];
}

export class EvalCancelled extends Error {
  override name = 'EvalCancelled';
}

/** Prompt ids: the encoded example before its last answer (the last run of completion tokens). */
function promptIds(encoded: EncodedExample): number[] {
  const mask = encoded.completionMask;
  let boundary = mask.lastIndexOf(1);
  if (boundary < 0) return encoded.ids;
  while (boundary > 0 && mask[boundary - 1] === 1) boundary--;
  return encoded.ids.slice(0, boundary);
}

export async function evaluateItems(
  model: LlamaModel,
  tokenizer: Tokenizer,
  items: EvalItem[],
  settings: EvalSettings,
): Promise<EvalReport> {
  if (items.length === 0) throw new Error('There is nothing to evaluate: the split has no examples.');
  const encoded = items.map((item) =>
    encodeExample(item, tokenizer, { maxLength: settings.maxLength, addEos: settings.addEos }),
  );

  const scores: CompletionScore[] = [];
  for (const batch of makeBatches(
    encoded,
    settings.batchSize ?? 4,
    encoded.map((_, i) => i),
    tokenizer.eosTokenId ?? 0,
  )) {
    if (settings.signal?.aborted) throw new EvalCancelled('Evaluation was cancelled.');
    scores.push(...(await scoreCompletions(model, batch)));
  }

  const results: EvalResult[] = [];
  for (const [i, item] of items.entries()) {
    if (settings.signal?.aborted) throw new EvalCancelled('Evaluation was cancelled.');
    const answer = await generate(model, promptIds(encoded[i]), {
      maxNewTokens: settings.maxNewTokens,
      eosTokenIds: settings.endTokenIds,
      stopStrings: settings.stopStrings,
      decode: (ids) => tokenizer.decode(ids),
    });
    const output = cleanOutput(answer.text, settings.stopStrings);
    results.push({
      prompt: item.prompt,
      expected: item.expected.trim(),
      output,
      exact: isExactMatch(answer.text, item.expected, settings.stopStrings),
    });
    await settings.onProgress?.(i + 1, items.length);
  }

  const total = scores.reduce(
    (t, s) => ({ nll: t.nll + s.nll, correct: t.correct + s.correct, tokens: t.tokens + s.tokens }),
    { nll: 0, correct: 0, tokens: 0 },
  );
  const loss = total.tokens ? total.nll / total.tokens : NaN;
  const labels =
    settings.labels !== undefined ? settings.labels : detectLabels(items.map((item) => item.expected));
  return {
    examples: items.length,
    exact_match: results.filter((r) => r.exact).length / results.length,
    token_accuracy: total.tokens ? total.correct / total.tokens : NaN,
    loss,
    perplexity: Math.exp(loss),
    classification: labels ? classify(results, labels) : null,
    results,
  };
}

export interface Forgetting {
  tokens: number;
  base_perplexity: number;
  /** null when there is no adapter. */
  adapted_perplexity: number | null;
}

/**
 * What an adapter did to text it was not trained on: the reference text's perplexity with the adapter on
 * and off (`onScored` after each). The adapter is left as it was found.
 */
export async function measureForgetting(
  model: LlamaModel,
  tokenizer: Tokenizer,
  text: string,
  adapter: { enabled: boolean } | null,
  onScored?: () => void,
): Promise<Forgetting> {
  const wasEnabled = adapter?.enabled;
  try {
    let adapted: { perplexity: number } | null = null;
    if (adapter) {
      adapter.enabled = true;
      adapted = await textPerplexity(model, tokenizer, text);
      onScored?.();
      adapter.enabled = false;
    }
    const base = await textPerplexity(model, tokenizer, text);
    onScored?.();
    return {
      tokens: base.tokens,
      base_perplexity: base.perplexity,
      adapted_perplexity: adapted?.perplexity ?? null,
    };
  } finally {
    if (adapter) adapter.enabled = wasEnabled!;
  }
}

/** Tokens scored per pass over a long reference text: attention's memory grows with the square of it. */
export const REFERENCE_WINDOW = 512;

/**
 * Perplexity of a general text (forgetting): exp of the mean negative log-likelihood per token, over
 * consecutive windows of REFERENCE_WINDOW tokens (each window's first token is context only).
 */
export async function textPerplexity(
  model: LlamaModel,
  tokenizer: Tokenizer,
  text: string,
): Promise<{ tokens: number; perplexity: number }> {
  const ids = tokenizer.encode(text);
  if (ids.length < 2) throw new Error('The reference text is too short to score: give at least a sentence.');
  const window = Math.min(REFERENCE_WINDOW, model.args.maxPositions);
  let nll = 0;
  let tokens = 0;
  for (let start = 0; start + 1 < ids.length; start += window) {
    const part = ids.slice(start, start + window);
    if (part.length < 2) break;
    const scored = await scoreTokens(model, part);
    nll += scored.nll * scored.logprobs.length;
    tokens += scored.logprobs.length;
  }
  return { tokens, perplexity: Math.exp(nll / tokens) };
}
