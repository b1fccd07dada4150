/**
 * The open dataset when it is preference pairs (a 'pairs' mapping): each prompt with its chosen and its
 * rejected answer, previewed side by side; split into training and validation pairs as DPO and ORPO will
 * see them (data/pair-set.ts), counted once a tokenizer is known. SFT on the same file trains the chosen
 * answers through the ordinary rows (dataset-session.ts); this is what the preference objectives use.
 */
import { splitTrainValidation, type PromptFormat } from '../data';
import type { Dataset } from '../data';
import { buildPairTrainingSet, type PairTrainingSet } from '../data/pair-set';
import { renderPairs, type PairExample, type PairMapping, type RenderedPairs } from '../data/pairs';
import type { Tokenizer } from '../engine/tokenizer';
import { previewExample, shorten } from './dataset-preview';
import type { DatasetSettings, PreparedDataset } from './protocol';

/** Pairs the preview shows, and rows left out it lists with why. */
const PREVIEW_PAIRS = 5;
const SKIPPED_SHOWN = 5;

export class PairData {
  private rendered: RenderedPairs | null = null;
  /** Tokenised with batches of one pair, for the counts; null until a tokenizer is known. */
  private counted: PairTrainingSet | null = null;

  constructor(
    private readonly dataset: Dataset,
    readonly mapping: PairMapping,
    private readonly settings: Pick<DatasetSettings, 'maxLength' | 'valSplit' | 'seed'>,
    private readonly format: PromptFormat,
  ) {}

  /** Every row as a pair rendered in the run's format; throws a DatasetError when no row gives one. */
  private pairs(): RenderedPairs {
    this.rendered ??= renderPairs(this.dataset, this.mapping, this.format);
    return this.rendered;
  }

  /** The pairs as the preference objectives train on them, with `batchSize` pairs a batch. */
  trainingSet(tokenizer: Tokenizer, batchSize: number, gradAccum = 1): PairTrainingSet {
    const { maxLength, valSplit, seed } = this.settings;
    return buildPairTrainingSet(this.dataset, this.mapping, tokenizer, {
      format: this.format,
      maxLength,
      valSplit,
      seed,
      batchSize,
      gradAccum,
    });
  }

  /**
   * The parts of the page's summary that pairs make their own: the first pairs (training ones first, as for
   * any dataset), the training and validation pairs, the token counts over both answers, and the rows left
   * out with why.
   */
  summary(tokenizer: Tokenizer | null): Pick<
    PreparedDataset,
    'preview' | 'stats' | 'trainExamples' | 'validationExamples'
  > & {
    skipped: string[];
  } {
    const rendered = this.pairs();
    if (tokenizer) {
      this.counted ??= this.trainingSet(tokenizer, 1);
      const { train, validation, stats, skipped } = this.counted;
      const shown = [...train, ...validation].slice(0, PREVIEW_PAIRS);
      return {
        // Marked cut when the max length cut either answer.
        preview: shown.map((p) => pairPreview(p.pair, p.chosen.truncated || p.rejected.truncated)),
        stats,
        trainExamples: train.length,
        validationExamples: validation.length,
        skipped: skipped.slice(0, SKIPPED_SHOWN).map((s) => s.reason),
      };
    }
    const { train, validation } = splitTrainValidation(
      rendered.pairs,
      this.settings.valSplit,
      this.settings.seed,
    );
    return {
      preview: [...train, ...validation].slice(0, PREVIEW_PAIRS).map((pair) => pairPreview(pair, false)),
      stats: null,
      trainExamples: train.length,
      validationExamples: validation.length,
      skipped: rendered.skipped.slice(0, SKIPPED_SHOWN).map((s) => s.reason),
    };
  }
}

/** A pair as the preview shows it: the prompt with the chosen answer, and the rejected answer beside it. */
function pairPreview(pair: PairExample, truncated: boolean): PreparedDataset['preview'][number] {
  const chosen = previewExample({ ...pair.chosen, row: pair.row, line: pair.line }, undefined);
  return {
    ...chosen,
    rejected: shorten(pair.rejected.completion, 'start'),
    truncated,
  };
}
