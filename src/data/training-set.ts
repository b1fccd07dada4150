/**
 * From a parsed dataset to what the trainer consumes: rendered, tokenised, split into training and
 * validation examples, and batched in a seeded order per epoch (so a run can resume mid-epoch).
 */
import type { TrainingData } from '../engine/train';
import type { Tokenizer } from '../engine/tokenizer';
import { epochOrder, makeBatches, padTokenId, splitTrainValidation } from './batch';
import type { Dataset } from './dataset';
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
}

export interface TrainingSet {
  data: TrainingData;
  stats: DatasetStats;
  train: { example: Example; encoded: EncodedExample }[];
  validation: { example: Example; encoded: EncodedExample }[];
}

export function buildTrainingSet(dataset: Dataset, tokenizer: Tokenizer, options: TrainingSetOptions): TrainingSet {
  const rendered = renderDataset(dataset, options.mapping, options.format);
  const encoded = encodeExamples(rendered.examples, tokenizer, { maxLength: options.maxLength, addEos: options.format.addEos });
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
  options: Pick<TrainingSetOptions, 'valSplit' | 'batchSize' | 'seed'>,
): TrainingSet {
  const pairs = rendered.examples.map((example, i) => ({ example, encoded: encoded[i] }));
  const { train, validation } = splitTrainValidation(pairs, options.valSplit, options.seed);
  const pad = padTokenId(tokenizer);
  const trainEncoded = train.map((p) => p.encoded);
  const validationBatches = makeBatches(validation.map((p) => p.encoded), options.batchSize, validation.map((_, i) => i), pad);
  return {
    data: {
      epochBatches: (epoch) => makeBatches(trainEncoded, options.batchSize, epochOrder(trainEncoded.length, epoch, options.seed), pad),
      validation: validationBatches,
    },
    stats: datasetStats(rendered, encoded),
    train,
    validation,
  };
}
