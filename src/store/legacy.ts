/**
 * Schema version 1: its record shapes, how they map onto version 2, and the upgrade that moves a
 * person's saved data across.
 */
import type { IDBPDatabase, IDBPTransaction } from 'idb';
import { runToCheckpoint, type SavedRun } from './run-records';
import type { AdapterSummary, DatasetSummary, Schema, Store, StoreName } from './schema';

export interface SavedDataset {
  id: string;
  name: string;
  bytes: Uint8Array;
  /** The column mapping or templates chosen for it (opaque here). */
  mapping: unknown;
  savedAt: number;
}

export interface SavedAdapter {
  id: string;
  name: string;
  savedAt: number;
  modelName: string;
  /** Absent in adapters saved by version 1. */
  datasetId?: string;
  datasetName: string;
  settings: unknown;
  trainLoss: number;
  valLoss: number | null;
  lossHistory: { step: number; loss: number }[];
  zip: Uint8Array;
}

/** Version 1 did not count rows; 0 means "not counted". */
export function datasetSummaryFromV1({ bytes, savedAt, ...dataset }: SavedDataset): DatasetSummary {
  return {
    ...dataset,
    fileName: dataset.name,
    createdAt: savedAt,
    updatedAt: savedAt,
    rows: 0,
    byteLength: bytes.byteLength,
  };
}

export function adapterSummaryFromV1({
  zip,
  savedAt,
  datasetId = '',
  ...adapter
}: SavedAdapter): AdapterSummary {
  return { ...adapter, datasetId, createdAt: savedAt, byteLength: zip.byteLength };
}

/** Version 1 → 2: bytes move beside their summaries, runs become checkpoints. One upgrade transaction. */
export async function migrateFromV1(
  db: Store,
  tx: IDBPTransaction<Schema, StoreName[], 'versionchange'>,
): Promise<void> {
  // Version 1's store names are not in the version 2 schema, so those steps go through idb untyped.
  const untypedDb = db as unknown as IDBPDatabase;
  const untypedTx = tx as unknown as IDBPTransaction<unknown, string[], 'versionchange'>;
  db.createObjectStore('datasetFiles', { keyPath: 'id' });
  db.createObjectStore('adapterZips', { keyPath: 'id' });
  db.createObjectStore('checkpoints', { keyPath: 'runId' }).createIndex('by-created', 'createdAt');
  tx.objectStore('datasets').createIndex('by-updated', 'updatedAt');
  tx.objectStore('adapters').createIndex('by-created', 'createdAt');

  const runs = (await untypedTx.objectStore('runs').getAll()) as SavedRun[];
  for (const run of runs) await tx.objectStore('checkpoints').put(runToCheckpoint(run));
  untypedDb.deleteObjectStore('runs');

  for (
    let cursor = await untypedTx.objectStore('datasets').openCursor();
    cursor;
    cursor = await cursor.continue()
  ) {
    const dataset = cursor.value as SavedDataset;
    await tx.objectStore('datasetFiles').put({ id: dataset.id, bytes: dataset.bytes });
    await cursor.update(datasetSummaryFromV1(dataset));
  }
  for (
    let cursor = await untypedTx.objectStore('adapters').openCursor();
    cursor;
    cursor = await cursor.continue()
  ) {
    const adapter = cursor.value as SavedAdapter;
    await tx.objectStore('adapterZips').put({ id: adapter.id, zip: adapter.zip });
    await cursor.update(adapterSummaryFromV1(adapter));
  }
}
