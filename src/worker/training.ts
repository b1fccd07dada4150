/**
 * The worker's training run: LoRA training on the open dataset's training set, pause and stop, checkpoints.
 */
import { attachLora, peftInit } from '../engine/lora';
import { resolveRecompute } from '../engine/memory';
import type { LoadedModel } from '../engine/load';
import { lastEpochMeanLoss, runTraining, Trainer, type TrainSummary } from '../engine/train';
import { infoMetadata, type AdapterInfo } from '../formats/adapter-info';
import { LORA_TARGETS, writeAdapterZip } from '../formats/peft';
import { adapterReadme } from '../formats/readme';
import { saveAdapter, type NewAdapter } from '../store/adapters';
import { newId } from '../store/db';
import { holdRunLock } from '../store/locks';
import { deleteRun, getRun, saveRun, type SavedRun } from '../store/runs';
import type { AdapterSlot } from './adapter-slot';
import { readRunSetup } from './run-setup';
import type { DatasetSession } from './dataset-session';
import { explainFailures } from './failures';
import type { RunSetup, TrainEvent, TrainRequest, TrainResult } from './protocol';

/** Steps between checkpoints saved to IndexedDB (and one at every pause). */
export const CHECKPOINT_EVERY = 5;

type RunInfo = Omit<SavedRun, 'state'>;

export class TrainingSession {
  private trainer: Trainer | null = null;
  private request: 'run' | 'pause' | 'stop' = 'run';
  /** A finished run's adapter that could not be stored yet (see saveAgain). */
  private unsaved: { adapter: NewAdapter; runId: string } | null = null;
  /** Releases this tab's Web Lock on the run (see store/locks.ts). */
  private releaseRun: (() => void) | null = null;
  private run: RunInfo | null = null;

  constructor(
    private readonly slot: AdapterSlot,
    private readonly dataset: DatasetSession,
  ) {}

  /** Setting a run up that fails gives its lock back. */
  private guard(setUp: () => void): void {
    try {
      setUp();
    } catch (error) {
      this.endRun();
      throw error;
    }
  }

  /** Ends this tab's claim on the run (its Web Lock), so another tab may resume it. */
  private endRun(): void {
    this.releaseRun?.();
    this.releaseRun = null;
  }

  /** A run is in progress or paused: its adapter must stay attached. */
  get active(): boolean {
    return this.trainer !== null;
  }

  /** Steps are running right now (not paused). */
  get running(): boolean {
    return this.trainer !== null && this.request === 'run';
  }

  async train(
    loaded: LoadedModel,
    request: TrainRequest,
    emit: (event: TrainEvent) => void,
  ): Promise<Omit<TrainResult, 'backend'>> {
    if (!this.dataset.ready) throw new Error('Choose a dataset and which columns to learn before training.');
    const prepare = this.dataset.setup;
    const id = newId();
    this.releaseRun?.();
    this.releaseRun = await holdRunLock(id);
    this.guard(() => this.startTrainer(loaded, request));
    this.run = {
      id,
      savedAt: Date.now(),
      modelName: loaded.name,
      modelUrl: request.source.modelUrl,
      datasetId: request.source.datasetId,
      setup: { train: request, prepare } satisfies RunSetup,
      step: 0,
      totalSteps: this.trainer!.totalSteps,
      lossHistory: [],
      evalHistory: [],
    };
    return this.continue(loaded, emit);
  }

  /** Continues a run saved before a reload; the page has prepared its dataset with the saved settings. */
  async resumeSaved(
    loaded: LoadedModel,
    runId: string,
    emit: (event: TrainEvent) => void,
  ): Promise<Omit<TrainResult, 'backend'>> {
    const saved = await getRun(runId);
    if (!saved) throw new Error('That training run is no longer saved on this device; start training again.');
    const { train } = readRunSetup(saved.setup);
    if (!this.dataset.ready) throw new Error("Load the run's dataset before resuming.");
    // Another tab may be training this very run: both would write one checkpoint.
    this.releaseRun?.();
    this.releaseRun = await holdRunLock(runId);
    this.guard(() => {
      this.startTrainer(loaded, train);
      this.trainer!.importState(saved.state);
    });
    const { state: _state, ...run } = saved;
    this.run = run;
    return this.continue(loaded, emit);
  }

  private startTrainer(loaded: LoadedModel, request: TrainRequest): void {
    this.trainer?.dispose();
    this.trainer = null;
    // Batches depend on the batch size, so the set is built with the one chosen for this run.
    const set = this.dataset.trainingSet(request.batchSize, request.gradAccum);
    // Targets in the model's own order, however they were ticked: the config and tensors read the same for
    // every run.
    const targets = LORA_TARGETS.filter((t) => request.targets.includes(t));
    const settings = {
      rank: request.rank,
      alpha: request.alpha,
      dropout: request.dropout,
      targets,
      useRslora: request.useRslora ?? false,
    };
    const adapter = this.slot.put(
      loaded.model,
      () => attachLora(loaded.model, settings, peftInit(request.seed), loaded.name),
      { id: null, name: 'the run in progress', style: this.dataset.style },
    );
    // Batches are as long as their longest example: the memory estimate uses that length.
    const longest = Math.max(...set.data.epochBatches(0).map((b) => b.seqLength));
    const recompute = resolveRecompute(request.recompute ?? 'auto', loaded.args, {
      rank: request.rank,
      targets,
      batchSize: request.batchSize,
      maxLength: longest,
    });
    this.trainer = new Trainer(loaded.model, adapter, set.data, {
      recompute,
      learningRate: request.learningRate,
      epochs: request.epochs,
      gradAccum: request.gradAccum,
      warmupSteps: request.warmupSteps,
      maxGradNorm: 1,
      weightDecay: 0,
      seed: request.seed,
      evalEvery: request.evalEvery,
      patience: request.patience,
      keep: request.keep,
    });
  }

  /** Saves the run's full state; a full disk is reported and training goes on. */
  private async checkpoint(emit: (event: TrainEvent) => void): Promise<void> {
    if (!this.trainer || !this.run) return;
    try {
      await saveRun({
        ...this.run,
        savedAt: Date.now(),
        step: this.trainer.step,
        state: await this.trainer.exportState(),
      });
    } catch (error) {
      emit({ kind: 'warning', message: (error as Error).message });
    }
  }

  /**
   * Runs the current trainer until it is done, paused or stopped. A paused trainer stays ready to continue.
   */
  async continue(
    loaded: LoadedModel,
    emit: (event: TrainEvent) => void,
  ): Promise<Omit<TrainResult, 'backend'>> {
    const trainer = this.trainer;
    const run = this.run;
    if (!trainer || !run) throw new Error('There is no paused training run to resume.');
    this.request = 'run';
    // Read through a function: the request changes while the loop awaits (a message from the page).
    const requested = () => this.request;
    let paused = false;
    let adapterId: string | null = null;
    try {
      const summary = await explainFailures(
        () => trainer.step,
        () =>
          runTraining(trainer, {
            onStep: async (metrics) => {
              // A step with no tokens (all completions truncated away) has no loss to draw or average.
              if (metrics.tokens > 0) run.lossHistory.push({ step: metrics.step, loss: metrics.loss });
              emit({ kind: 'step', metrics });
              // Let pause and stop requests in between steps.
              await new Promise((resolve) => setTimeout(resolve, 0));
            },
            onEval: ({ step, valLoss, best }) => {
              run.evalHistory.push({ step, valLoss });
              emit({ kind: 'eval', step, valLoss, best });
            },
            checkpointEvery: CHECKPOINT_EVERY,
            onCheckpoint: () => this.checkpoint(emit),
            shouldStop: () => requested() !== 'run',
          }),
      );
      paused = summary.stopped && requested() === 'pause';
      if (paused) await this.checkpoint(emit);
      else if (!summary.stopped) adapterId = await this.finish(loaded, run, summary, emit);
      else if (this.slot.info) this.slot.info = { ...this.slot.info, name: 'the stopped run (not saved)' };
      const trainLoss = lastEpochMeanLoss(run.lossHistory, trainer.stepsPerEpoch, trainer.step);
      return {
        steps: summary.steps,
        trainLoss,
        valLoss: summary.valLoss ?? run.evalHistory.at(-1)?.valLoss ?? null,
        tokensPerSecond: summary.tokensPerSecond,
        stopped: summary.stopped && !paused,
        paused,
        adapterId,
        unsaved: this.hasUnsaved,
        best: summary.best,
        kept: summary.kept,
        earlyStopped: summary.earlyStopped,
      };
    } finally {
      if (!paused) {
        trainer.dispose();
        this.trainer = null;
        this.endRun();
      }
    }
  }

  /**
   * A finished run: its adapter goes to the library (and stays attached for the chat); its checkpoint is no
   * longer needed.
   */
  private async finish(
    loaded: LoadedModel,
    run: RunInfo,
    summary: TrainSummary,
    emit: (event: TrainEvent) => void,
  ): Promise<string | null> {
    try {
      const weights = await this.slot.adapter!.toWeights();
      const setup = readRunSetup(run.setup);
      const info: AdapterInfo = {
        name: `${loaded.name}-${setup.prepare.fileName.replace(/\.[^.]+$/, '')}`,
        modelName: loaded.name,
        datasetName: setup.prepare.fileName,
        promptStyle: this.slot.info?.style ?? null,
        settings: { ...setup.train, maxLength: setup.prepare.maxLength, valSplit: setup.prepare.valSplit },
        trainLoss: lastEpochMeanLoss(run.lossHistory, this.trainer!.stepsPerEpoch, summary.steps),
        valLoss: summary.valLoss,
        lossHistory: mergeHistories(run.lossHistory, run.evalHistory),
      };
      const zip = writeAdapterZip(
        { ...weights, metadata: infoMetadata(info) },
        { readme: adapterReadme(weights.config, info.name, info.promptStyle) },
      );
      // Kept until it is stored: a full disk must not lose a finished run.
      this.unsaved = {
        adapter: { ...info, datasetId: run.datasetId, origin: 'trained', zip },
        runId: run.id,
      };
      return await this.saveAgain();
    } catch (error) {
      emit({
        kind: 'warning',
        message: `${(error as Error).message} The adapter is kept in this tab: press "Save the adapter again" once there is room.`,
      });
      return null;
    }
  }

  /** Whether a finished run's adapter is waiting to be stored (see saveAgain). */
  get hasUnsaved(): boolean {
    return this.unsaved !== null;
  }

  /** Stores the finished run's adapter (again); its checkpoint goes only once the adapter is safe. */
  async saveAgain(): Promise<string> {
    const pending = this.unsaved;
    if (!pending) throw new Error('There is no finished adapter waiting to be saved.');
    const saved = await saveAdapter(pending.adapter);
    this.unsaved = null;
    this.slot.info = { id: saved.id, name: saved.name, style: pending.adapter.promptStyle ?? null };
    await deleteRun(pending.runId);
    return saved.id;
  }

  /** Asks the running loop to end after the current step: 'pause' keeps the run resumable. */
  interrupt(kind: 'pause' | 'stop'): boolean {
    if (kind === 'stop' && this.trainer && this.request === 'pause') {
      // Stopping a paused run: nothing is running, so end it here.
      this.trainer.dispose();
      this.trainer = null;
      this.endRun();
    }
    this.request = kind;
    return true;
  }
}

/** One loss curve: validation losses joined to the training step they were measured at. */
function mergeHistories(
  losses: { step: number; loss: number }[],
  evals: { step: number; valLoss: number }[],
): AdapterInfo['lossHistory'] {
  const valAt = new Map(evals.map((e) => [e.step, e.valLoss]));
  return losses.map((p) => (valAt.has(p.step) ? { ...p, valLoss: valAt.get(p.step)! } : { ...p }));
}
