/**
 * Preference pairs: a prompt with a chosen and a rejected answer, what DPO and ORPO learn from (see
 * docs/objectives.md). A row holds three columns (`PairMapping`): TRL's `prompt`, `chosen`, `rejected`, as
 * text or as lists of chat messages, or OpenAI's preference JSONL, `input` ({messages}) with
 * `preferred_output` and `non_preferred_output` (lists of one assistant message).
 *
 * Each answer is rendered after the prompt exactly as a prompt/completion example would be (through the
 * model's chat template when the run uses it), so a pair is two rendered examples with the same prompt. A
 * pair that can teach no preference (an answer empty or missing, both answers the same) is left out and
 * listed with its row, like an empty completion in an SFT dataset; so is a pair repeated earlier in the file.
 */
import { DatasetError, excerpt, type Dataset, type Row } from './dataset';
import type { SkippedExample } from './examples';
import { answerText, pairAnswer, validatePairMapping, type AnswerName, type PairMapping } from './pair-rows';
import { renderExample, type PromptFormat, type RenderedExample } from './template';

export type { PairMapping };
export { validatePairMapping };

export interface PairExample {
  /** Index of the source row in `dataset.rows`. */
  row: number;
  /** 1-based line of the source row (a sheet's row number). */
  line: number;
  /** The prompt followed by the chosen answer, and by the rejected one: the same prompt in both. */
  chosen: RenderedExample;
  rejected: RenderedExample;
}

export interface RenderedPairs {
  pairs: PairExample[];
  skipped: SkippedExample[];
  /** Rows in the dataset, kept or not. */
  rowCount: number;
}

/** The answers of a pair, in the words the page and the messages use. */
const ANSWERS: readonly AnswerName[] = ['chosen', 'rejected'];

/** Every row as a pair of examples; rows that teach no preference are listed in `skipped` with why. */
export function renderPairs(dataset: Dataset, mapping: PairMapping, format: PromptFormat): RenderedPairs {
  validatePairMapping(mapping, dataset.columns);
  const pairs: PairExample[] = [];
  const skipped: SkippedExample[] = [];
  const seen = new Set<string>();
  const where = dataset.format === 'xlsx' || dataset.format === 'ods' ? 'Row' : 'Line';
  dataset.rows.forEach((source, row) => {
    const line = dataset.rowLines[row] ?? row + 1;
    const skip = (kind: SkippedExample['kind'], reason: string) =>
      skipped.push({ row, line, kind, reason: `${where} ${line}: ${reason}` });
    try {
      const empty = missingAnswer(source, mapping);
      if (empty) return skip('empty', empty);
      const [chosen, rejected] = ANSWERS.map((answer) => renderAnswer(source, mapping, answer, format));
      if (chosen.completion === rejected.completion)
        return skip(
          'invalid',
          `the chosen and the rejected answer are the same ("${excerpt(chosen.completion)}"), so the pair ` +
            'teaches no preference. Correct one of them or remove the row.',
        );
      const key = [chosen.prompt, chosen.completion, rejected.completion].join('\u0000');
      if (seen.has(key))
        return skip('duplicate', 'the same pair appears earlier in the file; it is used once.');
      seen.add(key);
      pairs.push({ row, line, chosen, rejected });
    } catch (error) {
      if (!(error instanceof DatasetError)) throw error;
      skip('invalid', error.message);
    }
  });
  if (pairs.length === 0) {
    const first = skipped[0];
    throw new DatasetError(
      `No row gave a preference pair.${first ? ` ${first.reason}` : ''} Check the columns or the file.`,
      first?.line,
    );
  }
  return { pairs, skipped, rowCount: dataset.rows.length };
}

/** Why a row's answers cannot make a pair (one is missing or empty), or null when both have text. */
function missingAnswer(row: Row, mapping: PairMapping): string | null {
  for (const answer of ANSWERS) {
    const column = mapping[answer];
    const cell = row[column];
    if (cell === undefined)
      return `the row has no '${column}' (the ${answer} answer), so it makes no pair. Add it or remove the row.`;
    if (answerText(cell).trim() === '')
      return `the ${answer} answer ('${column}') is empty, so the pair teaches no preference. Write it or remove the row.`;
  }
  return null;
}

/** The prompt followed by one answer, rendered like a prompt/completion example. */
function renderAnswer(
  row: Row,
  mapping: PairMapping,
  answer: AnswerName,
  format: PromptFormat,
): RenderedExample {
  const one = pairAnswer(row, mapping, answer);
  return renderExample(one.row, one.mapping, format);
}
