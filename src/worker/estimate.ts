/**
 * How long a training run will take on this device, and how much memory it needs, before it starts: a
 * short warm-up of real training steps on the open dataset with the run's settings, on a throwaway
 * adapter. The first step (where backends compile kernels and allocate) is not counted; the next ones
 * give the seconds per step, which scale to the run's steps, validation passes and checkpoints. The
 * model is left exactly as it was: the chat's adapter is set aside for the warm-up and put back after.
 */
import { countTargets, type Batch } from '../engine/batch';
import { attachLora, detachLora, peftInit, type LoraAdapter } from '../engine/lora';
import { estimateTrainingMemory, resolveRecompute, wasmHeapNeed } from '../engine/memory';
import type { LoadedModel } from '../engine/load';
import type { LlamaModel } from '../engine/model';
import { batchLossSum, Trainer } from '../engine/train';
import { tf } from '../engine/tf';
import { LORA_TARGETS, modulePath, type LoraTarget } from '../formats/peft';
import type { AdapterSlot } from './adapter-slot';
import type { DatasetSession } from './dataset-session';
import type { TrainingEstimate, TrainRequest } from './protocol';
import { CHECKPOINT_EVERY } from './training';

/** Steps timed after the warm-up step: enough to average out noise, few enough to take seconds. */
export const MEASURED_STEPS = 2;

export class EstimateSession {
  private job: { stopped: boolean; done: Promise<unknown> } | null = null;

  constructor(
    private readonly slot: AdapterSlot,
    private readonly dataset: DatasetSession,
  ) {}

  get busy(): boolean {
    return this.job !== null;
  }

  /** Ends the warm-up in progress after its current step (its request fails saying so) and waits for it. */
  async stop(): Promise<void> {
    const job = this.job;
    if (!job) return;
    job.stopped = true;
    await job.done.catch(() => {});
  }

  /**
   * Measures a run of `request` on `loaded` with the open dataset. `prepare` runs first (choosing the
   * backend, checking nothing else uses the model) and names the backend the run will use. A newer
   * estimate, or stop(), ends this one.
   */
  estimate(
    loaded: LoadedModel,
    request: Omit<TrainRequest, 'source'>,
    prepare: () => Promise<string>,
  ): Promise<TrainingEstimate> {
    const previous = this.job;
    if (previous) previous.stopped = true;
    // Registered at once, so a request that arrives while the backend is chosen waits for it too.
    const job: { stopped: boolean; done: Promise<unknown> } = { stopped: false, done: Promise.resolve() };
    const stopped = () => job.stopped;
    const work = (async () => {
      await previous?.done.catch(() => {});
      const backend = await prepare();
      if (stopped()) throw new Error('The estimate was interrupted.');
      return this.measure(loaded, request, backend, stopped);
    })();
    job.done = work;
    this.job = job;
    const clear = () => {
      if (this.job === job) this.job = null;
    };
    work.then(clear, clear);
    return work;
  }

  private async measure(
    loaded: LoadedModel,
    request: Omit<TrainRequest, 'source'>,
    backend: string,
    stopped: () => boolean,
  ): Promise<TrainingEstimate> {
    // Built the way the run builds it: same batch size, accumulation, split and order.
    const set = this.dataset.trainingSet(request.batchSize, request.gradAccum);
    const batches = set.data.epochBatches(0);
    if (batches.length === 0)
      throw new Error('There is nothing to train on: the training split has no examples.');
    const stepsPerEpoch = Math.ceil(batches.length / request.gradAccum);
    const totalSteps = stepsPerEpoch * request.epochs;
    const targets = LORA_TARGETS.filter((t) => request.targets.includes(t));

    // Memory, as the CLI reports it: batches are as long as their longest example.
    const longest = Math.max(...batches.map((b) => b.seqLength));
    const memorySettings = { rank: request.rank, targets, batchSize: request.batchSize, maxLength: longest };
    const recompute = resolveRecompute(request.recompute ?? 'auto', loaded.args, memorySettings);
    const memory = estimateTrainingMemory(loaded.args, { ...memorySettings, recompute });
    const memoryBytes = backend === 'wasm' ? wasmHeapNeed(memory) : memory.total;

    // The longest batch warms up (it compiles and allocates the most); then batches of the epoch's typical
    // size.
    const trainable = batches.filter((b) => countTargets(b) > 0);
    if (trainable.length === 0)
      throw new Error('Every completion was cut away by the max length: raise it, or shorten the prompts.');
    const warm = trainable.reduce((a, b) => (cells(b) > cells(a) ? b : a));
    const measured = typical(trainable, MEASURED_STEPS);
    const validation = set.data.validation;
    const validationBatch = validation.length ? typical(validation, 1)[0] : null;

    const model = loaded.model;
    const putBack = this.slot.adapter ? setAside(model, this.slot.adapter) : () => {};
    let adapter: LoraAdapter | null = null;
    let trainer: Trainer | null = null;
    try {
      const settings = {
        rank: request.rank,
        alpha: request.alpha,
        dropout: request.dropout,
        targets,
        useRslora: request.useRslora ?? false,
      };
      adapter = attachLora(model, settings, peftInit(request.seed), loaded.name);
      // One micro-batch per step: a run's step is gradAccum of them (counted below).
      trainer = new Trainer(
        model,
        adapter,
        { epochBatches: () => [warm, ...measured], validation: [] },
        {
          recompute,
          learningRate: request.learningRate,
          epochs: 1,
          gradAccum: 1,
          warmupSteps: 0,
          maxGradNorm: 1,
          weightDecay: 0,
          seed: request.seed,
        },
      );
      const interrupted = () => {
        if (stopped()) throw new Error('The estimate was interrupted.');
      };
      await trainer.trainStep();
      interrupted();
      let stepSeconds = 0;
      for (let i = 0; i < measured.length; i++) {
        const started = performance.now();
        await trainer.trainStep();
        stepSeconds += (performance.now() - started) / 1000;
        interrupted();
      }
      const secondsPerStep = (stepSeconds / measured.length) * request.gradAccum;

      // A checkpoint reads the adapter and optimizer state back to the host every CHECKPOINT_EVERY steps.
      const exportStarted = performance.now();
      await trainer.exportState();
      const checkpointSeconds = (performance.now() - exportStarted) / 1000;

      // Validation: a forward pass over every validation batch, after each epoch (or every evalEvery steps).
      let validationSeconds = 0;
      if (validationBatch) {
        await forward(model, validationBatch); // its first pass compiles too
        interrupted();
        const started = performance.now();
        await forward(model, validationBatch);
        validationSeconds = ((performance.now() - started) / 1000) * validation.length;
      }
      const validationPasses = validationBatch
        ? request.evalEvery
          ? Math.ceil(totalSteps / request.evalEvery)
          : request.epochs
        : 0;
      const checkpoints = Math.floor(totalSteps / CHECKPOINT_EVERY);
      const seconds =
        totalSteps * secondsPerStep + validationPasses * validationSeconds + checkpoints * checkpointSeconds;
      return {
        seconds,
        secondsPerStep,
        totalSteps,
        validationPasses,
        validationSeconds,
        memoryBytes,
        recompute,
        measuredSteps: measured.length,
        backend,
      };
    } finally {
      trainer?.dispose();
      if (adapter) detachLora(model, adapter);
      putBack();
    }
  }
}

/** Token positions a batch computes (padding included: it costs the same). */
function cells(batch: Batch): number {
  return batch.batchSize * batch.seqLength;
}

/** `n` batches closest in size to the average batch (repeating when there are fewer). */
function typical(batches: Batch[], n: number): Batch[] {
  const mean = batches.reduce((sum, b) => sum + cells(b), 0) / batches.length;
  const sorted = [...batches].sort((a, b) => Math.abs(cells(a) - mean) - Math.abs(cells(b) - mean));
  return Array.from({ length: n }, (_, i) => sorted[i % sorted.length]);
}

/** One validation batch's loss, read back as the run reads it. */
async function forward(model: LlamaModel, batch: Batch): Promise<void> {
  const sum = tf.tidy(() => batchLossSum(model, batch));
  await sum.data();
  sum.dispose();
}

/**
 * Unwraps `adapter`'s projections from the model (its tensors stay alive) so another adapter can be
 * attached; the function returned wraps them again exactly as they were.
 */
function setAside(model: LlamaModel, adapter: LoraAdapter): () => void {
  const swaps: { owner: Record<string, unknown>; target: LoraTarget; wrapped: unknown }[] = [];
  model.layers.forEach((layer, l) => {
    for (const target of adapter.settings.targets) {
      const wrapped = adapter.modules.get(modulePath(l, target));
      const owner = (target in layer.self_attn ? layer.self_attn : layer.mlp) as unknown as Record<
        string,
        unknown
      >;
      if (!wrapped || owner[target] !== wrapped) continue;
      owner[target] = wrapped.base;
      swaps.push({ owner, target, wrapped });
    }
  });
  return () => {
    for (const { owner, target, wrapped } of swaps) owner[target] = wrapped;
  };
}
