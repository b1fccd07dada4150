/**
 * Reproducible order and padded batches. Every random choice here comes from a seed, so a run can be
 * repeated exactly, and an epoch's order can be recomputed from (seed, epoch) to resume mid-epoch.
 */
import type { Batch, PreferenceBatch } from '../engine/batch';
import { createRng, permutation, type Rng } from '../engine/random';
import type { Tokenizer } from '../engine/tokenizer';
import type { EncodedExample } from './encode';

export type { Batch, Rng };
export { createRng, permutation };

/** Continues the stream an Rng was at when `rng.state()` was taken (mulberry32's state is its seed). */
export function restoreRng(state: number): Rng {
  return createRng(state);
}

/** Mixes the epoch into the seed so each epoch has its own order, the same on every run. */
export function epochSeed(seed: number, epoch: number): number {
  return (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(epoch + 1, 0xc2b2ae35)) >>> 0;
}

/** The order of examples 0..n-1 in the given epoch, a function of (n, epoch, seed) only. */
export function epochOrder(n: number, epoch: number, seed: number): number[] {
  return permutation(n, createRng(epochSeed(seed, epoch)));
}

/**
 * Splits off a seeded random validation set: none for valFraction 0; otherwise round(n·valFraction)
 * clamped so both sets keep at least one example (needs n ≥ 2). Both keep the original order.
 */
export function splitTrainValidation<T>(
  examples: T[],
  valFraction: number,
  seed: number,
): { train: T[]; validation: T[] } {
  if (!(valFraction >= 0 && valFraction < 1))
    throw new RangeError(`valFraction must be in [0, 1), got ${valFraction}.`);
  const n = examples.length;
  const size = valFraction === 0 || n < 2 ? 0 : Math.min(n - 1, Math.max(1, Math.round(n * valFraction)));
  const chosen = new Set(permutation(n, createRng(seed)).slice(0, size));
  return {
    train: examples.filter((_, i) => !chosen.has(i)),
    validation: examples.filter((_, i) => chosen.has(i)),
  };
}

/** The id used to fill padding: EOS, or 0 when the tokenizer has none. Padding is masked out either way. */
export function padTokenId(tokenizer: Pick<Tokenizer, 'eosTokenId'>): number {
  return tokenizer.eosTokenId ?? 0;
}

/** How many batches' worth of examples are sorted together by length (the spread of lengths a batch sees). */
export const LENGTH_GROUP_BATCHES = 32;

/**
 * `order` regrouped so each batch holds examples of similar length, and padding costs little compute:
 * the order is cut into windows of `batchSize · LENGTH_GROUP_BATCHES` examples, each window is sorted
 * by length (the grouping of Hugging Face's `group_by_length`), and the batches are then put in a
 * random order (`rng`), so a small dataset does not meet the same batches in the same order each epoch.
 * Every example still comes once per epoch, and the result is a function of the inputs and rng's seed.
 * (`batchSize` here is what one optimizer step takes: micro-batch size × accumulation.)
 */
export function groupByLength(
  order: number[],
  lengths: ArrayLike<number>,
  batchSize: number,
  rng: Rng,
): number[] {
  const window = batchSize * LENGTH_GROUP_BATCHES;
  const batches: number[][] = [];
  for (let start = 0; start < order.length; start += window) {
    // Stable: equal lengths keep their shuffled order.
    const sorted = order.slice(start, start + window).sort((a, b) => lengths[b] - lengths[a]);
    for (let i = 0; i < sorted.length; i += batchSize) batches.push(sorted.slice(i, i + batchSize));
  }
  // A short batch stays last, where makeBatches cuts it.
  const full = batches.filter((b) => b.length === batchSize);
  const short = batches.filter((b) => b.length < batchSize);
  return [...permutation(full.length, rng).flatMap((i) => full[i]), ...short.flat()];
}

/** The share of a batch list's cells that are padding: compute spent on nothing. */
export function paddingShare(batches: Batch[]): number {
  let cells = 0;
  let real = 0;
  for (const b of batches) {
    cells += b.ids.length;
    for (const m of b.attentionMask) real += m;
  }
  return cells === 0 ? 0 : 1 - real / cells;
}

/**
 * Consecutive groups of `batchSize` examples taken in `order` (the last group may be smaller), each
 * right-padded to its longest sequence.
 */
export function makeBatches(
  encoded: EncodedExample[],
  batchSize: number,
  order: number[],
  padId = 0,
): Batch[] {
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new RangeError(`batchSize must be a positive whole number, got ${batchSize}.`);
  const batches: Batch[] = [];
  for (let start = 0; start < order.length; start += batchSize) {
    batches.push(
      padBatch(
        order.slice(start, start + batchSize).map((i) => encoded[i]),
        padId,
      ),
    );
  }
  return batches;
}

/**
 * Pairs taken `batchSize` at a time in `order`, each group one PreferenceBatch: the chosen answers' rows,
 * then the rejected answers' in the same order, right-padded to the longest of them.
 */
export function makePairBatches(
  pairs: readonly EncodedPair[],
  batchSize: number,
  order: number[],
  padId = 0,
): PreferenceBatch[] {
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new RangeError(`batchSize must be a positive whole number, got ${batchSize}.`);
  const batches: PreferenceBatch[] = [];
  for (let start = 0; start < order.length; start += batchSize) {
    const group = order.slice(start, start + batchSize).map((i) => pairs[i]);
    const rows = [...group.map((p) => p.chosen), ...group.map((p) => p.rejected)];
    batches.push({ ...padBatch(rows, padId), pairIds: Int32Array.from(group, (p) => p.id) });
  }
  return batches;
}

/** A pair's two answers after its prompt, tokenised; `id` keys its reference log-probs in a run. */
export interface EncodedPair {
  id: number;
  chosen: EncodedExample;
  rejected: EncodedExample;
}

function padBatch(examples: EncodedExample[], padId: number): Batch {
  const seqLength = Math.max(...examples.map((e) => e.ids.length));
  const size = examples.length * seqLength;
  const ids = new Int32Array(size).fill(padId);
  const targetMask = new Float32Array(size);
  const attentionMask = new Float32Array(size);
  examples.forEach((example, b) => {
    const offset = b * seqLength;
    ids.set(example.ids, offset);
    targetMask.set(example.completionMask, offset);
    attentionMask.fill(1, offset, offset + example.ids.length);
  });
  return { ids, targetMask, attentionMask, batchSize: examples.length, seqLength };
}
