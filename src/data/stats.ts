/** Counts that tell the user what their data became: how many examples, tokens, and what was left out. */
import { targetCount, type EncodedExample } from './encode';
import type { RenderedDataset } from './examples';

export interface DatasetStats {
  /** Rows in the file that were read. */
  rows: number;
  /** Examples kept for training and validation. */
  examples: number;
  /** Tokens over all kept examples (BOS and EOS included, after truncation). */
  tokens: number;
  /** Tokens the model is trained to predict. */
  completionTokens: number;
  longestExample: number;
  /** Examples cut at maxLength. */
  truncatedRows: number;
  /** Examples whose completion was cut away entirely, so they teach nothing. */
  noTargetRows: number;
  /** Answers trained: one per prompt/completion row, every trained assistant turn of a conversation. */
  trainedTurns: number;
  /** Conversations of which only the last assistant turn is trained (a template that rewrites history). */
  lastTurnOnlyRows: number;
  emptyRowsSkipped: number;
  duplicateRowsSkipped: number;
  invalidRowsSkipped: number;
}

export function datasetStats(rendered: RenderedDataset, encoded: EncodedExample[]): DatasetStats {
  const skippedOfKind = (kind: string) => rendered.skipped.filter((s) => s.kind === kind).length;
  const targets = encoded.map(targetCount);
  return {
    rows: rendered.rowCount,
    examples: encoded.length,
    tokens: encoded.reduce((sum, e) => sum + e.ids.length, 0),
    completionTokens: targets.reduce((sum, t) => sum + t, 0),
    longestExample: encoded.reduce((longest, e) => Math.max(longest, e.ids.length), 0),
    truncatedRows: encoded.filter((e) => e.truncated).length,
    noTargetRows: targets.filter((t) => t === 0).length,
    trainedTurns: rendered.examples.reduce((sum, e) => sum + (e.trainedTurns?.length ?? 1), 0),
    lastTurnOnlyRows: rendered.lastTurnOnly,
    emptyRowsSkipped: skippedOfKind('empty'),
    duplicateRowsSkipped: skippedOfKind('duplicate'),
    invalidRowsSkipped: skippedOfKind('invalid'),
  };
}
