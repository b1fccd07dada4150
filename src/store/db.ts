/**
 * webtune's one IndexedDB database (through idb): the record shapes, the versioned schema and the
 * two ways in — `read` and `write`. Big byte arrays (a dataset's file, an adapter's zip) live in their
 * own stores beside a small summary, so list views never load them; a record and its bytes are always
 * written and deleted in one transaction, so a failed write leaves what was stored before untouched.
 */
import { openDB, type DBSchema, type IDBPDatabase, type IDBPTransaction, type StoreNames } from 'idb';
import { storageError, toStorageError, type StorageError } from './errors';
import { migrateFromV1 } from './legacy';
import type { PromptStyle } from '../data/chat-prompt';
import type { EvalSplit } from '../data/eval-items';

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
  /** The weights of the best validation loss so far (absent before the first evaluation, and in older runs). */
  best?: { step: number; valLoss: number; adapter: [string, { A: Float32Array; B: Float32Array }][]; evalsSince: number };
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
  /** The held-out rows, or every row when the dataset had no validation split. */
  split: EvalSplit;
  examples: number;
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
  /** Its latest evaluation on its dataset. Absent until evaluated, and in adapters saved before evaluations were kept. */
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

/** 1: datasets, runs and adapters with their bytes inline. 2: summaries apart from bytes; runs became checkpoints. */
export const SCHEMA_VERSION = 2;

type UpgradeTransaction = IDBPTransaction<Schema, StoreName[], 'versionchange'>;

function upgrade(db: Store, oldVersion: number, tx: UpgradeTransaction, onFailure: (error: unknown) => void): void {
  if (oldVersion === 1) {
    // Keep what people already saved; if moving it fails, the upgrade rolls back and version 1 stays.
    migrateFromV1(db, tx).catch((error: unknown) => {
      onFailure(error);
      tx.done.catch(() => {}); // the open request reports the failure
      try {
        tx.abort();
      } catch {
        // A failed request has aborted it already.
      }
    });
    return;
  }
  db.createObjectStore('datasets', { keyPath: 'id' }).createIndex('by-updated', 'updatedAt');
  db.createObjectStore('datasetFiles', { keyPath: 'id' });
  db.createObjectStore('checkpoints', { keyPath: 'runId' }).createIndex('by-created', 'createdAt');
  db.createObjectStore('adapters', { keyPath: 'id' }).createIndex('by-created', 'createdAt');
  db.createObjectStore('adapterZips', { keyPath: 'id' });
}

const connections = new Map<string, Promise<Store>>();

/** The open database, shared by every caller (opened on first use). */
export function openStore(name = 'webtune'): Promise<Store> {
  let store = connections.get(name);
  if (!store) {
    store = connect(name);
    store.catch(() => connections.delete(name));
    connections.set(name, store);
  }
  return store;
}

function connect(name: string): Promise<Store> {
  if (typeof indexedDB === 'undefined') return Promise.reject(storageError('unavailable'));
  return new Promise((resolve, reject) => {
    let settled = false;
    let upgradeFailure: unknown;
    const fail = (error: StorageError) => {
      settled = true;
      reject(error);
    };
    openDB<Schema>(name, SCHEMA_VERSION, {
      upgrade: (db, oldVersion, _newVersion, tx) => upgrade(db, oldVersion, tx, (error) => (upgradeFailure = error)),
      // Another tab holds an older version open; waiting silently would look like a hang.
      blocked: () => fail(storageError('blocked')),
      // A newer webtune in another tab wants to upgrade: step aside so it can.
      blocking: (_current, _blocked, event) => {
        connections.delete(name);
        (event.target as IDBDatabase).close();
      },
      terminated: () => connections.delete(name),
    }).then(
      (db) => (settled ? db.close() : resolve(db)),
      (error: unknown) =>
        fail(upgradeFailure ? toStorageError(upgradeFailure, 'move your saved data to its new layout') : toStorageError(error, 'open its storage', true)),
    );
  });
}

/** Closes the shared connection; the next call opens the database again (tests use this to prove data survives). */
export async function closeStore(name = 'webtune'): Promise<void> {
  const store = connections.get(name);
  connections.delete(name);
  if (store) (await store.catch(() => null))?.close();
}

/** Reads inside one read-only transaction over `stores`. */
export const read = <T, S extends StoreName[]>(action: string, stores: S, work: (tx: IDBPTransaction<Schema, S, 'readonly'>) => Promise<T>) =>
  transact(action, stores, 'readonly', work);

/**
 * Runs `work` in one read-write transaction over `stores`: everything it writes lands together or not at
 * all. If any step throws (a full disk), the transaction is aborted so earlier puts in it are undone.
 */
export const write = <T, S extends StoreName[]>(action: string, stores: S, work: (tx: IDBPTransaction<Schema, S, 'readwrite'>) => Promise<T>) =>
  transact(action, stores, 'readwrite', work);

async function transact<T, S extends StoreName[], M extends 'readonly' | 'readwrite'>(
  action: string,
  stores: S,
  mode: M,
  work: (tx: IDBPTransaction<Schema, S, M>) => Promise<T>,
): Promise<T> {
  const db = await openStore();
  let tx: IDBPTransaction<Schema, S, M> | undefined;
  try {
    tx = db.transaction(stores, mode);
    const result = await work(tx);
    await tx.done;
    return result;
  } catch (error) {
    tx?.done.catch(() => {}); // the abort below rejects it; the error we report is the first one
    try {
      tx?.abort();
    } catch {
      // Already finished, or aborted by IndexedDB itself.
    }
    throw toStorageError(error, action);
  }
}

export const newId = (): string => globalThis.crypto?.randomUUID?.() ?? `${Date.now()}-${Math.random().toString(36).slice(2)}`;
