/**
 * What the page's Data step shows of the open dataset: the first examples as the model sees them, every
 * trained turn marked, and the layout the file was read as, with the others it fits.
 */
import {
  DatasetError,
  LAYOUT_NAMES,
  describeLayout,
  layoutMapping,
  layoutOf,
  type Dataset,
  type DetectedLayout,
  type EncodedExample,
  type Example,
  type LayoutName,
  type Mapping,
  splitTrainValidation,
} from '../data';
import { rowAsShot } from '../data/chat-prompt';
import { labelSummary, type LabelSummary } from '../data/metrics';
import type { DatasetSettings, PreparedDataset, PreviewExample } from './protocol-dataset';

/**
 * Characters of a prompt, and of a completion (of each segment of a conversation), that the preview sends
 * to the page; the rest is an ellipsis.
 */
export const PREVIEW_CHARS = 300;

export function previewExample(example: Example, encoded: EncodedExample | undefined): PreviewExample {
  return {
    prompt: shorten(example.prompt, 'end'),
    completion: shorten(example.completion, 'start'),
    // Context keeps its end (what the answer follows), a trained turn its start (how the answer begins).
    segments: example.segments.map(({ text, trained }) => ({
      text: shorten(text, trained ? 'start' : 'end'),
      trained,
    })),
    truncated: encoded?.truncated ?? false,
  };
}

/** The named layout the mapping is, in words ("ShareGPT conversations, 120 rows"); null for own columns. */
export function layoutInUse(
  mapping: Mapping,
  dataset: Dataset,
): { name: LayoutName; description: string } | null {
  const name = layoutOf(mapping, dataset);
  return name && { name, description: describeLayout(name, dataset.rows.length) };
}

/** Every named layout the file fits, with its mapping: what the page offers to read the file as instead. */
export function layoutsThatFit(dataset: Dataset): DetectedLayout[] {
  return LAYOUT_NAMES.flatMap((name) => {
    try {
      return [{ name, mapping: layoutMapping(name, dataset) }];
    } catch (error) {
      if (error instanceof DatasetError) return [];
      throw error;
    }
  });
}

/**
 * A preview text of at most PREVIEW_CHARS characters: its start (or, for a prompt, its end) and an ellipsis.
 */
export function shorten(text: string, keep: 'start' | 'end'): string {
  if (text.length <= PREVIEW_CHARS) return text;
  const cut = (at: number) =>
    at > 0 && at < text.length && /[\udc00-\udfff]/.test(text[at]) ? at + (keep === 'start' ? -1 : 1) : at;
  return keep === 'start'
    ? `${text.slice(0, cut(PREVIEW_CHARS - 1))}…`
    : `…${text.slice(cut(text.length - PREVIEW_CHARS + 1))}`;
}

/** What the page shows of a file whose layout is unknown: its columns, so the person can map them. */
export function unmappedSummary(
  file: { dataset: Dataset; sheets: string[] | null; sheet: string | null },
  skipped: string[],
): PreparedDataset {
  const { dataset } = file;
  return {
    format: dataset.format,
    sheets: file.sheets,
    sheet: file.sheet,
    columns: dataset.columns,
    rows: dataset.rows.length,
    mapping: null,
    detected: false,
    guess: null,
    layout: null,
    layouts: layoutsThatFit(dataset),
    preview: [],
    stats: null,
    trainExamples: 0,
    validationExamples: 0,
    skipped,
    quickPrompts: [],
    quickPromptsFrom: 'validation',
  };
}

/**
 * For a label dataset: its labels, and whether the validation split keeps every one (else a split that
 * does).
 */
export function labelsOf(
  examples: Example[],
  dataset: Dataset,
  mapping: Mapping,
  { valSplit, seed }: Pick<DatasetSettings, 'valSplit' | 'seed'>,
): LabelSummary | null {
  const answers = examples.map((e) => rowAsShot(dataset.rows[e.row], mapping).answer);
  return labelSummary(answers, valSplit, (fraction) => {
    const { train, validation } = splitTrainValidation(answers, fraction, seed);
    return { train, validation };
  });
}
