/**
 * All rows of a dataset rendered as training examples. Rows that would teach nothing (an empty
 * completion), teach twice (an exact duplicate) or cannot be rendered are left out and listed with why.
 */
import { DatasetError, type Dataset } from './dataset';
import { validateMapping, type Mapping } from './layout';
import { conversationOf } from './conversation';
import { answerText } from './pair-rows';
import { cellText, renderExample, renderTemplate, type PromptFormat, type RenderedExample } from './template';

export interface Example extends RenderedExample {
  /** Index of the source row in `dataset.rows`. */
  row: number;
  /** 1-based line of the source row in the file. */
  line: number;
}

export interface SkippedExample {
  row: number;
  line: number;
  kind: 'empty' | 'duplicate' | 'invalid';
  reason: string;
}

export interface RenderedDataset {
  examples: Example[];
  skipped: SkippedExample[];
  /** Rows in the dataset, kept or not. */
  rowCount: number;
  /**
   * Conversations of several assistant turns of which only the last is trained, because the chat template
   * does not render a conversation's beginning the same once it goes on (see conversation.ts).
   */
  lastTurnOnly: number;
}

/** Throws a DatasetError when the mapping does not fit the columns, or when no row is left to train on. */
export function renderDataset(dataset: Dataset, mapping: Mapping, format: PromptFormat): RenderedDataset {
  validateMapping(mapping, dataset.columns);
  const examples: Example[] = [];
  const skipped: SkippedExample[] = [];
  const seen = new Set<string>();
  dataset.rows.forEach((source, row) => {
    const line = dataset.rowLines[row] ?? row + 1;
    // A sheet's rows are numbered as the spreadsheet shows them; a text file's by the line an editor shows.
    const where = dataset.format === 'xlsx' || dataset.format === 'ods' ? 'Row' : 'Line';
    const skip = (kind: SkippedExample['kind'], reason: string) =>
      skipped.push({ row, line, kind, reason: `${where} ${line}: ${reason}` });
    try {
      const nothing = nothingToLearn(source, mapping);
      if (nothing) {
        skip('empty', nothing);
        return;
      }
      const example = renderExample(source, mapping, format);
      const key = example.segments.map((s) => `${s.trained ? 1 : 0}${s.text}`).join('\u0000');
      if (seen.has(key)) {
        skip('duplicate', 'the same example appears earlier in the file; it is used once.');
        return;
      }
      seen.add(key);
      examples.push({ ...example, row, line });
    } catch (error) {
      if (!(error instanceof DatasetError)) throw error;
      skip('invalid', error.message);
    }
  });
  if (examples.length === 0) {
    const first = skipped[0];
    throw new DatasetError(
      `No row gave a training example.${first ? ` ${first.reason}` : ''} Check the column mapping or the file.`,
      first?.line,
    );
  }
  const lastTurnOnly = examples.filter((e) => e.lastTurnOnly).length;
  return { examples, skipped, rowCount: dataset.rows.length, lastTurnOnly };
}

/** Why a row teaches nothing (an empty completion, no trained turn), or null when it teaches something. */
function nothingToLearn(row: Dataset['rows'][number], mapping: Mapping): string | null {
  if (mapping.kind === 'text')
    return cellText(row, mapping.column).trim() === ''
      ? 'the document is empty, so there is nothing to learn from this row.'
      : null;
  if (mapping.kind === 'pairs')
    return answerText(row[mapping.chosen]).trim() === ''
      ? `the chosen answer ('${mapping.chosen}') is empty, so there is nothing to learn from this row.`
      : null;
  if (mapping.kind === 'template')
    return renderTemplate(mapping.completionTemplate, row).trim() === ''
      ? 'the completion is empty, so there is nothing to learn from this row.'
      : null;
  const { messages, trained } = conversationOf(row, mapping);
  if (trained.length === 0)
    return 'every assistant turn has "weight": 0, so there is nothing to learn from this conversation.';
  return trained.every((i) => messages[i].content.trim() === '')
    ? 'the assistant turns are empty, so there is nothing to learn from this conversation.'
    : null;
}
