/** The worker's data and training handlers: parse a dropped file, build the training set, run LoRA training. */
import { checkDatasetSize, decodeDatasetBytes, detectLayout, parseDataset, promptFormatFor } from '../data';
import { buildTrainingSet, type TrainingSet } from '../data/training-set';
import type { LoadedModel } from '../engine/load';
import { attachLora, detachLora, peftInit, type LoraAdapter } from '../engine/lora';
import { runTraining, Trainer, type TrainSummary } from '../engine/train';
import { writeAdapterZip, type LoraTarget } from '../formats/peft';
import { adapterReadme } from '../formats/readme';
import { newId } from '../store/database';
import { explainFailures } from './failures';
import { deleteRun, getRun, saveAdapter, saveRun, type SavedRun } from '../store/saved';
import type { PreparedDataset, PrepareRequest, RunSetup, TrainEvent, TrainRequest, TrainResult } from './protocol';

const PREVIEW_ROWS = 5;
/** Steps between checkpoints saved to IndexedDB (and one at every pause). */
export const CHECKPOINT_EVERY = 5;


type RunInfo = Omit<SavedRun, 'state'>;

export class TrainingSession {
  private set: TrainingSet | null = null;
  private lastPrepare: PrepareRequest | null = null;
  private trainer: Trainer | null = null;
  private request: 'run' | 'pause' | 'stop' = 'run';
  private run: RunInfo | null = null;
  adapter: LoraAdapter | null = null;

  prepare(loaded: LoadedModel, request: PrepareRequest, batchSize = 4): PreparedDataset {
    checkDatasetSize(request.bytes.byteLength);
    const dataset = parseDataset(decodeDatasetBytes(request.bytes), request.fileName);
    const mapping = request.mapping ?? detectLayout(dataset.columns);
    if (!mapping) {
      // Unknown layout: the page asks the user to choose the columns.
      this.set = null;
      return { format: dataset.format, columns: dataset.columns, mapping: null, detected: false, preview: [], stats: null, trainExamples: 0, validationExamples: 0, skipped: [] };
    }
    const format = promptFormatFor(loaded.tokenizer, request.useChatTemplate);
    this.set = buildTrainingSet(dataset, loaded.tokenizer, { mapping, format, maxLength: request.maxLength, valSplit: request.valSplit, batchSize, seed: request.seed });
    this.lastPrepare = request;
    return {
      format: dataset.format,
      columns: dataset.columns,
      mapping,
      detected: request.mapping === null,
      preview: [...this.set.train, ...this.set.validation].slice(0, PREVIEW_ROWS).map(({ example, encoded }) => ({ prompt: example.prompt, completion: example.completion, truncated: encoded.truncated })),
      stats: this.set.stats,
      trainExamples: this.set.train.length,
      validationExamples: this.set.validation.length,
      skipped: dataset.skipped.slice(0, 5).map((s) => s.reason),
    };
  }

  async train(loaded: LoadedModel, request: TrainRequest, emit: (event: TrainEvent) => void): Promise<Omit<TrainResult, 'backend'>> {
    if (!this.set || !this.lastPrepare) throw new Error('Choose a dataset and which columns to learn before training.');
    const { bytes: _bytes, ...prepare } = this.lastPrepare;
    this.startTrainer(loaded, request);
    this.run = {
      id: newId(),
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
  async resumeSaved(loaded: LoadedModel, runId: string, emit: (event: TrainEvent) => void): Promise<Omit<TrainResult, 'backend'>> {
    const saved = await getRun(runId);
    if (!saved) throw new Error('That training run is no longer saved on this device; start training again.');
    const { train } = saved.setup as RunSetup;
    if (!this.set) throw new Error('Load the run\'s dataset before resuming.');
    this.startTrainer(loaded, train);
    this.trainer!.importState(saved.state);
    const { state: _state, ...run } = saved;
    this.run = run;
    return this.continue(loaded, emit);
  }

  private startTrainer(loaded: LoadedModel, request: TrainRequest): void {
    this.trainer?.dispose();
    this.trainer = null;
    // Batches depend on the batch size, so rebuild the set with the one chosen for this run.
    this.prepare(loaded, this.lastPrepare!, request.batchSize);
    if (this.adapter) detachLora(loaded.model, this.adapter);
    this.adapter = attachLora(loaded.model, { rank: request.rank, alpha: request.alpha, dropout: request.dropout, targets: request.targets as LoraTarget[], useRslora: false }, peftInit(request.seed), loaded.name);
    this.trainer = new Trainer(loaded.model, this.adapter, this.set!.data, {
      learningRate: request.learningRate,
      epochs: request.epochs,
      gradAccum: request.gradAccum,
      warmupSteps: request.warmupSteps,
      maxGradNorm: 1,
      weightDecay: 0,
      seed: request.seed,
    });
  }

  /** Saves the run's full state; a full disk is reported and training goes on. */
  private async checkpoint(emit: (event: TrainEvent) => void): Promise<void> {
    if (!this.trainer || !this.run) return;
    try {
      await saveRun({ ...this.run, savedAt: Date.now(), step: this.trainer.step, state: await this.trainer.exportState() });
    } catch (error) {
      emit({ kind: 'warning', message: (error as Error).message });
    }
  }

  /** Runs the current trainer until it is done, paused or stopped. A paused trainer stays ready to continue. */
  async continue(loaded: LoadedModel, emit: (event: TrainEvent) => void): Promise<Omit<TrainResult, 'backend'>> {
    const trainer = this.trainer;
    const run = this.run;
    if (!trainer || !run) throw new Error('There is no paused training run to resume.');
    this.request = 'run';
    // Read through a function: the request changes while the loop awaits (a message from the page).
    const requested = () => this.request;
    let paused = false;
    try {
      const summary = await explainFailures(() => trainer.step, () =>
        runTraining(trainer, {
          onStep: async (metrics) => {
            run.lossHistory.push({ step: metrics.step, loss: metrics.loss });
            emit({ kind: 'step', metrics });
            // Let pause and stop requests in between steps.
            await new Promise((resolve) => setTimeout(resolve, 0));
          },
          onEval: ({ step, valLoss }) => {
            run.evalHistory.push({ step, valLoss });
            emit({ kind: 'eval', step, valLoss });
          },
          checkpointEvery: CHECKPOINT_EVERY,
          onCheckpoint: () => this.checkpoint(emit),
          shouldStop: () => requested() !== 'run',
        }),
      );
      paused = summary.stopped && requested() === 'pause';
      if (paused) await this.checkpoint(emit);
      else if (!summary.stopped) await this.finish(loaded, run, summary, emit);
      const trainLoss = meanOfLastEpoch(run.lossHistory, trainer.stepsPerEpoch, trainer.step);
      return { steps: summary.steps, trainLoss, valLoss: summary.valLoss ?? run.evalHistory.at(-1)?.valLoss ?? null, tokensPerSecond: summary.tokensPerSecond, stopped: summary.stopped && !paused, paused };
    } finally {
      if (!paused) {
        trainer.dispose();
        this.trainer = null;
      }
    }
  }

  /** A finished run: its adapter goes to the library and its checkpoint is no longer needed. */
  private async finish(loaded: LoadedModel, run: RunInfo, summary: TrainSummary, emit: (event: TrainEvent) => void): Promise<void> {
    try {
      const weights = await this.adapter!.toWeights();
      const setup = run.setup as RunSetup;
      const name = `${loaded.name}-${setup.prepare.fileName.replace(/\.[^.]+$/, '')}`;
      await saveAdapter({
        name,
        modelName: loaded.name,
        datasetName: setup.prepare.fileName,
        settings: setup.train,
        trainLoss: meanOfLastEpoch(run.lossHistory, this.trainer!.stepsPerEpoch, summary.steps),
        valLoss: summary.valLoss,
        lossHistory: run.lossHistory,
        zip: writeAdapterZip(weights, { readme: adapterReadme(weights.config, name) }),
      });
      await deleteRun(run.id);
    } catch (error) {
      emit({ kind: 'warning', message: (error as Error).message });
    }
  }

  /** Asks the running loop to end after the current step: 'pause' keeps the run resumable. */
  interrupt(kind: 'pause' | 'stop'): boolean {
    if (kind === 'stop' && this.trainer && this.request === 'pause') {
      // Stopping a paused run: nothing is running, so end it here.
      this.trainer.dispose();
      this.trainer = null;
    }
    this.request = kind;
    return true;
  }
}

/** Mean training loss over the steps of the last epoch reached (all of them, across a resume). */
function meanOfLastEpoch(history: { step: number; loss: number }[], stepsPerEpoch: number, lastStep: number): number {
  const epochStart = Math.floor((lastStep - 1) / stepsPerEpoch) * stepsPerEpoch;
  const losses = history.filter((h) => h.step > epochStart && h.step <= lastStep).map((h) => h.loss);
  return losses.length ? losses.reduce((a, b) => a + b, 0) / losses.length : NaN;
}
