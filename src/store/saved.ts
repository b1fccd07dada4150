/**
 * The version 1 store API, kept so the page and the worker work unchanged on the version 2 database.
 * New code should use datasets.ts, checkpoints.ts and adapters.ts (adapters already go through it); once no caller imports this file
 * (nor database.ts), delete both.
 */
import * as checkpoints from './checkpoints';
import * as datasets from './datasets';
import { read } from './db';
import { checkpointToRun, runToCheckpoint, type SavedAdapter, type SavedDataset, type SavedRun } from './legacy';

export type { SavedAdapter, SavedDataset, SavedRun };

const toSavedDataset = ({ id, name, bytes, mapping, updatedAt }: datasets.DatasetRecord): SavedDataset => ({ id, name, bytes, mapping, savedAt: updatedAt });

/** Saves a dataset; the same file dropped again (same name and bytes) updates its earlier record. */
export async function saveDataset(dataset: Omit<SavedDataset, 'id' | 'savedAt'> & { id?: string }): Promise<SavedDataset> {
  // Version 1 callers do not count rows (0: not counted).
  const summary = await datasets.saveDataset({ ...dataset, fileName: dataset.name, rows: 0 });
  return { id: summary.id, name: summary.name, bytes: dataset.bytes, mapping: summary.mapping, savedAt: summary.updatedAt };
}

/** Every dataset with its bytes (version 1 lists carried them), the most recently saved first. */
export async function listDatasets(): Promise<SavedDataset[]> {
  const ids = (await datasets.listDatasets()).map((d) => d.id);
  const records = await Promise.all(ids.map((id) => datasets.getDataset(id)));
  return records.flatMap((record) => (record ? [toSavedDataset(record)] : []));
}

export async function getDataset(id: string): Promise<SavedDataset | undefined> {
  const record = await datasets.getDataset(id);
  return record && toSavedDataset(record);
}

export const deleteDataset = datasets.deleteDataset;

/** Replaces the run's checkpoint with a newer one (one transaction: the old one stays if this fails). */
export async function saveRun(run: SavedRun): Promise<void> {
  await checkpoints.saveCheckpoint(runToCheckpoint(run));
}

/** The most recently saved run, finished or not (version 1 offered any of them for resuming). */
export async function latestRun(): Promise<SavedRun | undefined> {
  const newest = await read('look for a training run to resume', ['checkpoints'], async (tx) =>
    (await tx.objectStore('checkpoints').index('by-created').openCursor(null, 'prev'))?.value,
  );
  return newest && checkpointToRun(newest);
}

export async function getRun(id: string): Promise<SavedRun | undefined> {
  const checkpoint = await checkpoints.getCheckpoint(id);
  return checkpoint && checkpointToRun(checkpoint);
}

export const deleteRun = checkpoints.deleteCheckpoint;
