/**
 * The shapes of what the page stores in IndexedDB (schema version 2): records, summaries and the idb schema.
 */
import type { DBSchema, IDBPDatabase, StoreNames } from 'idb';
import type { PromptStyle } from '../data/chat-prompt';
import type { EvalSplit } from '../data/eval-items';
import type { TrainingSplit } from '../formats/adapter-info';

/** One point of a run's loss curve; `valLoss` is present at the steps where validation ran. */
export interface LossPoint {
  step: number;
  loss: number;
  valLoss?: number;
}

export interface DatasetRecord {
  id: string;
  name: string;
  fileName: string;
  /** The original file, exactly as dropped. */
  bytes: Uint8Array;
  /** The column mapping or template chosen for it (opaque here). */
  mapping: unknown;
  /** A workbook's sheet chosen for it (absent or null: its first visible sheet). */
  sheet?: string | null;
  createdAt: number;
  updatedAt: number;
  rows: number;
}
export type DatasetSummary = Omit<DatasetRecord, 'bytes'> & { byteLength: number };

/** The newest checkpoint of an unfinished training run: enough to continue it after a reload. */
export interface CheckpointRecord {
  runId: string;
  step: number;
  totalSteps: number;
  createdAt: number;
  settings: unknown;
  datasetId: string;
  modelName: string;
  /** Where the model was loaded from, so a reload can fetch it again (null: a local folder). */
  modelUrl?: string | null;
  lossHistory: LossPoint[];
  adapter: [string, { A: Float32Array; B: Float32Array }][];
  optimizer: { step: number; m: Float32Array[]; v: Float32Array[] };
  rngState: number;
  /**
   * The weights of the best validation loss so far (absent before the first evaluation, and in older runs).
   */
  best?: {
    step: number;
    valLoss: number;
    adapter: [string, { A: Float32Array; B: Float32Array }][];
    evalsSince: number;
  };
  /**
   * What the training objective keeps (DPO: each pair's reference log-probabilities, by pair id), so a
   * resumed run need not compute it again; absent for SFT and in older runs.
   */
  objective?: Record<string, number[]>;
  /** A preference run's reward accuracy per step and per validation pass (`heldOut`), for its chart. */
  rewardHistory?: RewardPoint[];
}

export interface RewardPoint {
  step: number;
  accuracy: number;
  heldOut?: boolean;
}

/** One of the three an evaluation measures (base, base + few-shot, fine-tuned), without its answers. */
export interface EvaluationScores {
  exact_match: number;
  token_accuracy: number;
  /** Share of answers that start with the right label; null when the completions are not labels. */
  label_accuracy: number | null;
  loss: number;
}

/** An adapter's latest evaluation, kept small: the figures only, not the answers per example. */
export interface EvaluationSummary {
  evaluatedAt: number;
  /** The rows the adapter held out when it was trained, or every row of the dataset evaluated. */
  split: EvalSplit;
  examples: number;
  /**
   * The file whose rows were evaluated. Absent in figures kept before evaluations used the adapter's own
   * split: their 'validation' rows were the open dataset's split then, which may include rows it trained on.
   */
  datasetName?: string;
  /** Training examples in the few-shot prompts. */
  shots: number;
  base: EvaluationScores;
  fewShot: EvaluationScores;
  tuned: EvaluationScores;
  /** Perplexity of a general text without and with the adapter; null when it was not measured. */
  forgetting: { tokens: number; base_perplexity: number; adapted_perplexity: number } | null;
}

export interface AdapterRecord {
  id: string;
  name: string;
  createdAt: number;
  modelName: string;
  datasetId: string;
  datasetName: string;
  settings: unknown;
  /** null for an imported adapter that did not say. */
  trainLoss: number | null;
  valLoss: number | null;
  lossHistory: LossPoint[];
  /** How its training formatted prompts, so the chat does the same (absent: not known). */
  promptStyle?: PromptStyle | null;
  /** Trained here, or imported from a zip. Absent in adapters saved before imports existed (trained). */
  origin?: 'trained' | 'imported';
  /** Where an imported adapter came from on the Hub (`hf:user/adapter[@revision]`); absent otherwise. */
  source?: string;
  /**
   * How its run made and split the examples of its dataset, to evaluate it on the rows it held out. Absent in
   * adapters saved before webtune kept it, and in imported ones.
   */
  split?: TrainingSplit;
  /**
   * Its latest evaluation on its dataset. Absent until evaluated, and in adapters saved before evaluations
   * were kept.
   */
  evaluation?: EvaluationSummary;
  /** The PEFT adapter folder, zipped, ready to download. */
  zip: Uint8Array;
}
export type AdapterSummary = Omit<AdapterRecord, 'zip'> & { byteLength: number };

export interface Schema extends DBSchema {
  datasets: { key: string; value: DatasetSummary; indexes: { 'by-updated': number } };
  datasetFiles: { key: string; value: { id: string; bytes: Uint8Array } };
  checkpoints: { key: string; value: CheckpointRecord; indexes: { 'by-created': number } };
  adapters: { key: string; value: AdapterSummary; indexes: { 'by-created': number } };
  adapterZips: { key: string; value: { id: string; zip: Uint8Array } };
}
export type Store = IDBPDatabase<Schema>;
export type StoreName = StoreNames<Schema>;
