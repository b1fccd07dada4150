/**
 * webtune's one IndexedDB database (through idb): the versioned schema (record shapes in schema.ts) and
 * the two ways in — `read` and `write`. Big byte arrays (a dataset's file, an adapter's zip) live in their
 * own stores beside a small summary, so list views never load them; a record and its bytes are always
 * written and deleted in one transaction, so a failed write leaves what was stored before untouched.
 */
import { openDB, type IDBPTransaction } from 'idb';
import { storageError, toStorageError, type StorageError } from './errors';
import { migrateFromV1 } from './legacy';
import type { Schema, Store, StoreName } from './schema';

export type {
  AdapterRecord,
  AdapterSummary,
  CheckpointRecord,
  DatasetRecord,
  DatasetSummary,
  EvaluationScores,
  EvaluationSummary,
  LossPoint,
  Schema,
  Store,
  StoreName,
} from './schema';

/**
 * 1: datasets, runs and adapters with their bytes inline. 2: summaries apart from bytes; runs became
 * checkpoints.
 */
export const SCHEMA_VERSION = 2;

type UpgradeTransaction = IDBPTransaction<Schema, StoreName[], 'versionchange'>;

function upgrade(
  db: Store,
  oldVersion: number,
  tx: UpgradeTransaction,
  onFailure: (error: unknown) => void,
): void {
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
      upgrade: (db, oldVersion, _newVersion, tx) =>
        upgrade(db, oldVersion, tx, (error) => (upgradeFailure = error)),
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
        fail(
          upgradeFailure
            ? toStorageError(upgradeFailure, 'move your saved data to its new layout')
            : toStorageError(error, 'open its storage', true),
        ),
    );
  });
}

/**
 * Closes the shared connection; the next call opens the database again (tests use this to prove data
 * survives).
 */
export async function closeStore(name = 'webtune'): Promise<void> {
  const store = connections.get(name);
  connections.delete(name);
  if (store) (await store.catch(() => null))?.close();
}

/** Reads inside one read-only transaction over `stores`. */
export const read = <T, S extends StoreName[]>(
  action: string,
  stores: S,
  work: (tx: IDBPTransaction<Schema, S, 'readonly'>) => Promise<T>,
) => transact(action, stores, 'readonly', work);

/**
 * Runs `work` in one read-write transaction over `stores`: everything it writes lands together or not at
 * all. If any step throws (a full disk), the transaction is aborted so earlier puts in it are undone.
 */
export const write = <T, S extends StoreName[]>(
  action: string,
  stores: S,
  work: (tx: IDBPTransaction<Schema, S, 'readwrite'>) => Promise<T>,
) => transact(action, stores, 'readwrite', work);

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

export const newId = (): string =>
  globalThis.crypto?.randomUUID?.() ?? `${Date.now()}-${Math.random().toString(36).slice(2)}`;
