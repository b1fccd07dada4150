/**
 * The dataset flags `train` and `eval` share: which file, and which of its columns are prompt and completion.
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  checkDatasetSize,
  describeGuess,
  detectLayout,
  guessColumns,
  mappingFromColumns,
  promptFormatFor,
  unescapeTemplate,
  type ColumnGuess,
  type Dataset,
  type Mapping,
  type PromptFormat,
} from '../data';
import type { Tokenizer } from '../engine/tokenizer';
import { readDatasetFile } from '../formats/dataset-file';
import type { Values } from './args';
import { CliError } from './errors';

export const DATASET_OPTIONS = [
  'data',
  'sheet',
  'prompt-column',
  'completion-column',
  'template',
  'format',
] as const;

/** The mapping the flags, the column names or (for two columns) their values give, and the guess if any. */
export function chooseMapping(
  values: Values,
  { columns, rows }: Pick<Dataset, 'columns' | 'rows'>,
): { mapping: Mapping; guess: ColumnGuess | null } {
  const completion = values['completion-column'] as string | undefined;
  const prompt = values['prompt-column'] as string | undefined;
  const template = values.template as string | undefined;
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
  const detected = detectLayout(columns);
  if (detected) return { mapping: detected, guess: null };
  const guess = guessColumns(columns, rows);
  if (!guess) {
    throw new CliError(
      `Could not tell which columns are the prompt and the completion (columns: ${columns.join(', ')}). Pass --prompt-column and --completion-column.`,
    );
  }
  return { mapping: mappingFromColumns(guess.prompt, guess.completion), guess };
}

/** The progress line that says which columns were guessed, and how to choose others. */
export function guessLine(guess: ColumnGuess): string {
  return `columns guessed: ${describeGuess(guess)}; --prompt-column and --completion-column choose others`;
}

/**
 * The dataset in `file`; for a workbook, the sheet named by --sheet (default: its first visible one).
 * --sheet with a text file is refused rather than ignored.
 */
export async function readDataset(
  file: string,
  sheet?: string,
): Promise<{ dataset: Dataset; sheet: string | null }> {
  if (!fs.existsSync(file) || fs.statSync(file).isDirectory())
    throw new CliError(
      `Dataset not found: ${file}. Pass --data with a .csv, .tsv, .jsonl, .json, .xlsx or .ods file.`,
    );
  checkDatasetSize(fs.statSync(file).size);
  const read = await readDatasetFile(new Uint8Array(fs.readFileSync(file)), path.basename(file), sheet);
  if (sheet !== undefined && read.sheets === null)
    throw new CliError(`--sheet picks a sheet of a spreadsheet (.xlsx, .ods), and ${file} is not one.`);
  return { dataset: read.dataset, sheet: read.sheet };
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
