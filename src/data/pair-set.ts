/**
 * A preference dataset made into what the trainer consumes (training-set.ts for pairs): each row's prompt
 * with its chosen and its rejected answer, tokenised like any example, split into training and validation
 * pairs with the run's seed, and batched as PreferenceBatches (a batch of P pairs is 2·P rows).
 *
 * A pair's id is its place among the dataset's pairs: the same in every epoch and on a resumed run, so DPO's
 * reference log-probs, computed once and saved with the run, are found again by it.
 */
import type { PreferenceBatch } from '../engine/batch';
import type { TrainingData } from '../engine/train';
import type { Tokenizer } from '../engine/tokenizer';
import {
  createRng,
  epochOrder,
  epochSeed,
  groupByLength,
  makePairBatches,
  padTokenId,
  splitTrainValidation,
  type EncodedPair,
} from './batch';
import type { ObjectiveName } from '../engine/objective';
import { DatasetError, type Dataset, type Mapping } from './dataset';
import { encodeExample, targetCount, type EncodedExample } from './encode';
import type { Example, SkippedExample } from './examples';
import { renderPairs, type PairExample, type PairMapping } from './pairs';
import { datasetStats, type DatasetStats } from './stats';
import type { TrainingSetOptions } from './training-set';

export interface EncodedPairExample extends EncodedPair {
  pair: PairExample;
}

export interface PairTrainingSet {
  data: { epochBatches(epoch: number): PreferenceBatch[]; validation: PreferenceBatch[] } & TrainingData;
  /** Counts over every answer kept (two per pair), with `pairs` the number of pairs. */
  stats: DatasetStats & { pairs: number };
  train: EncodedPairExample[];
  validation: EncodedPairExample[];
  /** Rows left out, with why: no preference to learn, a repeat, or an answer the max length cuts away. */
  skipped: SkippedExample[];
}

export function buildPairTrainingSet(
  dataset: Dataset,
  mapping: PairMapping,
  tokenizer: Tokenizer,
  options: Omit<TrainingSetOptions, 'mapping'>,
): PairTrainingSet {
  const rendered = renderPairs(dataset, mapping, options.format);
  const encodeOptions = { maxLength: options.maxLength, addEos: options.format.addEos };
  const skipped = [...rendered.skipped];
  const pairs: EncodedPairExample[] = [];
  for (const pair of rendered.pairs) {
    const [chosen, rejected] = [pair.chosen, pair.rejected].map((e) =>
      encodeExample(e, tokenizer, encodeOptions),
    );
    // An answer the max length cuts away entirely leaves nothing to compare: the pair is left out.
    const cut = [chosen, rejected].findIndex((e) => targetCount(e) === 0);
    if (cut >= 0) {
      const where = dataset.format === 'xlsx' || dataset.format === 'ods' ? 'Row' : 'Line';
      skipped.push({
        row: pair.row,
        line: pair.line,
        kind: 'invalid',
        reason:
          `${where} ${pair.line}: the prompt fills the max length (${options.maxLength} tokens), so the ` +
          `${cut === 0 ? 'chosen' : 'rejected'} answer has no token left. Raise the max length or shorten the prompt.`,
      });
      continue;
    }
    pairs.push({ id: pairs.length, pair, chosen, rejected });
  }
  if (pairs.length === 0)
    throw new DatasetError(
      `No pair is left to train on. ${skipped[0]?.reason ?? ''}`.trim(),
      skipped[0]?.line,
    );
  const { train, validation } = splitTrainValidation(pairs, options.valSplit, options.seed);
  const pad = padTokenId(tokenizer);
  const longest = (p: EncodedPair) => Math.max(p.chosen.ids.length, p.rejected.ids.length);
  const stepSize = options.batchSize * (options.gradAccum ?? 1);
  const trainOrder = (epoch: number) => {
    const order = epochOrder(train.length, epoch, options.seed);
    return (options.groupByLength ?? true)
      ? groupByLength(
          order,
          train.map(longest),
          stepSize,
          createRng(epochSeed(options.seed, epoch) ^ 0x6a09e667),
        )
      : order;
  };
  const validationOrder = groupByLength(
    validation.map((_, i) => i),
    validation.map(longest),
    options.batchSize,
    createRng(options.seed),
  );
  return {
    data: {
      epochBatches: (epoch) => makePairBatches(train, options.batchSize, trainOrder(epoch), pad),
      validation: makePairBatches(validation, options.batchSize, validationOrder, pad),
    },
    stats: { ...pairStats(rendered.rowCount, pairs, skipped), pairs: pairs.length },
    train,
    validation,
    skipped,
  };
}

/** The dataset's counts over both answers of every pair kept. */
function pairStats(rowCount: number, pairs: EncodedPairExample[], skipped: SkippedExample[]): DatasetStats {
  const examples: Example[] = pairs.flatMap(({ pair }) => [
    { ...pair.chosen, row: pair.row, line: pair.line },
    { ...pair.rejected, row: pair.row, line: pair.line },
  ]);
  const encoded: EncodedExample[] = pairs.flatMap((p) => [p.chosen, p.rejected]);
  return datasetStats({ examples, skipped, rowCount, lastTurnOnly: 0 }, encoded);
}

/**
 * Refuses a preference objective on data that is not pairs (SFT on pairs trains the chosen answers, as
 * TRL's practice of SFT before DPO does).
 */
export function checkObjectiveFits(objective: ObjectiveName, mapping: Mapping): void {
  if (objective === 'sft' || mapping.kind === 'pairs') return;
  throw new DatasetError(
    `${objective.toUpperCase()} learns from pairs of answers — a prompt with a chosen and a rejected answer — ` +
      'but this dataset holds single answers. Train it with SFT, or give a file with the columns prompt, ' +
      "chosen and rejected (or OpenAI's preference JSONL).",
  );
}
