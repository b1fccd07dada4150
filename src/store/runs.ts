/**
 * Training runs as the worker keeps them (weights, optimizer moments, RNG state, loss history), stored
 * as one checkpoint record per run (checkpoints.ts): saved every few steps and at pauses, offered for
 * resuming after a reload, deleted once the run's adapter is safe in the library.
 */
import * as checkpoints from './checkpoints';
import { read } from './db';
import { checkpointToRun, runToCheckpoint, type SavedRun } from './run-records';

export { checkpointToRun, runToCheckpoint };

export type { SavedRun };

/** Replaces the run's checkpoint with a newer one (one transaction: the old one stays if this fails). */
export async function saveRun(run: SavedRun): Promise<void> {
  await checkpoints.saveCheckpoint(runToCheckpoint(run));
}

/**
 * The most recently saved run, finished or not: a run that finished while its adapter could not be
 * stored keeps its checkpoint, and resuming it saves the adapter.
 */
export async function latestRun(): Promise<SavedRun | undefined> {
  const newest = await read(
    'look for a training run to resume',
    ['checkpoints'],
    async (tx) => (await tx.objectStore('checkpoints').index('by-created').openCursor(null, 'prev'))?.value,
  );
  return newest && checkpointToRun(newest);
}

export async function getRun(id: string): Promise<SavedRun | undefined> {
  const checkpoint = await checkpoints.getCheckpoint(id);
  return checkpoint && checkpointToRun(checkpoint);
}

export const deleteRun = checkpoints.deleteCheckpoint;
