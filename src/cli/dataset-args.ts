/**
 * The dataset flags `train` and `eval` share: which file, and which of its columns are prompt and completion.
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  checkDatasetSize,
  decodeDatasetBytes,
  describeGuess,
  describeLayout,
  detectNamedLayout,
  guessColumns,
  layoutMapping,
  parseLayoutName,
  mappingFromColumns,
  promptFormatFor,
  unescapeTemplate,
  type ColumnGuess,
  type Dataset,
  type LayoutName,
  type DatasetStats,
  type Mapping,
  type PromptFormat,
} from '../data';
import type { Tokenizer } from '../engine/tokenizer';
import { number, type Options, type Values } from './args';
import { isDocumentFile, parseDocuments } from '../data/document-files';
import { RUN_DEFAULTS } from '../data/defaults';
import { readDatasetFile } from '../formats/dataset-file';
import { CliError } from './errors';

export const DATASET_OPTIONS = [
  'data',
  'layout',
  'sheet',
  'prompt-column',
  'completion-column',
  'chosen-column',
  'rejected-column',
  'template',
  'format',
] as const;

/** The help lines of the pair columns (train, eval, export --format trl). */
export const PAIR_COLUMNS_HELP = `  --prompt-column C --chosen-column C --rejected-column C
                        a preference dataset's columns: the prompt, the better answer and the worse one
                        (detected when named prompt/chosen/rejected, or OpenAI's preference JSONL)`;

/** --data, repeatable for documents (train and eval), and --overlap between a document's windows. */
export const DATA_OPTIONS: Options = {
  data: { type: 'string', multiple: true },
  overlap: { type: 'string' },
};

export const DOCUMENTS_HELP = `Documents: --data notes.md (or .txt; repeat --data for several files), or a .jsonl/.json/.csv of
  only a text column, trains on the text itself in windows of --max-length tokens, held out by window
  --overlap ${RUN_DEFAULTS.overlap}   tokens each window repeats from the one before, as context`;

/** The --data files (at least one). */
export function dataFiles(values: Values, command: string): string[] {
  const files = ((values.data as string[] | undefined) ?? []).filter((f) => f !== '');
  if (files.length === 0) throw new CliError(`--data is missing. See webtune ${command} --help.`);
  return files;
}

/** What the files are called in progress lines and in the adapter: "notes.md", or "notes.md + story.txt". */
export function datasetName(files: string[]): string {
  return files.map((f) => path.basename(f)).join(' + ');
}

/**
 * The mapping the flags, the layout (--layout, or the one the column names say), or (for two columns) their
 * values give; the guess if any, and the layout's name with a sentence for the progress line.
 */
/** A document mapping with --overlap when given. */
function withOverlap(values: Values, mapping: Extract<Mapping, { kind: 'text' }>): Mapping {
  return { ...mapping, overlap: number(values, 'overlap', mapping.overlap, { min: 1, integer: true }) };
}

export function chooseMapping(
  values: Values,
  { columns, rows }: Pick<Dataset, 'columns' | 'rows'>,
): { mapping: Mapping; guess: ColumnGuess | null; layout?: string } {
  if (values['chosen-column'] !== undefined || values['rejected-column'] !== undefined)
    return { mapping: pairColumns(values, columns), guess: null };
  const completion = values['completion-column'] as string | undefined;
  const prompt = values['prompt-column'] as string | undefined;
  const template = values.template as string | undefined;
  const layout = values.layout as string | undefined;
  if (layout !== undefined) {
    const flag =
      template !== undefined
        ? '--template'
        : prompt !== undefined
          ? '--prompt-column'
          : '--completion-column';
    if (template !== undefined || prompt !== undefined || completion !== undefined)
      throw new CliError(`Give either --layout or ${flag}, not both: a layout names its columns.`);
    try {
      const name = parseLayoutName(layout);
      const mapping = layoutMapping(name, { columns, rows });
      return {
        mapping: mapping.kind === 'text' ? withOverlap(values, mapping) : mapping,
        guess: null,
        layout: layoutLine(name, rows.length, false),
      };
    } catch (error) {
      throw new CliError(`--layout ${layout}: ${(error as Error).message}`);
    }
  }
  if (template !== undefined && prompt !== undefined)
    throw new CliError('Give either --template or --prompt-column, not both.');
  if ((template !== undefined || prompt !== undefined) && completion === undefined) {
    throw new CliError(
      `--completion-column is needed with ${template !== undefined ? '--template' : '--prompt-column'}. Columns: ${columns.join(', ')}.`,
    );
  }
  // Named columns are checked here so the message names the flag the user typed, not a template they never
  // wrote.
  for (const [flag, column] of [
    ['--prompt-column', prompt],
    ['--completion-column', completion],
  ] as const) {
    if (column !== undefined && !columns.includes(column))
      throw new CliError(
        `The file has no column '${column}' (from ${flag}). Columns: ${columns.join(', ')}.`,
      );
  }
  if (template !== undefined)
    return {
      mapping: {
        kind: 'template',
        promptTemplate: unescapeTemplate(template),
        completionTemplate: `{${completion}}`,
      },
      guess: null,
    };
  if (completion !== undefined)
    return { mapping: mappingFromColumns(prompt ?? null, completion), guess: null };
  const detected = detectNamedLayout({ columns, rows });
  if (detected?.mapping.kind === 'text')
    return {
      mapping: withOverlap(values, detected.mapping),
      guess: null,
      layout: layoutLine(detected.name, rows.length, true),
    };
  if (values.overlap !== undefined)
    throw new CliError(
      '--overlap applies to documents (.txt, .md, or a file of only a text column); this file has columns.',
    );
  if (detected)
    return { mapping: detected.mapping, guess: null, layout: layoutLine(detected.name, rows.length, true) };
  const guess = guessColumns(columns, rows);
  if (!guess) {
    throw new CliError(
      `Could not tell which columns are the prompt and the completion (columns: ${columns.join(', ')}). Pass --prompt-column and --completion-column.`,
    );
  }
  return { mapping: mappingFromColumns(guess.prompt, guess.completion), guess };
}

/** --prompt-column, --chosen-column and --rejected-column as a pairs mapping, each column checked. */
function pairColumns(values: Values, columns: string[]): Mapping {
  for (const flag of ['layout', 'template', 'completion-column'])
    if (values[flag] !== undefined)
      throw new CliError(
        `Give either --${flag} or --chosen-column and --rejected-column, not both: a pair has two answers, not one completion.`,
      );
  const [prompt, chosen, rejected] = ['prompt-column', 'chosen-column', 'rejected-column'].map(
    (flag) => values[flag] as string | undefined,
  );
  if (prompt === undefined || chosen === undefined || rejected === undefined)
    throw new CliError(
      `A preference dataset needs three columns: pass --prompt-column, --chosen-column and --rejected-column together. Columns: ${columns.join(', ')}.`,
    );
  for (const [flag, column] of [
    ['--prompt-column', prompt],
    ['--chosen-column', chosen],
    ['--rejected-column', rejected],
  ] as const)
    if (!columns.includes(column))
      throw new CliError(
        `The file has no column '${column}' (from ${flag}). Columns: ${columns.join(', ')}.`,
      );
  return { kind: 'pairs', prompt, chosen, rejected };
}

/** The progress line naming the layout: "layout: ShareGPT conversations, 120 rows (sharegpt, detected…)". */
function layoutLine(name: LayoutName, rows: number, detected: boolean): string {
  return `layout: ${describeLayout(name, rows)} (${name}${detected ? ', detected; --layout NAME reads it as another' : ''})`;
}

/** The progress line that says which columns were guessed, and how to choose others. */
export function guessLine(guess: ColumnGuess): string {
  return `columns guessed: ${describeGuess(guess)}; --prompt-column and --completion-column choose others`;
}

/**
 * One dataset file (for a workbook, the sheet --sheet names, by default its first visible one), or several
 * documents (.txt, .md) read as one dataset of documents. --sheet with a text file is refused rather than
 * ignored.
 */
export async function readDataset(
  files: string | string[],
  sheet?: string,
): Promise<{ dataset: Dataset; sheet: string | null }> {
  const list = typeof files === 'string' ? [files] : files;
  const read = (file: string) => {
    if (!fs.existsSync(file) || fs.statSync(file).isDirectory())
      throw new CliError(
        `Dataset not found: ${file}. Pass --data with a .csv, .tsv, .jsonl, .json, .xlsx, .ods, .txt or .md file.`,
      );
    checkDatasetSize(fs.statSync(file).size);
    return new Uint8Array(fs.readFileSync(file));
  };
  if (list.length === 1) {
    const file = await readDatasetFile(read(list[0]), path.basename(list[0]), sheet);
    if (sheet !== undefined && file.sheets === null)
      throw new CliError(`--sheet picks a sheet of a spreadsheet (.xlsx, .ods), and ${list[0]} is not one.`);
    return { dataset: file.dataset, sheet: file.sheet };
  }
  const other = list.find((file) => !isDocumentFile(file));
  if (other !== undefined)
    throw new CliError(
      `--data is given ${list.length} times, which reads documents (.txt, .md), but ${other} is not one. Pass a table of examples once.`,
    );
  if (sheet !== undefined)
    throw new CliError('--sheet picks a sheet of a spreadsheet (.xlsx, .ods), not of documents.');
  const documents = list.map((file) => ({ name: path.basename(file), text: decodeDatasetBytes(read(file)) }));
  return { dataset: parseDocuments(documents), sheet: null };
}

export type FormatChoice = 'auto' | 'chat' | 'plain';

/** --format, checked before anything is loaded. */
export function formatChoice(values: Values): FormatChoice {
  const name = (values.format as string | undefined) ?? 'auto';
  if (!['auto', 'chat', 'plain'].includes(name))
    throw new CliError(`--format must be chat or plain (got "${name}").`);
  return name as FormatChoice;
}

/** How prompts are formatted for this model: its chat template unless --format plain (or it has none). */
export function promptFormat(choice: FormatChoice, tokenizer: Tokenizer, modelName: string): PromptFormat {
  if (choice === 'chat' && !tokenizer.chatTemplate)
    throw new CliError(`${modelName} has no chat template; use --format plain.`);
  return promptFormatFor(tokenizer, choice !== 'plain');
}

/**
 * "documents: 3 files, 41 windows of ≤256 tokens, 4 held out" (the windows are the examples of `set`); rows
 * of a table are "texts".
 */
export function documentsLine(
  set: { stats: DatasetStats; validation: unknown[] },
  maxLength: number,
  format: Dataset['format'],
): string {
  const { stats } = set;
  const documents =
    stats.rows - stats.emptyRowsSkipped - stats.duplicateRowsSkipped - stats.invalidRowsSkipped;
  const unit = format === 'text' ? 'file' : 'text';
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  return (
    `documents: ${plural(documents, unit)}, ${plural(stats.examples, 'window')} of ≤${maxLength} tokens, ` +
    `${set.validation.length} held out`
  );
}
