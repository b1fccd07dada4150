/** The shape every dataset file is read into, and the error type whose message is shown to the user. */
import type { ChatMessage } from '../engine/tokenizer';

export type { ChatMessage };

/** 'text': plain text or Markdown documents (.txt, .md), one row per file (see documents.ts). */
export type DatasetFormat = 'csv' | 'tsv' | 'jsonl' | 'json' | 'text';

/**
 * A chat message as a dataset holds it: `weight` 0 on an assistant message leaves that turn untrained
 * (OpenAI's fine-tuning format); absent or 1 trains it.
 */
export interface DataMessage extends ChatMessage {
  weight?: 0 | 1;
}

/**
 * One example as the file holds it: column → cell text, or chat messages for a column of conversations
 * (`messages`, ShareGPT's `conversations`, TRL's conversational `prompt`/`completion`). A row holds only
 * the columns it has (a JSON object without a field has no key for it); a missing column reads as empty
 * text.
 */
export type Row = Record<string, string | DataMessage[]>;

export interface SkippedRow {
  /** 1-based line in the file where the row starts, as an editor shows it. */
  line: number;
  reason: string;
}

/** Which columns are the prompt and which the completion (see layout.ts and layouts.ts). */
export type Mapping =
  | {
      kind: 'template';
      promptTemplate: string;
      completionTemplate: string;
      /** A system text (Alpaca's `system`): a system message through a chat template, else a line first. */
      systemTemplate?: string;
    }
  /**
   * Rows hold conversations: every assistant turn is trained (see conversation.ts). `messages` names the
   * column (default: `messages`); with `completion` (TRL's conversational prompt/completion) the
   * conversation is `messages` then `completion`, and only the completion's assistant turns are trained.
   */
  | { kind: 'chat'; messages?: string; completion?: string }
  /**
   * Each row's `column` is a document trained on as it is (continued pretraining): cut into windows of max
   * length tokens, each repeating `overlap` tokens of the one before as context (see documents.ts).
   */
  | { kind: 'text'; column: string; overlap: number }
  /**
   * Preference pairs (DPO, ORPO): each row's `prompt` with a `chosen` and a `rejected` answer, texts or lists
   * of chat messages (see pairs.ts).
   */
  | { kind: 'pairs'; prompt: string; chosen: string; rejected: string };

export interface Dataset {
  /** A text format, or the spreadsheet workbook a sheet was read from. */
  format: DatasetFormat | 'xlsx' | 'ods';
  /** Column names in file order (for JSON, in order of first appearance); at most MAX_COLUMNS. */
  columns: string[];
  rows: Row[];
  /** The 1-based line each row starts on, parallel to `rows`, for messages about a row. */
  rowLines: number[];
  /** Rows that were read but left out, with why. */
  skipped: SkippedRow[];
}

/**
 * A problem with the user's file. The message is meant to be shown as is: what is wrong, where
 * (the line an editor shows), and what to do about it.
 */
export class DatasetError extends Error {
  override readonly name = 'DatasetError';
  constructor(
    message: string,
    /** 1-based line in the file, when the problem has one place. */
    readonly line?: number,
  ) {
    super(message);
  }
}

/** Most distinct columns (JSON fields) a dataset may have: every name is kept, and the page lists them. */
export const MAX_COLUMNS = 1000;

/** Most text one cell may hold (UTF-8 bytes): a training example is cut at max length anyway. */
export const MAX_CELL_BYTES = 1024 * 1024;

/**
 * Refuses a file with more distinct column names than MAX_COLUMNS, naming where the first one past the limit
 * is.
 */
export function tooManyColumns(where: string, name: string, line?: number): DatasetError {
  return new DatasetError(
    `${where} adds the column '${excerpt(name, 30)}', more than ${MAX_COLUMNS.toLocaleString('en-US')} different column names in all; ` +
      `webtune reads at most ${MAX_COLUMNS.toLocaleString('en-US')}. Give every row the same few fields (for example "prompt" and "completion") ` +
      'and put varying data inside them instead of in field names.',
    line,
  );
}

/**
 * Throws when a cell holds more than MAX_CELL_BYTES of text; `where` names it ("Row 14, column 'answer'").
 */
export function checkCellSize(text: string, where: () => string, line?: number): void {
  // A UTF-16 code unit is at most 3 bytes of UTF-8, so short texts need no counting.
  if (text.length * 3 <= MAX_CELL_BYTES) return;
  const bytes = utf8Length(text);
  if (bytes <= MAX_CELL_BYTES) return;
  throw new DatasetError(
    `${where()} holds ${(bytes / (1024 * 1024)).toFixed(1)} MB of text; the most a cell can hold is ${MAX_CELL_BYTES / (1024 * 1024)} MB. ` +
      'Shorten it or remove the row.',
    line,
  );
}

function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      bytes += 4; // a surrogate pair is one 4-byte character
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/** Name of the column that holds chat messages, matched case-insensitively like every layout name. */
export function messagesColumn(columns: string[]): string | undefined {
  return columns.find((c) => c.toLowerCase() === 'messages');
}

/** Maps character offsets in a text to 1-based line numbers (\n, \r\n and lone \r all end a line). */
export function lineIndex(text: string): (offset: number) => number {
  const starts = [0];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10 || (c === 13 && text.charCodeAt(i + 1) !== 10)) starts.push(i + 1);
  }
  return (offset) => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
}

/** Short quote of user text for messages: first `max` characters, on one line. */
export function excerpt(text: string, max = 40): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}
