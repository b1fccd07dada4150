/**
 * What `webtune train` says and builds for the run's objective: the data as examples (SFT) or as answer pairs
 * (DPO, ORPO), the lines that describe them, and the objective's figures (TRL's names) beside the losses.
 */
import type { Dataset, Mapping } from '../data/dataset';
import { buildPairTrainingSet } from '../data/pair-set';
import type { PairMapping } from '../data/pairs';
import { buildTrainingSet, type TrainingSetOptions } from '../data/training-set';
import type { ObjectiveName } from '../engine/objective';
import type { Tokenizer } from '../engine/tokenizer';
import type { TrainingData } from '../engine/train';
import { describeObjective } from '../formats/adapter-info';

/** Rows left out of a pairs dataset that are listed one by one; the rest are counted. */
const LISTED_SKIPS = 5;

export interface RunSet {
  data: TrainingData;
  /** Examples (SFT) or pairs (DPO, ORPO) in each split. */
  train: number;
  validation: number;
  tokens: number;
  /** What the set is, for the progress lines (the rows left out of a pairs file each named). */
  lines: string[];
}

/**
 * The dataset as the objective trains on it: pairs of answers for DPO and ORPO (rows that cannot make a pair
 * are named with their line), examples for SFT (a pairs file's prompts with their chosen answers).
 */
export function buildRunSet(
  dataset: Dataset,
  tokenizer: Tokenizer,
  objective: ObjectiveName,
  options: TrainingSetOptions,
  backend: string,
): RunSet & { set?: ReturnType<typeof buildTrainingSet> } {
  if (objective === 'sft') {
    const set = buildTrainingSet(dataset, tokenizer, options);
    const { stats } = set;
    const skipped = stats.duplicateRowsSkipped + stats.emptyRowsSkipped;
    const line =
      `${stats.examples} examples (${set.train.length} train, ${set.validation.length} validation), ${stats.tokens} tokens` +
      (stats.truncatedRows ? `, ${stats.truncatedRows} truncated at ${options.maxLength}` : '') +
      (skipped ? `, ${skipped} empty or duplicate rows skipped` : '') +
      (options.mapping.kind === 'pairs' ? ' (each pair as its prompt with the chosen answer)' : '') +
      `; backend: ${backend}`;
    return {
      set,
      data: set.data,
      train: set.train.length,
      validation: set.validation.length,
      tokens: stats.tokens,
      lines: [line],
    };
  }
  const { mapping, ...rest } = options;
  const set = buildPairTrainingSet(dataset, mapping as PairMapping, tokenizer, rest);
  const { stats, skipped } = set;
  const lines = [
    `${stats.pairs} pairs (${set.train.length} train, ${set.validation.length} validation), ${stats.tokens} tokens` +
      (stats.truncatedRows ? `, ${stats.truncatedRows} answers truncated at ${options.maxLength}` : '') +
      (skipped.length ? `, ${skipped.length} rows left out` : '') +
      `; backend: ${backend}`,
    ...skipped.slice(0, LISTED_SKIPS).map((s) => `left out: ${s.reason}`),
    ...(skipped.length > LISTED_SKIPS ? [`left out: ${skipped.length - LISTED_SKIPS} more rows`] : []),
  ];
  return {
    data: set.data,
    train: set.train.length,
    validation: set.validation.length,
    tokens: stats.tokens,
    lines,
  };
}

/** The line that says which objective trains, and when the data chose it, how to choose another. */
export function objectiveLine(
  objective: ObjectiveName,
  beta: number | undefined,
  chosen: boolean,
  mapping: Mapping,
): string | null {
  const named = describeObjective(objective === 'sft' ? { name: 'sft' } : { name: objective, beta });
  if (objective === 'sft')
    return mapping.kind === 'pairs' ? `objective: ${named} on the chosen answers` : null;
  return chosen
    ? `objective: ${named}, as the file holds pairs of answers (--objective orpo or sft chooses another, --beta its strength)`
    : `objective: ${named}`;
}

/** The figures shown beside a loss: the reward accuracy and margin, and ORPO's NLL and log-odds term. */
const SHOWN = ['rewards/accuracies', 'rewards/margins', 'nll_loss', 'log_odds_ratio'];

/** "  rewards/accuracies 0.750  rewards/margins 0.0123" (empty for SFT). */
export function figuresText(metrics: Record<string, number> | undefined): string {
  if (!metrics) return '';
  return SHOWN.filter((name) => name in metrics)
    .map((name) => `  ${name} ${format(name, metrics[name])}`)
    .join('');
}

const format = (name: string, value: number) =>
  name === 'rewards/accuracies' ? value.toFixed(3) : value.toFixed(4);
