/**
 * Training runs as the worker keeps them (weights, optimizer moments, RNG state, loss history), stored
 * as one checkpoint record per run (checkpoints.ts): saved every few steps and at pauses, offered for
 * resuming after a reload, deleted once the run's adapter is safe in the library.
 */
import * as checkpoints from './checkpoints';
import { read, type CheckpointRecord, type LossPoint } from './db';

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
    best?: { step: number; valLoss: number; adapter: Map<string, { A: Float32Array; B: Float32Array }> };
    evalsSinceBest?: number;
  };
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
    ...(run.state.best && { best: { step: run.state.best.step, valLoss: run.state.best.valLoss, adapter: [...run.state.best.adapter], evalsSince: run.state.evalsSinceBest ?? 0 } }),
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
      ...(checkpoint.best && {
        best: { step: checkpoint.best.step, valLoss: checkpoint.best.valLoss, adapter: new Map(checkpoint.best.adapter) },
        evalsSinceBest: checkpoint.best.evalsSince,
      }),
    },
  };
}

/** Replaces the run's checkpoint with a newer one (one transaction: the old one stays if this fails). */
export async function saveRun(run: SavedRun): Promise<void> {
  await checkpoints.saveCheckpoint(runToCheckpoint(run));
}

/**
 * The most recently saved run, finished or not: a run that finished while its adapter could not be
 * stored keeps its checkpoint, and resuming it saves the adapter.
 */
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
