/**
 * Training checkpoints, one per run: each save replaces the run's previous checkpoint in a single put,
 * so after a crash or a full disk the run still has either the old checkpoint or the new one, whole.
 * They are read whole (to resume) and a run normally has one, so there is no separate summary store;
 * finding the newest walks the createdAt index and reads only the records it passes.
 */
import { read, write, type CheckpointRecord } from './db';

export type { CheckpointRecord };

/** Stores the run's newest checkpoint in place of the one before. */
export async function saveCheckpoint(checkpoint: CheckpointRecord): Promise<void> {
  await write(`save the checkpoint of step ${checkpoint.step}`, ['checkpoints'], (tx) =>
    tx.objectStore('checkpoints').put(checkpoint),
  );
}

export async function getCheckpoint(runId: string): Promise<CheckpointRecord | undefined> {
  return read('open the saved training run', ['checkpoints'], (tx) =>
    tx.objectStore('checkpoints').get(runId),
  );
}

/**
 * The most recently saved checkpoint of a run that has steps left, to offer "Resume training" after a
 * reload. (A run that reached its last step is finished, even if its checkpoint was not deleted yet.)
 */
export async function latestUnfinishedCheckpoint(): Promise<CheckpointRecord | undefined> {
  return read('look for a training run to resume', ['checkpoints'], async (tx) => {
    let cursor = await tx.objectStore('checkpoints').index('by-created').openCursor(null, 'prev');
    for (; cursor; cursor = await cursor.continue()) {
      if (cursor.value.step < cursor.value.totalSteps) return cursor.value;
    }
    return undefined;
  });
}

/** Forgets a run's checkpoint: once the run has completed (its adapter is saved) or is discarded. */
export async function deleteCheckpoint(runId: string): Promise<void> {
  await write('delete the training checkpoint', ['checkpoints'], (tx) =>
    tx.objectStore('checkpoints').delete(runId),
  );
}
