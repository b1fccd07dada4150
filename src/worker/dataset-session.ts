/**
 * The worker's open dataset: the file (sent once, parsed without a model), its settings, and what they
 * make of it — the preview, the split, quick prompts and few-shot examples from the rows alone, and the
 * tokenised training set once a model is loaded. Settings and models change; the file stays.
 */
import {
  checkDatasetSize,
  decodeDatasetBytes,
  detectLayout,
  guessColumns,
  mappingFromColumns,
  parseDataset,
  plainFormat,
  promptFormatFor,
} from '../data';
import type { ColumnGuess, Dataset, EncodedExample, EncodeOptions, Mapping, PromptFormat } from '../data';
import { promptStyleFor, rowAsShot, type PromptStyle, type Shot } from '../data/chat-prompt';
import { checkObjectiveFits } from '../data/pair-set';
import { assembleTrainingSet, type TrainingSet } from '../data/training-set';
import { datasetStats } from '../data/stats';
import type { TrainingSplit } from '../formats/adapter-info';
import { readDatasetFile } from '../formats/dataset-file';
import type { LoadedModel } from '../engine/load';
import type { ObjectiveName } from '../engine/objective';
import type { TrainingData } from '../engine/train';
import { labelsOf, layoutInUse, layoutsThatFit, previewExample, unmappedSummary } from './dataset-preview';
import { DocumentWindows } from './document-windows';
import { encodedExamples, encodeInSlices, renderExamples, type Rendering } from './example-rendering';
import { PairData } from './pair-data';
import { Slices } from './slices';
import type {
  DatasetProgress,
  DatasetSettings,
  OpenDatasetRequest,
  PreparedDataset,
  RunSetup,
} from './protocol';

const PREVIEW_ROWS = 5;
export { PREVIEW_CHARS } from './dataset-preview';
/** Validation rows offered as one-click prompts in the chat. */
const QUICK_PROMPTS = 4;

export class DatasetSession {
  /** With the columns guessed when their names say nothing (a two-column file), once per file. */
  private file: {
    dataset: Dataset;
    fileName: string;
    guess: ColumnGuess | null;
    /** A workbook's sheets and the one read; null for a text file. */
    sheets: string[] | null;
    sheet: string | null;
  } | null = null;
  private settings: DatasetSettings | null = null;
  private model: LoadedModel | null = null;
  /** Built on demand from file, settings and model; null when one of them changed since. */
  private built: Rendering | null = null;
  /** The same for documents (a 'text' mapping): cut into windows once a model is loaded. */
  private documents: DocumentWindows | null = null;
  /** The same for preference pairs (a 'pairs' mapping): what DPO and ORPO train on. */
  private pairs: PairData | null = null;
  /**
   * The preparation in progress, which cancel() (or a change of file, settings or model) stops between
   * slices.
   */
  private readonly slices = new Slices();

  /** A file is open and its columns are mapped, so it can be trained on once a model is loaded. */
  get ready(): boolean {
    return this.mapping() !== null;
  }

  /**
   * Reads a dropped file with its settings; needs no model. A file that does not parse leaves no dataset
   * open.
   */
  load({ bytes, fileName, settings }: OpenDatasetRequest): void {
    this.file = null;
    this.changed();
    checkDatasetSize(bytes.byteLength);
    this.use(
      { dataset: parseDataset(decodeDatasetBytes(bytes), fileName), sheets: null, sheet: null },
      fileName,
    );
    this.settings = settings;
  }

  /**
   * load() for any file, a spreadsheet workbook too (its reader is imported when the first one arrives): the
   * sheet the settings name, or the first one.
   */
  async read({ bytes, fileName, settings }: OpenDatasetRequest): Promise<void> {
    this.file = null;
    this.changed();
    checkDatasetSize(bytes.byteLength);
    this.use(await readDatasetFile(bytes, fileName, settings.sheet), fileName);
    this.settings = settings;
  }

  private use(
    read: Pick<NonNullable<DatasetSession['file']>, 'dataset' | 'sheets' | 'sheet'>,
    fileName: string,
  ) {
    const { dataset } = read;
    this.file = { ...read, fileName, guess: guessColumns(dataset.columns, dataset.rows) };
  }

  /** New settings for the open file: rendered again, and tokenised again when a model is loaded. */
  setSettings(settings: DatasetSettings): void {
    if (!this.file)
      throw new Error('No dataset is open. Drop a CSV or JSONL file of examples on the page first.');
    if (settings.sheet != null && settings.sheet !== this.file.sheet)
      throw new Error(
        `The sheet '${settings.sheet}' is read when the file is opened: open the file again with it.`,
      );
    this.settings = settings;
    this.changed();
  }

  /** load() and summary() at once, tokenising without pauses (see prepare() for the worker's way). */
  open(request: OpenDatasetRequest): PreparedDataset {
    this.load(request);
    return this.summary();
  }

  /** setSettings() and summary() at once. */
  configure(settings: DatasetSettings): PreparedDataset {
    this.setSettings(settings);
    return this.summary();
  }

  /** The model whose tokenizer (and chat template) the examples are built for; a new model rebuilds them. */
  useModel(loaded: LoadedModel | null): void {
    this.model = loaded;
    this.changed();
  }

  /**
   * The summary, tokenising first (when a model is loaded) in slices: `onProgress` hears how many examples
   * are done, and between slices a cancel() or newer settings stop it with an error saying so.
   */
  async prepare(onProgress?: (progress: DatasetProgress) => void): Promise<PreparedDataset> {
    if (!this.file)
      throw new Error('No dataset is open. Drop a CSV or JSONL file of examples on the page first.');
    const documents = this.documentWindows();
    if (documents && this.model) {
      const { tokenizer } = this.model;
      await this.slices.run(
        (pause) => documents.prepare(tokenizer, pause, onProgress),
        'documents',
        onProgress,
      );
    } else if (this.mapping() && this.model) {
      const rendering = this.rendering();
      if (!rendering.encoded) await this.encodeInSlices(rendering, onProgress);
    }
    return this.summary();
  }

  /** Stops the preparation in progress at its next slice; false when there is none. */
  cancel(): boolean {
    return this.slices.cancel();
  }

  /** What the page shows: columns, mapping and preview always; token statistics once a model is loaded. */
  summary(): PreparedDataset {
    const { dataset } = this.file!;
    const mapping = this.mapping();
    const chosen = this.settings?.mapping != null;
    const guess = chosen ? null : this.file!.guess;
    const skipped = dataset.skipped.slice(0, 5).map((s) => s.reason);
    // Unknown layout: the page asks the user to choose the columns.
    if (!mapping) return unmappedSummary(this.file!, skipped);
    const documents = this.documentWindows();
    if (documents) {
      if (this.model) documents.cut(this.model.tokenizer);
      const base = { format: dataset.format, columns: dataset.columns, rows: dataset.rows.length, skipped };
      return documents.summary(base, this.model?.tokenizer ?? null);
    }
    const built = this.rendering();
    const encoded = this.model ? this.encoded(built) : null;
    const { examples } = built.rendered;
    const quickFrom = built.validation.length ? 'validation' : 'training';
    const quick = (quickFrom === 'validation' ? built.validation : built.train).slice(0, QUICK_PROMPTS);
    // Pairs: the preview, counts and skipped rows are the pairs' (the quick prompts are the chosen answers').
    const pairs = this.pairData()?.summary(this.model?.tokenizer ?? null);
    return {
      format: dataset.format,
      sheets: this.file!.sheets,
      sheet: this.file!.sheet,
      columns: dataset.columns,
      rows: dataset.rows.length,
      mapping,
      detected: !chosen && !guess,
      guess,
      layout: layoutInUse(mapping, dataset),
      layouts: layoutsThatFit(dataset),
      preview: [...built.train, ...built.validation]
        .slice(0, PREVIEW_ROWS)
        .map((i) => previewExample(examples[i], encoded?.[i])),
      stats: encoded ? datasetStats(built.rendered, encoded) : null,
      trainExamples: built.train.length,
      validationExamples: built.validation.length,
      skipped,
      quickPrompts: quick.map((i) => rowAsShot(dataset.rows[examples[i].row], mapping)),
      quickPromptsFrom: quickFrom,
      labels: pairs ? null : labelsOf(built.rendered.examples, dataset, mapping, this.settings!),
      ...pairs,
    };
  }

  /**
   * The tokenised set with batches of `batchSize`, for a training run; tokenised once whatever the batch
   * size.
   */
  trainingSet(batchSize: number, gradAccum = 1): TrainingSet {
    if (!this.model) throw new Error('No model is loaded yet. Load a model first.');
    if (!this.ready) throw new Error('Choose a dataset and which columns to learn before training.');
    const documents = this.documentWindows();
    if (documents) {
      documents.cut(this.model.tokenizer);
      return documents.trainingSet(this.model.tokenizer, batchSize, gradAccum);
    }
    const built = this.rendering();
    const { valSplit, seed } = this.settings!;
    return assembleTrainingSet(built.rendered, this.encoded(built), this.model.tokenizer, {
      valSplit,
      batchSize,
      gradAccum,
      seed,
    });
  }

  /**
   * What a run with `objective` trains on, with batches of `batchSize` (pairs, for DPO and ORPO): SFT on a
   * pairs dataset trains the chosen answers as ordinary examples; DPO and ORPO need pairs.
   */
  trainingData(batchSize: number, gradAccum = 1, objective: ObjectiveName = 'sft'): TrainingData {
    if (objective === 'sft') return this.trainingSet(batchSize, gradAccum).data;
    if (!this.model) throw new Error('No model is loaded yet. Load a model first.');
    const mapping = this.mapping();
    if (!mapping) throw new Error('Choose a dataset and which columns to learn before training.');
    checkObjectiveFits(objective, mapping);
    return this.pairData()!.trainingSet(this.model.tokenizer, batchSize, gradAccum).data;
  }

  /**
   * The file's name and the settings as the model applies them, saved with a run so a reload can rebuild it.
   */
  get setup(): RunSetup['prepare'] {
    if (!this.file || !this.settings)
      throw new Error('Choose a dataset and which columns to learn before training.');
    return {
      ...this.settings,
      ...(this.file.sheet !== null && { sheet: this.file.sheet }),
      fileName: this.file.fileName,
      mapping: this.mapping(),
      useChatTemplate: this.format().chat !== null,
    };
  }

  /**
   * How the dataset formats prompts (what the chat uses until an adapter says otherwise); null without one.
   */
  get style(): PromptStyle | null {
    const mapping = this.mapping();
    return mapping && this.file
      ? promptStyleFor(mapping, this.format().chat !== null, this.file.dataset.rows)
      : null;
  }

  /** The open workbook's sheet; null for a text file or when none is open. */
  get sheet(): string | null {
    return this.file?.sheet ?? null;
  }

  /** The open file's name; null when none is open. */
  get fileName(): string | null {
    return this.file?.fileName ?? null;
  }

  /**
   * What an evaluation needs to rebuild the examples as a run saw them: rows, mapping, format and split — the
   * run's own (`split`, kept with its adapter) or, without one, the open dataset's current settings.
   */
  evaluationInput(split?: TrainingSplit): {
    dataset: Dataset;
    mapping: Mapping;
    format: PromptFormat;
    valSplit: number;
    seed: number;
    maxLength: number;
  } {
    const mapping = split?.mapping ?? this.mapping();
    if (!this.file || !this.settings || !mapping)
      throw new Error('Open a dataset and choose which columns to learn before evaluating.');
    const { valSplit, seed, maxLength } = split ?? this.settings;
    const format = this.format(split?.useChatTemplate);
    return { dataset: this.file.dataset, mapping, format, valSplit, seed, maxLength };
  }

  /** The first `k` training examples as message and answer (for few-shot prompts); needs no tokenising. */
  shots(k: number): Shot[] {
    const mapping = this.mapping();
    // A text has no prompts to show examples before.
    if (!mapping || !this.file || mapping.kind === 'text') return [];
    let built: Rendering;
    try {
      built = this.rendering();
    } catch {
      return []; // settings that give no examples: the page already shows why
    }
    return built.train
      .slice(0, k)
      .map((i) => rowAsShot(this.file!.dataset.rows[built.rendered.examples[i].row], mapping));
  }

  /** File, settings or model changed: what was built is stale, and a preparation under way stops. */
  private changed(): void {
    this.built = null;
    this.documents = null;
    this.pairs = null;
    this.slices.changed();
  }

  private mapping(): Mapping | null {
    if (!this.file || !this.settings) return null;
    const { guess } = this.file;
    return (
      this.settings.mapping ??
      detectLayout(this.file.dataset.columns, this.file.dataset.rows) ??
      (guess && mappingFromColumns(guess.prompt, guess.completion))
    );
  }

  /**
   * The model's chat template when the settings (or `useChatTemplate`) ask for it and it has one; plain text
   * before any model.
   */
  private format(useChatTemplate = this.settings?.useChatTemplate ?? false): PromptFormat {
    // Documents are their own text: no chat template.
    const text = this.mapping()?.kind === 'text';
    return this.model && !text ? promptFormatFor(this.model.tokenizer, useChatTemplate) : plainFormat();
  }

  /** The open documents (a 'text' mapping), made once per file, settings and model; null for other data. */
  private documentWindows(): DocumentWindows | null {
    const mapping = this.mapping();
    if (mapping?.kind !== 'text') return null;
    this.documents ??= new DocumentWindows(this.file!.dataset, mapping, this.settings!);
    return this.documents;
  }

  /** The open preference pairs (a 'pairs' mapping), made once per file, settings and model; else null. */
  private pairData(): PairData | null {
    const mapping = this.mapping();
    if (mapping?.kind !== 'pairs') return null;
    this.pairs ??= new PairData(this.file!.dataset, mapping, this.settings!, this.format());
    return this.pairs;
  }

  private encodeOptions(): EncodeOptions {
    return { maxLength: this.settings!.maxLength, addEos: this.format().addEos };
  }

  /** Rendering and the split need no tokenizer: the preview and counts are right before the model arrives. */
  private rendering(): Rendering {
    this.built ??= renderExamples(this.file!.dataset, this.mapping()!, this.format(), this.settings!);
    return this.built;
  }

  /** The tokens of every example, tokenised now in one go if prepare() has not done it. */
  private encoded(built: Rendering): EncodedExample[] {
    return encodedExamples(built, this.model!.tokenizer, this.encodeOptions());
  }

  private encodeInSlices(built: Rendering, onProgress?: (progress: DatasetProgress) => void): Promise<void> {
    return encodeInSlices(built, this.model!.tokenizer, this.encodeOptions(), this.slices, onProgress);
  }
}
