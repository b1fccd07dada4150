/**
 * From a rendered example to token ids and the mask of tokens the model is trained to predict.
 *
 * The full text is tokenised once, because SentencePiece and BPE merges can cross the prompt/completion
 * boundary: encoding the two halves separately would give ids the model never sees at inference
 * (e.g. a completion starting "Tom" after "\n" is "T" "om", but "▁T" "om" on its own). The boundary is
 * where the full ids stop agreeing with the prompt's own ids; a token merged across it counts as
 * completion, so nothing the model must write is hidden in the prompt.
 */
import type { Tokenizer } from '../engine/tokenizer';
import type { RenderedExample } from './template';

export interface EncodedExample {
  ids: number[];
  /** Same length as ids: 1 where ids[i] is a completion token, i.e. a target predicted from ids[<i]. */
  completionMask: number[];
  /** Whether tokens past maxLength were cut off. */
  truncated: boolean;
}

export interface EncodeOptions {
  /** Longest sequence kept, in tokens (BOS and EOS included). */
  maxLength: number;
  /** End the completion with EOS, unless its tokens already include EOS (a chat template's end of turn). */
  addEos: boolean;
}

type EncodingTokenizer = Pick<Tokenizer, 'encode' | 'eosTokenId'>;

export function encodeExample(example: RenderedExample, tokenizer: EncodingTokenizer, options: EncodeOptions): EncodedExample {
  if (!Number.isInteger(options.maxLength) || options.maxLength < 2) {
    throw new RangeError(`maxLength must be a whole number of at least 2 tokens, got ${options.maxLength}.`);
  }
  const ids = tokenizer.encode(example.prompt + example.completion, { addSpecialTokens: true });
  const promptIds = tokenizer.encode(example.prompt, { addSpecialTokens: true });
  const boundary = commonPrefixLength(ids, promptIds);

  const eos = tokenizer.eosTokenId;
  if (options.addEos && eos !== null && !ids.slice(boundary).includes(eos)) ids.push(eos);
  const completionMask = ids.map((_, i) => (i >= boundary ? 1 : 0));

  const truncated = ids.length > options.maxLength;
  if (truncated) {
    // Keep the start: the prompt is what the completion depends on.
    ids.length = options.maxLength;
    completionMask.length = options.maxLength;
  }
  return { ids, completionMask, truncated };
}

export function encodeExamples(examples: RenderedExample[], tokenizer: EncodingTokenizer, options: EncodeOptions): EncodedExample[] {
  return examples.map((example) => encodeExample(example, tokenizer, options));
}

/** Tokens the model is trained to predict in an encoded example. */
export function targetCount(example: EncodedExample): number {
  // Position 0 has nothing before it, so it can never be predicted.
  return example.completionMask.reduce((sum, m, i) => sum + (i > 0 ? m : 0), 0);
}

function commonPrefixLength(a: number[], b: number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}
