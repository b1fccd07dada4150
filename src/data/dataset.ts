/** The shape every dataset file is read into, and the error type whose message is shown to the user. */
import type { ChatMessage } from '../engine/tokenizer';

export type { ChatMessage };

export type DatasetFormat = 'csv' | 'tsv' | 'jsonl' | 'json';

/** One example as the file holds it: column → cell text, or chat messages for a `messages` column. */
export type Row = Record<string, string | ChatMessage[]>;

export interface SkippedRow {
  /** 1-based line in the file where the row starts, as an editor shows it. */
  line: number;
  reason: string;
}

export interface Dataset {
  format: DatasetFormat;
  /** Column names in file order (for JSON, in order of first appearance). */
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
