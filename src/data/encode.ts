/**
 * From a rendered example to token ids and the mask of tokens the model is trained to predict.
 *
 * An example is a list of segments, each context or trained (prompt/completion is the two-segment case;
 * a conversation has one trained segment per assistant turn). The full text is tokenised once, because
 * SentencePiece and BPE merges can cross a segment boundary: encoding the pieces separately would give ids
 * the model never sees at inference (e.g. a completion starting "Tom" after "\n" is "T" "om", but "▁T" "om"
 * on its own). A segment's first token is where the full ids stop agreeing with the ids of the text before
 * the segment; a token merged across a boundary belongs to the later segment, so nothing the model must
 * write is hidden in a prompt (and a trained turn's last token merged into the context after it is context).
 *
 * Only the start of a long text is tokenised: no token of these vocabularies spans more than a few dozen
 * characters, so the first `maxLength` tokens lie within `maxLength × CHARS_PER_TOKEN` characters. The text
 * is cut a little past that (room for SLACK_TOKENS more tokens, so that merges at the cut cannot reach the
 * kept ones), and if the cut text still gives too few tokens (a vocabulary with longer tokens) the cut
 * moves further out until the whole text is used. The kept tokens are those of the whole text.
 */
import type { Tokenizer } from '../engine/tokenizer';
import type { Segment } from './conversation';

/** What is encoded: an example's segments, or a prompt (context) and its completion (trained). */
export type Encodable =
  { segments: Segment[] } | { prompt: string; completion: string; segments?: Segment[] };

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

/** Runs of context and of trained text: neighbouring segments of the same kind are one. */
function runs(example: Encodable): Segment[] {
  const segments =
    example.segments !== undefined
      ? example.segments
      : !('prompt' in example)
        ? []
        : [
            { text: example.prompt, trained: false },
            { text: example.completion, trained: true },
          ];
  const merged: Segment[] = [];
  segments.forEach((segment, i) => {
    const previous = merged.at(-1);
    // An empty last segment still ends the text: an empty completion is trained on its EOS alone.
    if (segment.text === '' && i < segments.length - 1) return;
    if (previous?.trained === segment.trained) previous.text += segment.text;
    else merged.push({ ...segment });
  });
  return merged;
}

export function encodeExample(
  example: Encodable,
  tokenizer: EncodingTokenizer,
  options: EncodeOptions,
): EncodedExample {
  if (!Number.isInteger(options.maxLength) || options.maxLength < 2) {
    throw new RangeError(`maxLength must be a whole number of at least 2 tokens, got ${options.maxLength}.`);
  }
  const pieces = runs(example);
  const text = pieces.map((s) => s.text).join('');
  // Tokens past maxLength are cut off below, so no text is tokenised much past it.
  const { ids, cut } = encodeStart(text, tokenizer, options.maxLength);
  // The first token of each run: where the ids of the text before it stop agreeing with the full ids.
  const starts: number[] = [];
  let offset = 0;
  for (const [i, piece] of pieces.entries()) {
    const previous = starts.at(-1) ?? 0;
    // A run that starts past the kept tokens changes none of them. A trained first run starts after BOS.
    const start =
      (i === 0 && !piece.trained) || (i > 0 && previous >= options.maxLength)
        ? previous
        : Math.max(
            previous,
            commonPrefixLength(ids, encodeStart(text.slice(0, offset), tokenizer, options.maxLength).ids),
          );
    starts.push(start);
    offset += piece.text.length;
  }
  const completionMask = ids.map(() => 0);
  pieces.forEach((piece, i) => {
    if (piece.trained) completionMask.fill(1, starts[i], starts[i + 1] ?? ids.length);
  });

  // A cut text goes on past maxLength, so its EOS would be cut off anyway. The EOS ends a text whose last
  // run is trained (the completion), unless that run already holds it (a chat template's end of turn).
  const eos = tokenizer.eosTokenId;
  const last = pieces.length - 1;
  const lastTrained = last >= 0 && pieces[last].trained;
  if (!cut && options.addEos && eos !== null && lastTrained && !ids.slice(starts[last]).includes(eos)) {
    ids.push(eos);
    completionMask.push(1);
  }

  const truncated = ids.length > options.maxLength;
  if (truncated) {
    // Keep the start: the prompt is what the completion depends on.
    ids.length = options.maxLength;
    completionMask.length = options.maxLength;
  }
  return { ids, completionMask, truncated };
}

export function encodeExamples(
  examples: Encodable[],
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
