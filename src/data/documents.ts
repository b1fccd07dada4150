/**
 * Documents trained on as they are (continued pretraining): each document is tokenised once, as the
 * tokenizer encodes the whole text (BOS first when the tokenizer adds one), with EOS after its last token,
 * and cut into windows of at most max length tokens. Every token but the document's first is a target in
 * exactly one window: a window after the first repeats the last `overlap` tokens before its first target as
 * context (mask 0), so its first target is predicted from what came before it. No template, and no EOS or
 * BOS between windows: only a document's end has EOS, and only its start BOS.
 *
 * In Markdown a heading may start a window instead of ending one: when one of the last quarter of a window's
 * targets begins a heading line, the window ends just before the last such heading, and the next window
 * starts its targets with the heading. So a window never ends just after a heading, and a section that
 * starts near a window's end is not cut there but kept whole in the next window (when it fits there). Lines
 * inside ``` or ~~~ code fences are not headings.
 */
import { MAX_ENCODE_CHARS, type Tokenizer } from '../engine/tokenizer';
import { splitTrainValidation } from './batch';
import type { Dataset, Mapping } from './dataset';
import { isMarkdownFile } from './document-files';
import type { EncodedExample } from './encode';
import { renderDataset, type RenderedDataset } from './examples';
import { plainFormat } from './template';

export type TextMapping = Extract<Mapping, { kind: 'text' }>;

type DocumentTokenizer = Pick<Tokenizer, 'encode' | 'decode' | 'eosTokenId'>;

export interface DocumentText {
  /** The file it came from, or "row N" of a table of texts. */
  name: string;
  text: string;
  markdown: boolean;
  /** Index of its row in the dataset, and the row's line in the file. */
  row: number;
  line: number;
}

/** Where a window lies in its document's tokens: context from `contextStart`, targets `start`..`end`-1. */
export interface WindowSpan {
  contextStart: number;
  start: number;
  end: number;
}

/** A window as the trainer takes it (ids and mask), with where it lies in which document. */
export interface DocumentWindow extends EncodedExample, WindowSpan {
  /** Index into the documents. */
  document: number;
}

/** The documents of a dataset: each non-empty row's text once (empty and repeated texts are skipped). */
export function datasetDocuments(
  dataset: Dataset,
  mapping: TextMapping,
): { rendered: RenderedDataset; documents: DocumentText[] } {
  const rendered = renderDataset(dataset, mapping, plainFormat());
  const fileColumn = dataset.columns.find((c) => c.trim().toLowerCase() === 'file');
  const documents = rendered.examples.map(({ completion, row, line }) => {
    const file = fileColumn === undefined ? undefined : dataset.rows[row][fileColumn];
    const name = typeof file === 'string' && file.trim() !== '' ? file : `row ${row + 1}`;
    return { name, text: completion, markdown: isMarkdownFile(name), row, line };
  });
  return { rendered, documents };
}

/** The overlap windows use: at least 1 (the first target's context), at most half of max length. */
export function windowOverlap(overlap: number, maxLength: number): number {
  return Math.max(1, Math.min(Math.floor(overlap), Math.floor(maxLength / 2)));
}

/**
 * A document's ids: the tokenizer's encoding of the text (with its special tokens), then EOS. A text longer
 * than one encode() call takes is encoded in parts cut at a line break, later parts without special tokens.
 */
export function documentIds(text: string, tokenizer: DocumentTokenizer): number[] {
  const ids: number[] = [];
  for (let from = 0; from < text.length;) {
    let to = Math.min(text.length, from + MAX_ENCODE_CHARS);
    if (to < text.length) {
      const lineBreak = text.lastIndexOf('\n', to - 1);
      to = lineBreak > from ? lineBreak + 1 : /[\ud800-\udbff]/.test(text[to - 1]) ? to - 1 : to;
    }
    ids.push(...tokenizer.encode(text.slice(from, to), { addSpecialTokens: from === 0 }));
    from = to;
  }
  const eos = tokenizer.eosTokenId;
  if (eos !== null && ids.at(-1) !== eos) ids.push(eos);
  return ids;
}

/**
 * Windows over `length` tokens: targets 1..length-1 each in exactly one window (token 0 has nothing to be
 * predicted from); the first window starts at token 0, each later one `overlap` tokens before its first
 * target. `headingAt(i)` says token i starts a heading (Markdown), which may end a window early (see above).
 */
export function cutWindows(
  length: number,
  options: { maxLength: number; overlap: number; headingAt?: (token: number) => boolean },
): WindowSpan[] {
  const { maxLength, headingAt } = options;
  if (!Number.isInteger(maxLength) || maxLength < 2)
    throw new RangeError(`maxLength must be a whole number of at least 2 tokens, got ${maxLength}.`);
  const overlap = windowOverlap(options.overlap, maxLength);
  const spans: WindowSpan[] = [];
  for (let start = 1, context = 1; start < length; context = overlap) {
    const contextStart = start - context;
    let end = Math.min(length, contextStart + maxLength);
    if (end < length && headingAt) {
      // A window gives up at most a quarter of its targets to start the next one at a heading.
      const reach = Math.floor((end - start) / 4);
      for (let token = end - 1; token >= end - reach && token > start; token--) {
        if (headingAt(token)) {
          end = token;
          break;
        }
      }
    }
    spans.push({ contextStart, start, end });
    start = end;
  }
  return spans;
}

/** The heading lines of a Markdown text (ATX headings, "# …" to "###### …"), outside code fences. */
export function markdownHeadings(text: string): string[] {
  const headings: string[] = [];
  let fence: string | null = null;
  for (const line of text.split('\n')) {
    const marker = /^ {0,3}(`{3,}|~{3,})/.exec(line)?.[1];
    if (marker && (fence === null || (marker[0] === fence[0] && marker.length >= fence.length))) {
      fence = fence === null ? marker : null;
      continue;
    }
    if (fence === null && /^#{1,6}(?:[ \t]|$)/.test(line)) headings.push(line.trimEnd());
  }
  return headings;
}

/** Characters of a heading line compared to tell a heading from a "#" line inside a code fence. */
const HEADING_KEY = 24;

/**
 * Whether token i of a document's ids starts one of its heading lines: the token before it ends a line,
 * it begins with "#", and the line it begins is a heading outside code fences. Read from the tokens
 * themselves (decoded one by one, cached per id), so it costs nothing where no token begins with "#".
 */
export function headingTokens(
  ids: number[],
  tokenizer: DocumentTokenizer,
  headings: string[],
): (token: number) => boolean {
  const keys = new Set(headings.map((h) => h.slice(0, HEADING_KEY)));
  const pieces = new Map<number, string>();
  const piece = (id: number) => {
    let text = pieces.get(id);
    if (text === undefined) pieces.set(id, (text = tokenizer.decode([id])));
    return text;
  };
  return (token) => {
    if (token < 1 || token >= ids.length || !piece(ids[token]).startsWith('#')) return false;
    if (!piece(ids[token - 1]).endsWith('\n')) return false;
    const line = tokenizer
      .decode(ids.slice(token, token + HEADING_KEY))
      .split('\n')[0]
      .trimEnd();
    return keys.has(line.slice(0, HEADING_KEY));
  };
}

/** One document's windows: its ids cut as cutWindows says, with the heading rule for Markdown. */
export function documentWindows(
  document: Pick<DocumentText, 'text' | 'markdown'>,
  index: number,
  tokenizer: DocumentTokenizer,
  options: { maxLength: number; overlap: number },
): DocumentWindow[] {
  const ids = documentIds(document.text, tokenizer);
  const headings = document.markdown ? markdownHeadings(document.text) : [];
  const headingAt = headings.length ? headingTokens(ids, tokenizer, headings) : undefined;
  return cutWindows(ids.length, { ...options, headingAt }).map((span) => ({
    ...span,
    document: index,
    ids: ids.slice(span.contextStart, span.end),
    completionMask: ids
      .slice(span.contextStart, span.end)
      .map((_, i) => (i < span.start - span.contextStart ? 0 : 1)),
    truncated: false,
  }));
}

/** Every document's windows, and which are held out (seeded, as rows are split). */
export interface DocumentSplit {
  rendered: RenderedDataset;
  documents: DocumentText[];
  windows: DocumentWindow[];
  /** Indices into windows, each in the order of the documents. */
  train: number[];
  validation: number[];
}

export function splitWindows(
  windows: DocumentWindow[],
  valSplit: number,
  seed: number,
): { train: number[]; validation: number[] } {
  return splitTrainValidation(
    windows.map((_, i) => i),
    valSplit,
    seed,
  );
}

export function buildDocumentSplit(
  dataset: Dataset,
  mapping: TextMapping,
  tokenizer: DocumentTokenizer,
  options: { maxLength: number; valSplit: number; seed: number },
): DocumentSplit {
  const { rendered, documents } = datasetDocuments(dataset, mapping);
  const windows = documents.flatMap((document, index) =>
    documentWindows(document, index, tokenizer, { maxLength: options.maxLength, overlap: mapping.overlap }),
  );
  return { rendered, documents, windows, ...splitWindows(windows, options.valSplit, options.seed) };
}

/**
 * The windows as the examples of a rendered dataset (for the batches and counts of training-set.ts): each
 * carries its document's row and line; its text lives in its tokens only.
 */
export function windowsAsRendered(
  split: Pick<DocumentSplit, 'rendered' | 'documents' | 'windows'>,
): RenderedDataset {
  return {
    ...split.rendered,
    examples: split.windows.map((w) => {
      const { row, line } = split.documents[w.document];
      return { segments: [], prompt: '', completion: '', row, line };
    }),
  };
}

/** A window's context and targets as text, for the preview: the targets are what the decoded whole adds. */
export function windowText(
  window: Pick<EncodedExample, 'ids' | 'completionMask'>,
  tokenizer: DocumentTokenizer,
) {
  const contextTokens = window.completionMask.indexOf(1);
  const whole = tokenizer.decode(window.ids, { skipSpecialTokens: true });
  const context = tokenizer.decode(window.ids.slice(0, contextTokens), { skipSpecialTokens: true });
  return whole.startsWith(context)
    ? { context, targets: whole.slice(context.length) }
    : { context, targets: tokenizer.decode(window.ids.slice(contextTokens), { skipSpecialTokens: true }) };
}
