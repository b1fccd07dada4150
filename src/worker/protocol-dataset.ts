/**
 * The dataset's part of the page ↔ worker messages (protocol.ts re-exports it): a dropped file and its
 * settings going in, the prepared dataset (columns, layout, preview, statistics, documents) coming back.
 */
import type { ColumnGuess, DatasetStats, DetectedLayout, LayoutName, Mapping, Segment } from '../data';
import type { Shot } from '../data/chat-prompt';
import type { LabelSummary } from '../data/metrics';

/** How a dataset's rows become training examples: everything but the file, so a change sends only these. */
export interface DatasetSettings {
  /** null: detect the layout from the columns. */
  mapping: Mapping | null;
  /** Used when the model has a chat template. */
  useChatTemplate: boolean;
  maxLength: number;
  valSplit: number;
  seed: number;
  /**
   * A workbook's sheet, by name (null or absent: the first visible one). It is read when the file is opened:
   * another sheet is opened by sending the file again (openDataset).
   */
  sheet?: string | null;
}

/** A dataset file, sent to the worker once; it stays there for every later change of settings. */
export interface OpenDatasetRequest {
  bytes: Uint8Array;
  fileName: string;
  settings: DatasetSettings;
}

/** How far the worker is in tokenising the open dataset's examples (reported while it prepares them). */
export interface DatasetProgress {
  done: number;
  total: number;
}

export interface PreparedDataset {
  format: string;
  /** A workbook's sheets in order, for the sheet picker (absent or null for a text file). */
  sheets?: string[] | null;
  /** The sheet the rows come from (absent or null for a text file). */
  sheet?: string | null;
  columns: string[];
  /** Rows read from the file. */
  rows: number;
  /**
   * null when neither the columns' names nor (for two columns) their values said which is the prompt and
   * which the completion.
   */
  mapping: Mapping | null;
  /** The mapping is the layout the column names say. */
  detected: boolean;
  /** The mapping is guessed from a two-column file's values (null when detected, chosen or unknown). */
  guess: ColumnGuess | null;
  /** The named layout the mapping is ("ShareGPT conversations, 120 rows"); null for own columns. */
  layout?: { name: LayoutName; description: string } | null;
  /** Every named layout the file fits, with its mapping: the page offers them to read the file as instead. */
  layouts?: DetectedLayout[];
  /**
   * First examples exactly as the model sees them: prompt (context) and completion (the last answer), and
   * with `segments` every trained turn of a conversation. Before a model is loaded, as plain text (no chat
   * template) and never marked truncated.
   */
  preview: (Omit<PreviewExample, 'segments'> &
    Partial<Pick<PreviewExample, 'segments'>> & { window?: WindowPlace })[];
  /**
   * Token counts: null until a model is loaded (its tokenizer counts them), or when there is no mapping. For
   * preference pairs they count both answers of each pair, and `pairs` the pairs kept.
   */
  stats: (DatasetStats & { pairs?: number }) | null;
  /** Examples (for preference pairs: pairs) for training and held out. */
  trainExamples: number;
  validationExamples: number;
  skipped: string[];
  /** A few held-out rows as the message to type and the answer the data expects. */
  quickPrompts: Shot[];
  /** 'training' when there is no validation split to take them from. */
  quickPromptsFrom: 'validation' | 'training';
  /**
   * When the completions are a few labels: their counts, and whether the validation split keeps every one.
   */
  labels?: LabelSummary | null;
  /** Documents trained on as text (a 'text' mapping): what they are, and their windows once cut. */
  documents?: DocumentsSummary;
}

/** Where a previewed window lies: its document, its targets' token range, and its context before them. */
export interface WindowPlace {
  document: string;
  /** Token positions in the document: targets from `start` up to `end`. */
  start: number;
  end: number;
  /** Tokens before `start` the window repeats as context (the overlap; 1 for a document's first). */
  contextTokens: number;
  heldOut: boolean;
}

export interface DocumentsSummary {
  count: number;
  characters: number;
  /** The first few documents' names. */
  names: string[];
  /** null until a model's tokenizer has cut them. */
  windows: number | null;
  heldOut: number | null;
  maxLength: number;
  /** The overlap windows use (at most half of max length). */
  overlap: number;
}

/** One example of the preview, as the model sees it. */
export interface PreviewExample {
  prompt: string;
  completion: string;
  /** The whole example, context and trained segments in order (each shortened like prompt and completion). */
  segments: Segment[];
  truncated: boolean;
  /**
   * Preference pairs: the rejected answer (the prompt and `completion` are the chosen one's), shortened like
   * a completion.
   */
  rejected?: string;
}
