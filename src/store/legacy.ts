/**
 * Schema version 1: its record shapes (still what src/store/saved.ts speaks to the page and the worker),
 * how they map onto version 2, and the upgrade that moves a person's saved data across.
 */
import type { IDBPDatabase, IDBPTransaction } from 'idb';
import type { AdapterSummary, CheckpointRecord, DatasetSummary, LossPoint, Schema, Store, StoreName } from './db';

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
  /** Absent in adapters saved by version 1. */
  datasetId?: string;
  datasetName: string;
  settings: unknown;
  trainLoss: number;
  valLoss: number | null;
  lossHistory: { step: number; loss: number }[];
  zip: Uint8Array;
}

/** Version 2 keeps one loss curve; a validation loss joins the training loss of the same step. */
export function runToCheckpoint(run: SavedRun): CheckpointRecord {
  const lossHistory: LossPoint[] = run.lossHistory.map(({ step, loss }) => ({ step, loss }));
  const atStep = new Map(lossHistory.map((point) => [point.step, point]));
  for (const { step, valLoss } of run.evalHistory) {
    const point = atStep.get(step);
    // An evaluation without a training step of its own keeps its place with no training loss (NaN).
    if (point) point.valLoss = valLoss;
    else lossHistory.push({ step, loss: Number.NaN, valLoss });
  }
  lossHistory.sort((a, b) => a.step - b.step);
  return {
    runId: run.id,
    step: run.step,
    totalSteps: run.totalSteps,
    createdAt: run.savedAt,
    settings: run.setup,
    datasetId: run.datasetId,
    modelName: run.modelName,
    modelUrl: run.modelUrl,
    lossHistory,
    adapter: [...run.state.adapter],
    optimizer: run.state.optimizer,
    rngState: run.state.rngState,
  };
}

export function checkpointToRun(checkpoint: CheckpointRecord): SavedRun {
  const { lossHistory } = checkpoint;
  return {
    id: checkpoint.runId,
    savedAt: checkpoint.createdAt,
    modelName: checkpoint.modelName,
    modelUrl: checkpoint.modelUrl ?? null,
    datasetId: checkpoint.datasetId,
    setup: checkpoint.settings,
    step: checkpoint.step,
    totalSteps: checkpoint.totalSteps,
    lossHistory: lossHistory.filter((p) => !Number.isNaN(p.loss)).map(({ step, loss }) => ({ step, loss })),
    evalHistory: lossHistory.flatMap(({ step, valLoss }) => (valLoss === undefined ? [] : [{ step, valLoss }])),
    state: {
      step: checkpoint.step,
      rngState: checkpoint.rngState,
      adapter: new Map(checkpoint.adapter),
      optimizer: checkpoint.optimizer,
    },
  };
}

/** Version 1 did not count rows; 0 means "not counted". */
export function datasetSummaryFromV1({ bytes, savedAt, ...dataset }: SavedDataset): DatasetSummary {
  return { ...dataset, fileName: dataset.name, createdAt: savedAt, updatedAt: savedAt, rows: 0, byteLength: bytes.byteLength };
}

export function adapterSummaryFromV1({ zip, savedAt, datasetId = '', ...adapter }: SavedAdapter): AdapterSummary {
  return { ...adapter, datasetId, createdAt: savedAt, byteLength: zip.byteLength };
}

/** Version 1 → 2: bytes move beside their summaries, runs become checkpoints. One upgrade transaction. */
export async function migrateFromV1(db: Store, tx: IDBPTransaction<Schema, StoreName[], 'versionchange'>): Promise<void> {
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

  for (let cursor = await untypedTx.objectStore('datasets').openCursor(); cursor; cursor = await cursor.continue()) {
    const dataset = cursor.value as SavedDataset;
    await tx.objectStore('datasetFiles').put({ id: dataset.id, bytes: dataset.bytes });
    await cursor.update(datasetSummaryFromV1(dataset));
  }
  for (let cursor = await untypedTx.objectStore('adapters').openCursor(); cursor; cursor = await cursor.continue()) {
    const adapter = cursor.value as SavedAdapter;
    await tx.objectStore('adapterZips').put({ id: adapter.id, zip: adapter.zip });
    await cursor.update(adapterSummaryFromV1(adapter));
  }
}
