/**
 * Autoregressive generation with a KV cache: the prompt is run once, then one token per step.
 * Streams through `onToken`; stops on EOS, a stop string, the length limit or an abort signal.
 */
import { KVCache } from './kv-cache';
import { hiddenStates, lmHead, type LlamaModel } from './model';
import { createRng } from './random';
import { GREEDY, sampleToken, type SamplingSettings } from './sample';
import { tf } from './tf';

export interface GenerateOptions extends Partial<SamplingSettings> {
  maxNewTokens?: number;
  seed?: number;
  /** Token ids that end generation (not included in the text). */
  eosTokenIds?: number[];
  /** Strings that end generation; the text is cut before the first one. Needs `decode`. */
  stopStrings?: string[];
  /** Turns new token ids into text (the tokenizer's decode); without it `text` is empty. */
  decode?: (ids: number[]) => string;
  /**
   * Called after every new token with the text so far (a character still missing bytes held back); generation
   * waits for a returned promise (a worker yields there).
   */
  onToken?: (token: number, textSoFar: string) => unknown;
  signal?: AbortSignal;
  /** Run the prompt as one pass over the whole sequence each step instead of using the cache (for tests). */
  noCache?: boolean;
}

export interface GenerateResult {
  tokens: number[];
  text: string;
  stopReason: 'eos' | 'stop-string' | 'length' | 'aborted' | 'context';
}

/**
 * The text so far as it may be shown while more tokens come: a character whose UTF-8 bytes are split
 * across byte-fallback tokens decodes as U+FFFD until its last byte arrives, so trailing U+FFFDs are held
 * back (the finished text keeps any that never completed).
 */
export function streamable(text: string): string {
  return text.replace(/\uFFFD+$/, '');
}

async function lastLogits(model: LlamaModel, ids: number[], cache?: KVCache): Promise<Float32Array> {
  const logits = tf.tidy(() => {
    const hidden = hiddenStates(model, Int32Array.from(ids), 1, { cache });
    const last = tf.slice(hidden, [hidden.shape[0] - 1, 0], [1, -1]);
    return lmHead(model, last);
  });
  const data = (await logits.data()) as Float32Array;
  logits.dispose();
  return data;
}

export async function generate(
  model: LlamaModel,
  promptIds: number[],
  options: GenerateOptions = {},
): Promise<GenerateResult> {
  if (promptIds.length === 0) throw new Error('The prompt is empty: give at least one token (BOS counts).');
  const sampling: SamplingSettings = {
    temperature: options.temperature ?? GREEDY.temperature,
    topK: options.topK ?? GREEDY.topK,
    topP: options.topP ?? GREEDY.topP,
  };
  const maxNew = options.maxNewTokens ?? 64;
  const eos = new Set(options.eosTokenIds ?? model.args.eosTokenIds);
  const stops = (options.stopStrings ?? []).filter((s) => s.length > 0);
  const rng = createRng(options.seed ?? 0);
  const cache = options.noCache ? undefined : new KVCache(model.args.numLayers);
  const tokens: number[] = [];
  let text = '';
  let stopReason: GenerateResult['stopReason'] = 'length';
  try {
    let logits = await lastLogits(model, promptIds, cache);
    while (tokens.length < maxNew) {
      if (options.signal?.aborted) {
        stopReason = 'aborted';
        break;
      }
      const next = sampleToken(logits, sampling, rng);
      if (eos.has(next)) {
        stopReason = 'eos';
        break;
      }
      tokens.push(next);
      text = options.decode ? options.decode(tokens) : '';
      const hit = stops.map((s) => text.indexOf(s)).filter((i) => i >= 0);
      if (hit.length) {
        text = text.slice(0, Math.min(...hit));
        await options.onToken?.(next, text);
        stopReason = 'stop-string';
        break;
      }
      await options.onToken?.(next, streamable(text));
      if (promptIds.length + tokens.length >= model.args.maxPositions) {
        stopReason = 'context';
        break;
      }
      if (tokens.length < maxNew)
        logits = await lastLogits(model, cache ? [next] : [...promptIds, ...tokens], cache);
    }
  } finally {
    cache?.dispose();
  }
  return { tokens, text, stopReason };
}
