/**
 * From a parsed dataset to what the trainer consumes: rendered, tokenised, split into training and
 * validation examples, and batched in a seeded order per epoch (so a run can resume mid-epoch).
 */
import type { TrainingData } from '../engine/train';
import type { Tokenizer } from '../engine/tokenizer';
import {
  createRng,
  epochOrder,
  epochSeed,
  groupByLength,
  makeBatches,
  padTokenId,
  splitTrainValidation,
} from './batch';
import type { Dataset } from './dataset';
import { buildDocumentSplit, windowsAsRendered } from './documents';
import { encodeExamples, type EncodedExample } from './encode';
import { renderDataset, type Example, type RenderedDataset } from './examples';
import type { Mapping } from './layout';
import { datasetStats, type DatasetStats } from './stats';
import type { PromptFormat } from './template';

export interface TrainingSetOptions {
  mapping: Mapping;
  format: PromptFormat;
  maxLength: number;
  /** Fraction of examples held out for validation (0 = none). */
  valSplit: number;
  batchSize: number;
  seed: number;
  /** Micro-batches summed into one optimizer step (default 1): examples are grouped by length per step. */
  gradAccum?: number;
  /** Batch examples of similar length together (default true): less padding, the same examples per epoch. */
  groupByLength?: boolean;
}

export interface TrainingSet {
  data: TrainingData;
  stats: DatasetStats;
  train: { example: Example; encoded: EncodedExample }[];
  validation: { example: Example; encoded: EncodedExample }[];
}

export function buildTrainingSet(
  dataset: Dataset,
  tokenizer: Tokenizer,
  options: TrainingSetOptions,
): TrainingSet {
  if (options.mapping.kind === 'text') {
    // Documents: windows of their tokens are the examples, and the split is over windows.
    const split = buildDocumentSplit(dataset, options.mapping, tokenizer, options);
    return assembleTrainingSet(windowsAsRendered(split), split.windows, tokenizer, options);
  }
  const rendered = renderDataset(dataset, options.mapping, options.format);
  const encoded = encodeExamples(rendered.examples, tokenizer, {
    maxLength: options.maxLength,
    addEos: options.format.addEos,
  });
  return assembleTrainingSet(rendered, encoded, tokenizer, options);
}

/**
 * The split and batches for examples already tokenised (`encoded[i]` is `rendered.examples[i]`): a change of
 * batch size costs no tokenising.
 */
export function assembleTrainingSet(
  rendered: RenderedDataset,
  encoded: EncodedExample[],
  tokenizer: Pick<Tokenizer, 'eosTokenId'>,
  options: Pick<TrainingSetOptions, 'valSplit' | 'batchSize' | 'seed' | 'gradAccum' | 'groupByLength'>,
): TrainingSet {
  const pairs = rendered.examples.map((example, i) => ({ example, encoded: encoded[i] }));
  const { train, validation } = splitTrainValidation(pairs, options.valSplit, options.seed);
  const pad = padTokenId(tokenizer);
  const trainEncoded = train.map((p) => p.encoded);
  const grouped = options.groupByLength ?? true;
  const trainLengths = trainEncoded.map((e) => e.ids.length);
  const trainOrder = (epoch: number) => {
    const order = epochOrder(trainEncoded.length, epoch, options.seed);
    // Grouped per optimizer step, so accumulating k micro-batches still sees what one k-times larger batch
    // would.
    const stepSize = options.batchSize * (options.gradAccum ?? 1);
    return grouped
      ? groupByLength(order, trainLengths, stepSize, createRng(epochSeed(options.seed, epoch) ^ 0x6a09e667))
      : order;
  };
  // The validation loss is a sum over tokens, so its batches may be grouped whatever the setting.
  const validationEncoded = validation.map((p) => p.encoded);
  const validationOrder = groupByLength(
    validation.map((_, i) => i),
    validationEncoded.map((e) => e.ids.length),
    options.batchSize,
    createRng(options.seed),
  );
  const validationBatches = makeBatches(validationEncoded, options.batchSize, validationOrder, pad);
  return {
    data: {
      epochBatches: (epoch) => makeBatches(trainEncoded, options.batchSize, trainOrder(epoch), pad),
      validation: validationBatches,
    },
    stats: datasetStats(rendered, encoded),
    train,
    validation,
  };
}
