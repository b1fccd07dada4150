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
  private stopRequested = false;
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
    // Batches depend on the batch size, so rebuild the set with the one chosen for this run.
    this.prepare(loaded, this.lastPrepare, request.batchSize);
    if (this.adapter) detachLora(loaded.model, this.adapter);
    this.adapter = attachLora(loaded.model, { rank: request.rank, alpha: request.alpha, dropout: request.dropout, targets: request.targets as LoraTarget[], useRslora: false }, peftInit(request.seed), loaded.name);
    const trainer = new Trainer(loaded.model, this.adapter, this.set!.data, {
      learningRate: request.learningRate,
      epochs: request.epochs,
      gradAccum: request.gradAccum,
      warmupSteps: request.warmupSteps,
      maxGradNorm: 1,
      weightDecay: 0,
      seed: request.seed,
    });
    this.stopRequested = false;
    try {
      const summary = await runTraining(trainer, {
        onStep: async (metrics) => {
          emit({ kind: 'step', metrics });
          // Let stop requests (and other messages) in between steps.
          await new Promise((resolve) => setTimeout(resolve, 0));
        },
        onEval: ({ step, valLoss }) => emit({ kind: 'eval', step, valLoss }),
        shouldStop: () => this.stopRequested,
      });
      return { steps: summary.steps, trainLoss: summary.trainLoss, valLoss: summary.valLoss, tokensPerSecond: summary.tokensPerSecond, stopped: summary.stopped };
    } finally {
      trainer.dispose();
    }
  }

  stop(): boolean {
    this.stopRequested = true;
    return true;
  }
}
