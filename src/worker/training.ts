/**
 * The worker's training run: LoRA training on the open dataset's training set, pause and stop, checkpoints.
 * The run's phase (run-state.ts) changes only by its transitions; its steps hold the model's lease
 * (lease.ts), which a paused run gives back while keeping its adapter on the model.
 */
import { isPreferenceBatch, type Batch } from '../engine/batch';
import type { LoadedModel } from '../engine/load';
import type { LoraAdapter } from '../engine/lora';
import { lastEpochMeanLoss, runTraining, type Trainer, type TrainSummary } from '../engine/train';
import { setUpTrainer } from '../data/trainer-setup';
import { infoMetadata, objectiveOf, type AdapterInfo } from '../formats/adapter-info';
import { writeAdapterZip } from '../formats/peft';
import { adapterReadme } from '../formats/readme';
import { saveAdapter, type NewAdapter } from '../store/adapters';
import { newId } from '../store/db';
import { holdRunLock } from '../store/locks';
import { deleteRun, getRun, saveRun, type SavedRun } from '../store/runs';
import type { AdapterSlot, TrainedOn } from './adapter-slot';
import type { DatasetSession } from './dataset-session';
import { explainFailures } from './failures';
import type { Holder, ModelLease, Release } from './lease';
import type { RunSetup, TrainEvent, TrainRequest, TrainResult } from './protocol';
import { trainedOnOf } from './library';
import { readRunSetup, trainingSplit } from './run-setup';
import { RunState, type RunPhase } from './run-state';

/** Steps between checkpoints saved to IndexedDB (and one at every pause). */
export const CHECKPOINT_EVERY = 5;

type RunInfo = Omit<SavedRun, 'state'>;
type Emit = (event: TrainEvent) => void;

export class TrainingSession {
  private trainer: Trainer | null = null;
  /** The run's phase; its transitions are the only way to change it. */
  readonly state: RunState;
  /** A finished run's adapter that could not be stored yet (see saveAgain). */
  private unsaved: { adapter: NewAdapter; runId: string; attached: LoraAdapter | null } | null = null;
  /** Releases this tab's Web Lock on the run (see store/locks.ts). */
  private releaseRun: (() => void) | null = null;
  private run: RunInfo | null = null;
  /** Where phase changes go while a request runs the loop (the page shows "Pausing…", "Stopping…"). */
  private emit: Emit | null = null;
  /** How the run appears to a request the lease refuses. */
  readonly holder: Holder = {
    kind: 'training',
    describe: () => {
      const phase = this.state.phase;
      if (phase === 'pausing')
        return { doing: 'Training is pausing after its current step', until: 'Wait for it to pause' };
      if (phase === 'stopping')
        return { doing: 'Training is stopping after its current step', until: 'Wait for it to stop' };
      return { doing: 'Training is running', until: 'Pause it or wait for it to finish' };
    },
  };

  constructor(
    private readonly slot: AdapterSlot,
    private readonly dataset: DatasetSession,
    private readonly lease: ModelLease,
  ) {
    this.state = new RunState((phase) => this.emit?.({ kind: 'phase', phase }));
  }

  get phase(): RunPhase {
    return this.state.phase;
  }

  /** Ends this tab's claim on the run (its Web Lock), so another tab may resume it. */
  private endRun(): void {
    this.releaseRun?.();
    this.releaseRun = null;
  }

  /**
   * Starts a run of `request` on the open dataset. `prepare` runs once the run holds the model (it chooses
   * the backend).
   */
  async train(
    loaded: LoadedModel,
    request: TrainRequest,
    emit: Emit,
    prepare: () => Promise<void> = async () => {},
  ): Promise<Omit<TrainResult, 'backend'>> {
    this.state.check('start');
    if (!this.dataset.ready) throw new Error('Choose a dataset and which columns to learn before training.');
    // One seed splits and shuffles the examples and starts the adapter, as in the CLI: an export rebuilds the
    // split from the run's seed, so it must be the one the dataset was split with.
    const splitSeed = this.dataset.setup.seed;
    if (request.seed !== splitSeed)
      throw new Error(
        `The run's seed (${request.seed}) is not the one the examples were split with (${splitSeed}). Set the seed again, then start.`,
      );
    const release = await this.lease.take(this.holder, 'train', { replacesAdapter: true });
    return this.begin(loaded, release, emit, async () => {
      await prepare();
      const prepareSettings = this.dataset.setup;
      const id = newId();
      this.releaseRun = await holdRunLock(id);
      const pairs = this.startTrainer(loaded, request, {
        datasetId: request.source.datasetId,
        datasetName: prepareSettings.fileName,
        split: trainingSplit(prepareSettings),
      });
      // DPO scores every pair with the adapter off before its first step (a resumed run brings the scores).
      if (request.objective === 'dpo') {
        emit({ kind: 'reference', pairs, done: false });
        await this.trainer!.prepare();
        emit({ kind: 'reference', pairs, done: true });
      }
      this.run = {
        id,
        savedAt: Date.now(),
        modelName: loaded.name,
        modelUrl: request.source.modelUrl,
        datasetId: request.source.datasetId,
        setup: { train: request, prepare: prepareSettings } satisfies RunSetup,
        step: 0,
        totalSteps: this.trainer!.totalSteps,
        lossHistory: [],
        evalHistory: [],
      };
    });
  }

  /** Continues a run saved before a reload; the page has prepared its dataset with the saved settings. */
  async resumeSaved(
    loaded: LoadedModel,
    runId: string,
    emit: Emit,
    prepare: () => Promise<void> = async () => {},
  ): Promise<Omit<TrainResult, 'backend'>> {
    this.state.check('start');
    if (!this.dataset.ready) throw new Error("Load the run's dataset before resuming.");
    const release = await this.lease.take(this.holder, 'resume the saved run', { replacesAdapter: true });
    return this.begin(loaded, release, emit, async () => {
      await prepare();
      const saved = await getRun(runId);
      if (!saved)
        throw new Error('That training run is no longer saved on this device; start training again.');
      // Another tab may be training this very run: both would write one checkpoint.
      this.releaseRun = await holdRunLock(runId);
      const setup = readRunSetup(saved.setup);
      this.startTrainer(loaded, setup.train, {
        datasetId: saved.datasetId,
        datasetName: setup.prepare.fileName,
        split: trainingSplit(setup.prepare),
      });
      this.trainer!.importState(saved.state);
      const { state: _state, ...run } = saved;
      this.run = run;
    });
  }

  /** Continues the paused run. */
  async resume(loaded: LoadedModel, emit: Emit): Promise<Omit<TrainResult, 'backend'>> {
    this.state.check('resume');
    const release = await this.lease.take(this.holder, 'resume training');
    this.emit = emit;
    try {
      // A Stop may have come while the lease was granted.
      this.state.apply('resume');
    } catch (error) {
      this.emit = null;
      release();
      throw error;
    }
    return this.loop(loaded, release, emit);
  }

  /**
   * A new run: `running` from the moment it holds the model, so a Pause or Stop during the set-up is
   * answered at the first step. A set-up that fails ends the run and gives everything back.
   */
  private async begin(
    loaded: LoadedModel,
    release: Release,
    emit: Emit,
    setUp: () => Promise<void>,
  ): Promise<Omit<TrainResult, 'backend'>> {
    this.emit = emit;
    try {
      this.state.apply('start');
    } catch (error) {
      this.emit = null;
      release();
      throw error;
    }
    try {
      await setUp();
    } catch (error) {
      this.discard();
      this.state.apply('ended');
      this.emit = null;
      release();
      throw error;
    }
    return this.loop(loaded, release, emit);
  }

  /**
   * `trainedOn`: the dataset and split of the run, which an evaluation of its adapter needs. Returns the
   * number of pairs a preference objective trains and validates on (0 for SFT).
   */
  private startTrainer(loaded: LoadedModel, request: TrainRequest, trainedOn: TrainedOn): number {
    // Batches depend on the batch size, so the set is built with the one chosen for this run.
    const data = this.dataset.trainingData(request.batchSize, request.gradAccum, request.objective);
    const { trainer } = setUpTrainer(loaded, data, request, (_lora, make) =>
      this.slot.put(loaded.model, make, {
        id: null,
        name: 'the run in progress',
        style: this.dataset.style,
        trainedOn,
      }),
    );
    this.trainer = trainer;
    const pairsIn = (batches: Batch[]) =>
      batches.reduce((n, b) => n + (isPreferenceBatch(b) ? b.pairIds.length : 0), 0);
    return pairsIn(data.epochBatches(0)) + pairsIn(data.validation);
  }

  /** Frees the trainer and the run's Web Lock (the adapter stays on the model for the chat). */
  private discard(): void {
    this.trainer?.dispose();
    this.trainer = null;
    this.endRun();
  }

  /** Saves the run's full state; a full disk is reported and training goes on. */
  private async checkpoint(emit: Emit): Promise<void> {
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
   * Runs the trainer until it is done or halted by a pause or stop, holding the model's lease throughout;
   * gives the lease back however it ends. A paused trainer stays ready to resume.
   */
  private async loop(
    loaded: LoadedModel,
    release: Release,
    emit: Emit,
  ): Promise<Omit<TrainResult, 'backend'>> {
    const trainer = this.trainer!;
    const run = this.run!;
    this.emit = emit;
    let adapterId: string | null = null;
    try {
      const summary = await explainFailures(
        () => trainer.step,
        () =>
          runTraining(trainer, {
            onStep: async (metrics) => {
              // A step with no tokens (all completions truncated away) has no loss to draw or average.
              if (metrics.tokens > 0) run.lossHistory.push({ step: metrics.step, loss: metrics.loss });
              const accuracy = metrics.objectiveMetrics?.['rewards/accuracies'];
              if (accuracy !== undefined) (run.rewardHistory ??= []).push({ step: metrics.step, accuracy });
              emit({ kind: 'step', metrics });
              // Let pause and stop requests in between steps.
              await new Promise((resolve) => setTimeout(resolve, 0));
            },
            onEval: ({ step, valLoss, best, objectiveMetrics }) => {
              run.evalHistory.push({ step, valLoss });
              const accuracy = objectiveMetrics?.['rewards/accuracies'];
              if (accuracy !== undefined) (run.rewardHistory ??= []).push({ step, accuracy, heldOut: true });
              emit({ kind: 'eval', step, valLoss, best, ...(objectiveMetrics && { objectiveMetrics }) });
            },
            checkpointEvery: CHECKPOINT_EVERY,
            onCheckpoint: () => this.checkpoint(emit),
            shouldStop: () => this.state.phase !== 'running',
          }),
      );
      // A pause keeps the run's state on the device before the model is given back.
      if (summary.stopped && this.state.phase === 'pausing') await this.checkpoint(emit);
      const phase = this.state.apply(summary.stopped ? 'halted' : 'ended');
      if (!summary.stopped) adapterId = await this.finish(loaded, run, summary, emit);
      else if (phase === 'idle' && this.slot.info)
        this.slot.info = { ...this.slot.info, name: 'the stopped run (not saved)' };
      const trainLoss = lastEpochMeanLoss(run.lossHistory, trainer.stepsPerEpoch, trainer.step);
      return {
        steps: summary.steps,
        trainLoss,
        valLoss: summary.valLoss ?? run.evalHistory.at(-1)?.valLoss ?? null,
        tokensPerSecond: summary.tokensPerSecond,
        stopped: summary.stopped && phase === 'idle',
        paused: phase === 'paused',
        adapterId,
        unsaved: this.hasUnsaved,
        best: summary.best,
        kept: summary.kept,
        earlyStopped: summary.earlyStopped,
      };
    } catch (error) {
      if (this.state.phase !== 'idle') this.state.apply('ended');
      throw error;
    } finally {
      this.emit = null;
      if (this.state.phase !== 'paused') this.discard();
      release();
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
      const split = trainingSplit(setup.prepare);
      const info: AdapterInfo = {
        name: `${loaded.name}-${setup.prepare.fileName.replace(/\.[^.]+$/, '')}`,
        modelName: loaded.name,
        datasetName: setup.prepare.fileName,
        promptStyle: this.slot.info?.style ?? null,
        settings: { ...setup.train, maxLength: setup.prepare.maxLength, valSplit: setup.prepare.valSplit },
        trainLoss: lastEpochMeanLoss(run.lossHistory, this.trainer!.stepsPerEpoch, summary.steps),
        valLoss: summary.valLoss,
        lossHistory: mergeHistories(run.lossHistory, run.evalHistory),
        ...(split && { split }),
      };
      const zip = writeAdapterZip(
        { ...weights, metadata: infoMetadata(info) },
        { readme: adapterReadme(weights.config, info.name, info.promptStyle, objectiveOf(info.settings)) },
      );
      // Kept until it is stored: a full disk must not lose a finished run.
      this.unsaved = {
        adapter: { ...info, datasetId: run.datasetId, origin: 'trained', zip },
        runId: run.id,
        attached: this.slot.adapter,
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
    // The chat's adapter is this one's library entry now, unless another adapter was chosen meanwhile.
    if (this.slot.adapter === pending.attached)
      this.slot.info = {
        id: saved.id,
        name: saved.name,
        style: pending.adapter.promptStyle ?? null,
        trainedOn: trainedOnOf(pending.adapter),
      };
    await deleteRun(pending.runId);
    return saved.id;
  }

  /** Asks the run to pause after its current step; the phase it is in now. */
  pause(): RunPhase {
    return this.state.apply('pause');
  }

  /**
   * Asks the run to stop after its current step; a paused run, with no step in flight, ends at once. The
   * phase it is in now.
   */
  stop(): RunPhase {
    const wasPaused = this.state.phase === 'paused';
    const phase = this.state.apply('stop');
    if (!wasPaused) return phase;
    this.discard();
    if (this.slot.info) this.slot.info = { ...this.slot.info, name: 'the stopped run (not saved)' };
    return this.state.apply('halted');
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
