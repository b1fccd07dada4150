/**
 * From a rendered example to token ids and the mask of tokens the model is trained to predict.
 *
 * The full text is tokenised once, because SentencePiece and BPE merges can cross the prompt/completion
 * boundary: encoding the two halves separately would give ids the model never sees at inference
 * (e.g. a completion starting "Tom" after "\n" is "T" "om", but "▁T" "om" on its own). The boundary is
 * where the full ids stop agreeing with the prompt's own ids; a token merged across it counts as
 * completion, so nothing the model must write is hidden in the prompt.
 *
 * Only the start of a long text is tokenised: no token of these vocabularies spans more than a few dozen
 * characters, so the first `maxLength` tokens lie within `maxLength × CHARS_PER_TOKEN` characters. The text
 * is cut a little past that (room for SLACK_TOKENS more tokens, so that merges at the cut cannot reach the
 * kept ones), and if the cut text still gives too few tokens (a vocabulary with longer tokens) the cut
 * moves further out until the whole text is used. The kept tokens are those of the whole text.
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

/** Characters of text tokenised per token kept, before checking that enough tokens came out. */
export const CHARS_PER_TOKEN = 64;
/** Tokens past maxLength that the cut text must still give, so the cut cannot change a kept token. */
export const SLACK_TOKENS = 32;

/**
 * The first `maxTokens` ids of `text` (and possibly more, all of them right), without tokenising more of
 * a long text than those need. `cut` says whether the text was cut, i.e. it has more tokens than returned.
 */
export function encodeStart(
  text: string,
  tokenizer: EncodingTokenizer,
  maxTokens: number,
): { ids: number[]; cut: boolean } {
  const needed = maxTokens + SLACK_TOKENS;
  for (let limit = needed * CHARS_PER_TOKEN; ; limit *= 4) {
    if (text.length <= limit) return { ids: tokenizer.encode(text, { addSpecialTokens: true }), cut: false };
    // Never between the two halves of a surrogate pair.
    const end = isHighSurrogate(text.charCodeAt(limit - 1)) ? limit - 1 : limit;
    const ids = tokenizer.encode(text.slice(0, end), { addSpecialTokens: true });
    if (ids.length >= needed) return { ids, cut: true };
  }
}

const isHighSurrogate = (code: number) => code >= 0xd800 && code <= 0xdbff;

export function encodeExample(
  example: RenderedExample,
  tokenizer: EncodingTokenizer,
  options: EncodeOptions,
): EncodedExample {
  if (!Number.isInteger(options.maxLength) || options.maxLength < 2) {
    throw new RangeError(`maxLength must be a whole number of at least 2 tokens, got ${options.maxLength}.`);
  }
  // Tokens past maxLength are cut off below, so neither text is tokenised much past it.
  const { ids, cut } = encodeStart(example.prompt + example.completion, tokenizer, options.maxLength);
  const promptIds = encodeStart(example.prompt, tokenizer, options.maxLength).ids;
  const boundary = commonPrefixLength(ids, promptIds);

  // A cut text goes on past maxLength, so its EOS would be cut off anyway.
  const eos = tokenizer.eosTokenId;
  if (!cut && options.addEos && eos !== null && !ids.slice(boundary).includes(eos)) ids.push(eos);
  const completionMask = ids.map((_, i) => (i >= boundary ? 1 : 0));

  const truncated = ids.length > options.maxLength;
  if (truncated) {
    // Keep the start: the prompt is what the completion depends on.
    ids.length = options.maxLength;
    completionMask.length = options.maxLength;
  }
  return { ids, completionMask, truncated };
}

export function encodeExamples(
  examples: RenderedExample[],
  tokenizer: EncodingTokenizer,
  options: EncodeOptions,
): EncodedExample[] {
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
