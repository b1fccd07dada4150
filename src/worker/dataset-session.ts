/**
 * The worker's open dataset: the file (sent once, parsed without a model), its settings, and what they
 * make of it — the preview, the split, quick prompts and few-shot examples from the rows alone, and the
 * tokenised training set once a model is loaded. Settings and models change; the file stays.
 */
import { checkDatasetSize, decodeDatasetBytes, detectLayout, parseDataset, plainFormat, promptFormatFor, renderDataset, splitTrainValidation } from '../data';
import type { Dataset, Mapping, PromptFormat } from '../data';
import { promptStyleFor, rowAsShot, type PromptStyle, type Shot } from '../data/chat-prompt';
import type { Example } from '../data/examples';
import { buildTrainingSet, type TrainingSet } from '../data/training-set';
import type { LoadedModel } from '../engine/load';
import type { DatasetSettings, OpenDatasetRequest, PreparedDataset, RunSetup } from './protocol';

const PREVIEW_ROWS = 5;
/** Validation rows offered as one-click prompts in the chat. */
const QUICK_PROMPTS = 4;
/** The batch size token statistics are counted with (batches do not change them). */
const DEFAULT_BATCH_SIZE = 4;

/** What the settings make of the rows: rendered and split always, tokenised when a model is loaded. */
interface Examples {
  train: Example[];
  validation: Example[];
  /** The tokenised set; null before a model is loaded. */
  set: TrainingSet | null;
  batchSize: number;
}

export class DatasetSession {
  private file: { dataset: Dataset; fileName: string } | null = null;
  private settings: DatasetSettings | null = null;
  private model: LoadedModel | null = null;
  /** Built on demand from file, settings and model; null when one of them changed since. */
  private built: Examples | null = null;

  /** A file is open and its columns are mapped, so it can be trained on once a model is loaded. */
  get ready(): boolean {
    return this.mapping() !== null;
  }

  /** Reads a dropped file; needs no model. A file that does not parse leaves no dataset open. */
  open({ bytes, fileName, settings }: OpenDatasetRequest): PreparedDataset {
    this.file = null;
    this.built = null;
    checkDatasetSize(bytes.byteLength);
    this.file = { dataset: parseDataset(decodeDatasetBytes(bytes), fileName), fileName };
    return this.configure(settings);
  }

  /** New settings for the open file: re-rendered, and re-tokenised when a model is loaded. */
  configure(settings: DatasetSettings): PreparedDataset {
    if (!this.file) throw new Error('No dataset is open. Drop a CSV or JSONL file of examples on the page first.');
    this.settings = settings;
    this.built = null;
    return this.summary();
  }

  /** The model whose tokenizer (and chat template) the examples are built for; a new model rebuilds them. */
  useModel(loaded: LoadedModel | null): void {
    this.model = loaded;
    this.built = null;
  }

  /** What the page shows: columns, mapping and preview always; token statistics once a model is loaded. */
  summary(): PreparedDataset {
    const { dataset } = this.file!;
    const mapping = this.mapping();
    const detected = this.settings?.mapping == null;
    const skipped = dataset.skipped.slice(0, 5).map((s) => s.reason);
    if (!mapping) {
      // Unknown layout: the page asks the user to choose the columns.
      return { format: dataset.format, columns: dataset.columns, rows: dataset.rows.length, mapping: null, detected: false, preview: [], stats: null, trainExamples: 0, validationExamples: 0, skipped, quickPrompts: [], quickPromptsFrom: 'validation' };
    }
    const built = this.build(DEFAULT_BATCH_SIZE);
    const truncated = new Map([...(built.set?.train ?? []), ...(built.set?.validation ?? [])].map(({ example, encoded }) => [example, encoded.truncated]));
    const quickFrom = built.validation.length ? 'validation' : 'training';
    const quick = (quickFrom === 'validation' ? built.validation : built.train).slice(0, QUICK_PROMPTS);
    return {
      format: dataset.format,
      columns: dataset.columns,
      rows: dataset.rows.length,
      mapping,
      detected,
      preview: [...built.train, ...built.validation].slice(0, PREVIEW_ROWS).map((example) => ({ prompt: example.prompt, completion: example.completion, truncated: truncated.get(example) ?? false })),
      stats: built.set?.stats ?? null,
      trainExamples: built.train.length,
      validationExamples: built.validation.length,
      skipped,
      quickPrompts: quick.map((example) => rowAsShot(dataset.rows[example.row], mapping)),
      quickPromptsFrom: quickFrom,
    };
  }

  /** The tokenised set with batches of `batchSize`, for a training run. */
  trainingSet(batchSize: number): TrainingSet {
    if (!this.model) throw new Error('No model is loaded yet. Load a model first.');
    if (!this.ready) throw new Error('Choose a dataset and which columns to learn before training.');
    return this.build(batchSize).set!;
  }

  /** The file's name and the settings as the model applies them, saved with a run so a reload can rebuild it. */
  get setup(): RunSetup['prepare'] {
    if (!this.file || !this.settings) throw new Error('Choose a dataset and which columns to learn before training.');
    return { ...this.settings, fileName: this.file.fileName, mapping: this.mapping(), useChatTemplate: this.format().chat !== null };
  }

  /** How the dataset formats prompts (what the chat uses until an adapter says otherwise); null without one. */
  get style(): PromptStyle | null {
    const mapping = this.mapping();
    return mapping && this.file ? promptStyleFor(mapping, this.format().chat !== null, this.file.dataset.rows) : null;
  }

  /** The first `k` training examples as message and answer (for few-shot prompts). */
  shots(k: number): Shot[] {
    const mapping = this.mapping();
    if (!mapping || !this.file) return [];
    let built: Examples;
    try {
      built = this.build(DEFAULT_BATCH_SIZE);
    } catch {
      return []; // settings that give no examples: the page already shows why
    }
    return built.train.slice(0, k).map((example) => rowAsShot(this.file!.dataset.rows[example.row], mapping));
  }

  private mapping(): Mapping | null {
    if (!this.file || !this.settings) return null;
    return this.settings.mapping ?? detectLayout(this.file.dataset.columns);
  }

  /** The model's chat template when the settings ask for it and it has one; plain text before any model. */
  private format(): PromptFormat {
    return this.model ? promptFormatFor(this.model.tokenizer, this.settings?.useChatTemplate ?? false) : plainFormat();
  }

  private build(batchSize: number): Examples {
    const mapping = this.mapping()!;
    if (this.built && (!this.built.set || this.built.batchSize === batchSize)) return this.built;
    const { dataset } = this.file!;
    const { maxLength, valSplit, seed } = this.settings!;
    const format = this.format();
    let built: Examples;
    if (this.model) {
      const set = buildTrainingSet(dataset, this.model.tokenizer, { mapping, format, maxLength, valSplit, batchSize, seed });
      built = { train: set.train.map((p) => p.example), validation: set.validation.map((p) => p.example), set, batchSize };
    } else {
      // Rendering and the split need no tokenizer: the preview and counts are right before the model arrives.
      const { train, validation } = splitTrainValidation(renderDataset(dataset, mapping, format).examples, valSplit, seed);
      built = { train, validation, set: null, batchSize };
    }
    this.built = built;
    return built;
  }
}
