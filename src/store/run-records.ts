/** A training run as the worker keeps it, and its conversion to and from the stored checkpoint record. */
import type { CheckpointRecord, LossPoint, RewardPoint } from './schema';

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
  /** A preference run's reward accuracy of each step and (`heldOut`) of each validation pass. */
  rewardHistory?: RewardPoint[];
  state: {
    step: number;
    rngState: number;
    adapter: Map<string, { A: Float32Array; B: Float32Array }>;
    optimizer: { step: number; m: Float32Array[]; v: Float32Array[] };
    best?: { step: number; valLoss: number; adapter: Map<string, { A: Float32Array; B: Float32Array }> };
    evalsSinceBest?: number;
    /** The objective's own state (DPO: the reference log-probs). */
    objective?: Record<string, number[]>;
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
    ...(run.state.best && {
      best: {
        step: run.state.best.step,
        valLoss: run.state.best.valLoss,
        adapter: [...run.state.best.adapter],
        evalsSince: run.state.evalsSinceBest ?? 0,
      },
    }),
    ...(run.state.objective && { objective: run.state.objective }),
    ...(run.rewardHistory?.length && { rewardHistory: run.rewardHistory }),
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
    evalHistory: lossHistory.flatMap(({ step, valLoss }) =>
      valLoss === undefined ? [] : [{ step, valLoss }],
    ),
    ...(checkpoint.rewardHistory && { rewardHistory: checkpoint.rewardHistory }),
    state: {
      step: checkpoint.step,
      rngState: checkpoint.rngState,
      adapter: new Map(checkpoint.adapter),
      optimizer: checkpoint.optimizer,
      ...(checkpoint.best && {
        best: {
          step: checkpoint.best.step,
          valLoss: checkpoint.best.valLoss,
          adapter: new Map(checkpoint.best.adapter),
        },
        evalsSinceBest: checkpoint.best.evalsSince,
      }),
      ...(checkpoint.objective && { objective: checkpoint.objective }),
    },
  };
}
