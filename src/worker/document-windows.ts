/**
 * The open dataset when it is documents: counted without a model (documents, characters), cut into windows
 * once a tokenizer is known (a document at a time, so a long preparation reports progress and can stop),
 * split by window, and previewed as windows — where each starts, its context and the text it trains on.
 */
import { datasetStats } from '../data/stats';
import type { Dataset } from '../data';
import {
  datasetDocuments,
  documentWindows,
  splitWindows,
  windowOverlap,
  windowsAsRendered,
  windowText,
  type DocumentSplit,
  type DocumentText,
  type DocumentWindow,
  type TextMapping,
} from '../data/documents';
import type { RenderedDataset } from '../data/examples';
import { assembleTrainingSet, type TrainingSet } from '../data/training-set';
import type { Tokenizer } from '../engine/tokenizer';
import type { DatasetProgress, DatasetSettings, PreparedDataset } from './protocol';

/** Windows the preview shows. */
const PREVIEW_WINDOWS = 5;

export class DocumentWindows {
  readonly rendered: RenderedDataset;
  readonly documents: DocumentText[];
  /** Cut for the tokenizer prepare() was given; null until then. */
  private split: DocumentSplit | null = null;

  constructor(
    dataset: Dataset,
    readonly mapping: TextMapping,
    private readonly settings: Pick<DatasetSettings, 'maxLength' | 'valSplit' | 'seed'>,
  ) {
    ({ rendered: this.rendered, documents: this.documents } = datasetDocuments(dataset, mapping));
  }

  get prepared(): boolean {
    return this.split !== null;
  }

  /**
   * Tokenises and cuts each document; `pause` runs after each (reporting progress, letting a cancel in, and
   * throwing to stop).
   */
  async prepare(
    tokenizer: Tokenizer,
    pause: (progress: DatasetProgress) => Promise<void>,
    onProgress?: (progress: DatasetProgress) => void,
  ): Promise<void> {
    if (this.split) return;
    const total = this.documents.length;
    const windows: DocumentWindow[] = [];
    onProgress?.({ done: 0, total });
    for (const [index, document] of this.documents.entries()) {
      windows.push(...documentWindows(document, index, tokenizer, this.windowOptions()));
      if (index + 1 < total) await pause({ done: index + 1, total });
    }
    onProgress?.({ done: total, total });
    this.finish(windows);
  }

  /** prepare() at once, without pauses. */
  cut(tokenizer: Tokenizer): void {
    if (this.split) return;
    const options = this.windowOptions();
    this.finish(this.documents.flatMap((d, index) => documentWindows(d, index, tokenizer, options)));
  }

  private finish(windows: DocumentWindow[]): void {
    const { valSplit, seed } = this.settings;
    const { rendered, documents } = this;
    this.split = { rendered, documents, windows, ...splitWindows(windows, valSplit, seed) };
  }

  private windowOptions() {
    return { maxLength: this.settings.maxLength, overlap: this.mapping.overlap };
  }

  /** The split and batches of the windows (prepare() first). */
  trainingSet(tokenizer: Tokenizer, batchSize: number, gradAccum: number): TrainingSet {
    const split = this.split;
    if (!split) throw new Error('The documents are not cut into windows yet: load a model first.');
    const { valSplit, seed } = this.settings;
    return assembleTrainingSet(windowsAsRendered(split), split.windows, tokenizer, {
      valSplit,
      batchSize,
      gradAccum,
      seed,
    });
  }

  /** The page's summary: documents and characters always; windows, their split and preview once cut. */
  summary(
    base: Pick<PreparedDataset, 'format' | 'columns' | 'rows' | 'skipped'>,
    tokenizer: Tokenizer | null,
  ): PreparedDataset {
    const split = this.split;
    const { maxLength } = this.settings;
    const preview = split && tokenizer ? this.previewWindows(split, tokenizer) : this.previewDocuments();
    return {
      ...base,
      mapping: this.mapping,
      detected: true,
      guess: null,
      preview,
      stats: split ? datasetStats(windowsAsRendered(split), split.windows) : null,
      trainExamples: split?.train.length ?? 0,
      validationExamples: split?.validation.length ?? 0,
      quickPrompts: [],
      quickPromptsFrom: 'validation',
      labels: null,
      documents: {
        count: this.documents.length,
        characters: this.documents.reduce((n, d) => n + d.text.length, 0),
        names: this.documents.slice(0, PREVIEW_WINDOWS).map((d) => d.name),
        windows: split?.windows.length ?? null,
        heldOut: split?.validation.length ?? null,
        maxLength,
        overlap: windowOverlap(this.mapping.overlap, maxLength),
      },
    };
  }

  private previewDocuments(): PreparedDataset['preview'] {
    return this.documents.slice(0, PREVIEW_WINDOWS).map((d) => ({
      prompt: '',
      completion: d.text.length > 300 ? `${d.text.slice(0, 299)}…` : d.text,
      truncated: false,
    }));
  }

  private previewWindows(split: DocumentSplit, tokenizer: Tokenizer): PreparedDataset['preview'] {
    const held = new Set(split.validation);
    return split.windows.slice(0, PREVIEW_WINDOWS).map((w, i) => {
      const { context, targets } = windowText(w, tokenizer);
      return {
        prompt: context,
        completion: targets,
        truncated: false,
        window: {
          document: split.documents[w.document].name,
          start: w.start,
          end: w.end,
          contextTokens: w.start - w.contextStart,
          heldOut: held.has(i),
        },
      };
    });
  }
}
