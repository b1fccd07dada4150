/**
 * webtune's IndexedDB database (through idb): the datasets a person dropped, the checkpoint of an
 * unfinished training run, and finished adapters. Every write is one transaction, so a failed write
 * (a full disk) leaves what was already stored untouched.
 */
import { openDB, type DBSchema, type IDBPDatabase } from 'idb';

export interface SavedDataset {
  id: string;
  name: string;
  bytes: Uint8Array;
  /** The column mapping or templates chosen for it (opaque here). */
  mapping: unknown;
  savedAt: number;
}

export interface SavedRun {
  id: string;
  savedAt: number;
  modelName: string;
  /** Where the model came from, so a reload can fetch it again. */
  modelUrl: string | null;
  datasetId: string;
  /** Everything the worker needs to rebuild the training set and the trainer (opaque here). */
  setup: unknown;
  step: number;
  totalSteps: number;
  lossHistory: { step: number; loss: number }[];
  evalHistory: { step: number; valLoss: number }[];
  state: {
    step: number;
    rngState: number;
    adapter: Map<string, { A: Float32Array; B: Float32Array }>;
    optimizer: { step: number; m: Float32Array[]; v: Float32Array[] };
  };
}

export interface SavedAdapter {
  id: string;
  name: string;
  savedAt: number;
  modelName: string;
  datasetName: string;
  settings: unknown;
  trainLoss: number;
  valLoss: number | null;
  lossHistory: { step: number; loss: number }[];
  zip: Uint8Array;
}

interface Schema extends DBSchema {
  datasets: { key: string; value: SavedDataset };
  runs: { key: string; value: SavedRun };
  adapters: { key: string; value: SavedAdapter };
}

export class StorageError extends Error {
  override name = 'StorageError';
}

let database: Promise<IDBPDatabase<Schema>> | null = null;

export function openStore(name = 'webtune'): Promise<IDBPDatabase<Schema>> {
  database ??= openDB<Schema>(name, 1, {
    upgrade(db) {
      db.createObjectStore('datasets', { keyPath: 'id' });
      db.createObjectStore('runs', { keyPath: 'id' });
      db.createObjectStore('adapters', { keyPath: 'id' });
    },
  }).catch((error: unknown) => {
    database = null;
    throw new StorageError(`This browser would not open webtune's local storage (${(error as Error).message}). Private windows often block it; open webtune in a normal window.`);
  });
  return database;
}

/** For tests: forget the open connection so the next call opens the database again. */
export async function closeStore(): Promise<void> {
  if (database) (await database).close();
  database = null;
}

/** Runs a write, turning a full disk into a message that says what to do. */
export async function write<T>(what: string, action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (error) {
    if ((error as DOMException)?.name === 'QuotaExceededError') {
      throw new StorageError(`Your browser's storage for this site is full, so webtune could not save ${what}. Delete old adapters or datasets, then try again. Nothing already saved was lost.`);
    }
    throw error;
  }
}

export const newId = () => (globalThis.crypto?.randomUUID?.() ?? `${Date.now()}-${Math.random().toString(36).slice(2)}`);
