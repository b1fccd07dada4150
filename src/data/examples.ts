/**
 * All rows of a dataset rendered as training examples. Rows that would teach nothing (an empty
 * completion), teach twice (an exact duplicate) or cannot be rendered are left out and listed with why.
 */
import { DatasetError, type Dataset } from './dataset';
import { validateMapping, type Mapping } from './layout';
import {
  renderExample,
  renderTemplate,
  splitConversation,
  type PromptFormat,
  type RenderedExample,
} from './template';

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
      if (completionText(source, mapping).trim() === '') {
        skip('empty', 'the completion is empty, so there is nothing to learn from this row.');
        return;
      }
      const example = renderExample(source, mapping, format);
      const key = `${example.prompt}\u0000${example.completion}`;
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
  return { examples, skipped, rowCount: dataset.rows.length };
}

function completionText(row: Dataset['rows'][number], mapping: Mapping): string {
  return mapping.kind === 'chat'
    ? splitConversation(row).answer
    : renderTemplate(mapping.completionTemplate, row);
}
