/** The worker's data and training handlers: parse a dropped file, build the training set, run LoRA training. */
import { checkDatasetSize, decodeDatasetBytes, detectLayout, parseDataset, promptFormatFor } from '../data';
import { buildTrainingSet, type TrainingSet } from '../data/training-set';
import type { LoadedModel } from '../engine/load';
import { attachLora, detachLora, peftInit, type LoraAdapter } from '../engine/lora';
import { runTraining, Trainer } from '../engine/train';
import type { LoraTarget } from '../formats/peft';
import type { PreparedDataset, PrepareRequest, TrainEvent, TrainRequest, TrainResult } from './protocol';

const PREVIEW_ROWS = 5;

export class TrainingSession {
  private set: TrainingSet | null = null;
  private lastPrepare: PrepareRequest | null = null;
  private trainer: Trainer | null = null;
  private request: 'run' | 'pause' | 'stop' = 'run';
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
    this.trainer?.dispose();
    this.trainer = null;
    // Batches depend on the batch size, so rebuild the set with the one chosen for this run.
    this.prepare(loaded, this.lastPrepare, request.batchSize);
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
    return this.continue(emit);
  }

  /** Runs the current trainer until it is done, paused or stopped. A paused trainer stays ready to continue. */
  async continue(emit: (event: TrainEvent) => void): Promise<Omit<TrainResult, 'backend'>> {
    const trainer = this.trainer;
    if (!trainer) throw new Error('There is no paused training run to resume.');
    this.request = 'run';
    // Read through a function: the request changes while the loop awaits (a message from the page).
    const requested = () => this.request;
    let paused = false;
    try {
      const summary = await runTraining(trainer, {
        onStep: async (metrics) => {
          emit({ kind: 'step', metrics });
          // Let pause and stop requests in between steps.
          await new Promise((resolve) => setTimeout(resolve, 0));
        },
        onEval: ({ step, valLoss }) => emit({ kind: 'eval', step, valLoss }),
        shouldStop: () => requested() !== 'run',
      });
      paused = summary.stopped && requested() === 'pause';
      return { steps: summary.steps, trainLoss: summary.trainLoss, valLoss: summary.valLoss, tokensPerSecond: summary.tokensPerSecond, stopped: summary.stopped && !paused, paused };
    } finally {
      if (!paused) {
        trainer.dispose();
        this.trainer = null;
      }
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
