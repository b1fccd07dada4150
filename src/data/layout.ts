/**
 * Which columns are the prompt and which the completion. Common layouts are recognised by their
 * column names (in any letter case); two other columns are guessed from what they hold; anything else is
 * mapped explicitly by the user.
 */
import { DatasetError, messagesColumn, type Mapping, type Row } from './dataset';
import { detectNamedLayout } from './layouts';
import { validatePairMapping } from './pair-rows';
import { MAX_LABELS } from './metrics';
import { templateColumns } from './template';

export type { Mapping };

/**
 * The mapping for a recognised layout (see layouts.ts), or null when the columns do not say. With the rows,
 * TRL's conversational prompt/completion (lists of messages) is told from plain prompt/completion text.
 */
export function detectLayout(columns: string[], rows?: readonly Row[]): Mapping | null {
  return detectNamedLayout({ columns, rows })?.mapping ?? null;
}

/**
 * How the prompt and the completion of a two-column file were told apart when the names did not say:
 * `labels` when only the completion holds a few short values (a label, like a team to route a ticket to);
 * otherwise by their order, left the prompt and right the completion — `free-text` when neither column holds
 * labels, `both-labels` when both do.
 */
export interface ColumnGuess {
  prompt: string;
  completion: string;
  basis: 'labels' | 'free-text' | 'both-labels';
}

/** A label is at most this long (a team, a sentiment, a category; not a sentence of an answer). */
const LABEL_CHARS = 40;

/**
 * The column holds labels: its non-empty cells take at most MAX_LABELS short values, and few next to the
 * cells (each used twice on average), so a column of distinct short answers is not taken for labels.
 */
function holdsLabels(rows: Row[], column: string): boolean {
  const values = new Set<string>();
  let cells = 0;
  for (const row of rows) {
    const cell = row[column];
    if (cell === undefined || cell === '') continue;
    if (typeof cell !== 'string') return false;
    const value = cell.trim();
    if (value === '') continue;
    if (value.length > LABEL_CHARS) return false;
    cells++;
    values.add(value);
  }
  return values.size > 0 && values.size <= MAX_LABELS && 2 * values.size <= cells;
}

/**
 * For a file of exactly two columns whose names are not a known layout: which is the prompt and which the
 * completion. Null for any other file.
 */
export function guessColumns(columns: string[], rows: Row[]): ColumnGuess | null {
  if (columns.length !== 2 || detectLayout(columns)) return null;
  const [left, right] = columns;
  const [leftLabels, rightLabels] = [holdsLabels(rows, left), holdsLabels(rows, right)];
  if (leftLabels !== rightLabels)
    return leftLabels
      ? { prompt: right, completion: left, basis: 'labels' }
      : { prompt: left, completion: right, basis: 'labels' };
  return { prompt: left, completion: right, basis: leftLabels ? 'both-labels' : 'free-text' };
}

/** The guess in words, for the page and the CLI: "Message is the prompt, Team the answer (…)". */
export function describeGuess({ prompt, completion, basis }: ColumnGuess): string {
  const why =
    basis === 'labels'
      ? `${completion} holds a few short values, like labels`
      : `by the column order: ${basis === 'free-text' ? 'neither column holds' : 'both columns hold'} a few short values`;
  return `${prompt} is the prompt, ${completion} the answer (${why})`;
}

/**
 * A mapping from explicit column choices (e.g. --prompt-column/--completion-column); no prompt column trains
 * on the text alone.
 */
export function mappingFromColumns(
  promptColumn: string | null,
  completionColumn: string,
): Extract<Mapping, { kind: 'template' }> {
  return {
    kind: 'template',
    promptTemplate: promptColumn ? `{${promptColumn}}` : '',
    completionTemplate: `{${completionColumn}}`,
  };
}

/** Throws a DatasetError naming what does not fit: an unknown column, a stray brace, an empty completion. */
export function validateMapping(mapping: Mapping, columns: string[]): void {
  const list = columns.join(', ');
  if (mapping.kind === 'chat') {
    const needed = mapping.messages ?? messagesColumn(columns) ?? 'messages';
    for (const column of [needed, mapping.completion ?? needed]) {
      if (!columns.includes(column))
        throw new DatasetError(
          `The chat layout needs a '${column}' column holding each conversation, but the file has: ${list}. Choose a prompt and a completion column instead.`,
        );
    }
    return;
  }
  if (mapping.kind === 'pairs') return validatePairMapping(mapping, columns);
  if (mapping.kind === 'text') {
    if (!columns.includes(mapping.column))
      throw new DatasetError(
        `The documents are read from the column '${mapping.column}', but the file has: ${list}. Choose a prompt and a completion column instead.`,
      );
    if (!Number.isInteger(mapping.overlap) || mapping.overlap < 1)
      throw new DatasetError(
        `The overlap between windows must be a whole number of at least 1 token, not ${mapping.overlap}.`,
      );
    return;
  }
  if (mapping.completionTemplate.trim() === '') {
    throw new DatasetError(
      'The completion template is empty. It says what the model should learn to write, for example {answer}.',
    );
  }
  for (const template of [mapping.promptTemplate, mapping.completionTemplate, mapping.systemTemplate ?? '']) {
    for (const name of templateColumns(template)) {
      if (columns.includes(name)) continue;
      const sameLetters = columns.find((c) => c.toLowerCase() === name.toLowerCase());
      const hint = sameLetters === undefined ? '' : ` Did you mean {${sameLetters}}?`;
      throw new DatasetError(
        `The template uses {${name}} but the file has no column '${name}'. Columns: ${list}.${hint}`,
      );
    }
  }
}
