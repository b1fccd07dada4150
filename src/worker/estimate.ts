/**
 * How long a training run will take on this device, and how much memory it needs, before it starts. The
 * run's products are counted (engine/flops.ts) for its real batches, so the time is their FLOPs over the
 * speed this device reaches:
 *
 * 1. at once, from a short calibration product and the share of it steps reached before (half when
 *    nothing is known);
 * 2. then from one real step of the run, on a throwaway adapter, timed and scaled by FLOPs to the run (a
 *    step that would take seconds is timed on one example of its batch).
 *
 * Once a step of a model was timed on a backend, later estimates for it (other settings, other data) are
 * that speed scaled by FLOPs, at once and without a step: the model is not held again.
 *
 * The step needs the model: it waits its turn behind the chat or an evaluation, and gives way to anyone
 * who asks for the model (Start among them) after the step in flight. The model is left exactly as it
 * was: the chat's adapter is set aside for the step and put back after.
 */
import { countTargets, isPreferenceBatch, type Batch, type PreferenceBatch } from '../engine/batch';
import type { ModelArgs } from '../engine/config';
import { forwardFlops, trainingStepFlops } from '../engine/flops';
import { detachLora, type LoraAdapter } from '../engine/lora';
import { estimateTrainingMemory, resolveRecompute, type MemoryEstimate } from '../engine/memory';
import type { LoadedModel } from '../engine/load';
import type { LlamaModel } from '../engine/model';
import { matMulGflops, smallOpSeconds } from '../engine/speed';
import type { Trainer } from '../engine/train';
import { LORA_TARGETS, modulePath, type LoraTarget } from '../formats/peft';
import { setUpTrainer } from '../data/trainer-setup';
import type { AdapterSlot } from './adapter-slot';
import type { DatasetSession } from './dataset-session';
import { LeaseRefused, type ModelLease } from './lease';
import type { TrainingEstimate, TrainRequest } from './protocol';
import { CHECKPOINT_EVERY } from './training';
import { tabMemoryNeed } from '../engine/weights-choice';
import type { WeightFormat } from '../engine/quant';

type EstimateRequest = Omit<TrainRequest, 'source'>;

/** The share of a calibration product's speed a training step reaches, before one was measured here. */
export const FIRST_EFFICIENCY = 0.5;

/**
 * A step longer than this, by the first figure, is timed on one example of the batch instead (and scaled by
 * FLOPs): the model is busy for as long as the step takes, and Start waits for it.
 */
const ONE_ROW_ABOVE_SECONDS = 2;

/**
 * Ops a training step runs per decoder layer and besides them, roughly (the bench counts 172–216 GPU
 * dispatches per layer): with each op's overhead they are the time a small model's step takes beyond its
 * FLOPs, which only the first figure has to guess.
 */
const OPS_PER_LAYER = 200;
const OPS_PER_STEP = 100;

const INTERRUPTED = 'The estimate was interrupted.';

/** What the run will do, counted before anything runs. */
interface Plan {
  totalSteps: number;
  validationPasses: number;
  checkpoints: number;
  /** Product FLOPs of every optimizer step of an epoch, and of one pass over the validation split. */
  epochFlops: number;
  stepsPerEpoch: number;
  validationFlops: number;
  /** Product FLOPs of what the objective does once before the first step (DPO's reference pass). */
  referenceFlops: number;
  memory: MemoryEstimate;
  recompute: boolean;
  /** Ops of one optimizer step (all its micro-batches), for the overhead a first figure adds. */
  opsPerStep: number;
  gradAccum: number;
  validationBatches: number;
  /** The batch closest to the epoch's average, which the real step trains on. */
  typical: Batch;
  stepFlops: (batch: Batch) => number;
}

/** How the host chooses backends: the one running now, and the one the run asks for. */
export interface Backends {
  current(): string | null;
  choose(): Promise<string>;
}

/** The model loaded now (the estimate checks it is still the one it planned for once it has the lease). */
export type CurrentModel = () => LoadedModel | null;

export class EstimateSession {
  private job: { stopped: boolean } | null = null;
  /** GFLOP/s a real step reached, by backend and model. */
  private readonly achieved = new Map<string, number>();
  /** A calibration product's GFLOP/s and one small op's seconds, by backend. */
  private readonly peak = new Map<string, number>();
  private readonly opSeconds = new Map<string, number>();
  /** The share of the calibration product's speed a real step reached, by backend. */
  private readonly efficiency = new Map<string, number>();
  /** Seconds a checkpoint's read-back took, by backend and model. */
  private readonly checkpointSeconds = new Map<string, number>();

  constructor(
    private readonly slot: AdapterSlot,
    private readonly dataset: DatasetSession,
    private readonly lease: ModelLease,
  ) {}

  get busy(): boolean {
    return this.job !== null;
  }

  /** Ends the estimate in progress: at once while it waits for the model, else after its step. */
  cancel(): void {
    if (this.job) this.job.stopped = true;
  }

  /**
   * The run of `request` on `loaded` with the open dataset: a first figure to `onFirst` at once (when the
   * device's speed is known or can be calibrated on this backend), then one real step's. A newer estimate
   * ends this one.
   */
  async estimate(
    loaded: LoadedModel,
    request: EstimateRequest,
    onFirst: (estimate: TrainingEstimate) => void,
    backends: Backends,
    currentModel: CurrentModel = () => loaded,
  ): Promise<TrainingEstimate> {
    if (this.lease.holder === 'training')
      throw new LeaseRefused('Training is running: the estimate waits until it ends.');
    if (this.job) this.job.stopped = true;
    const job = { stopped: false };
    this.job = job;
    try {
      const plan = this.plan(loaded.args, request, loaded.weights.format);
      const current = backends.current();
      const backend = request.backend === 'auto' ? current : request.backend;
      const key = (on: string | null) => `${on}/${loaded.name}/${plan.recompute}`;
      // A step of this model was timed here before: its speed, scaled by FLOPs, is the figure; no step runs.
      const reached = this.achieved.get(key(backend));
      if (reached !== undefined)
        return figure(plan, reached, backend!, 1, this.checkpointSeconds.get(key(backend)) ?? 0);
      const gflops = backend === null ? undefined : await this.calibrated(backend, current, loaded.args);
      const overhead = plan.opsPerStep * (this.opSeconds.get(backend!) ?? 0);
      const first = gflops === undefined ? null : figure(plan, gflops, backend!, 0, 0, overhead);
      if (first && !job.stopped) onFirst(first);

      const release = await this.lease.wait(
        { kind: 'estimate', yieldTo: () => (job.stopped = true) },
        'estimate',
        { replacesAdapter: true },
        () => !job.stopped,
      );
      try {
        // Another model may have been loaded while the estimate waited.
        if (job.stopped || currentModel() !== loaded) throw new LeaseRefused(INTERRUPTED);
        const chosen = await backends.choose();
        const batch =
          first && first.secondsPerStep / request.gradAccum > ONE_ROW_ABOVE_SECONDS
            ? fullestRow(plan.typical)
            : plan.typical;
        const measured = await this.measure(loaded, request, plan, batch, () => job.stopped);
        const speed = plan.stepFlops(batch) / measured.stepSeconds / 1e9;
        this.achieved.set(key(chosen), speed);
        this.checkpointSeconds.set(key(chosen), measured.checkpointSeconds);
        const peak = this.peak.get(chosen);
        if (peak) this.efficiency.set(chosen, Math.min(1, speed / peak));
        return figure(plan, speed, chosen, 1, measured.checkpointSeconds);
      } finally {
        release();
      }
    } catch (error) {
      if (job.stopped) throw new LeaseRefused(INTERRUPTED);
      throw error;
    } finally {
      if (this.job === job) this.job = null;
    }
  }

  /** The device's speed for a step on `backend` from a calibration product (only on the running backend). */
  private async calibrated(
    backend: string,
    current: string | null,
    args: ModelArgs,
  ): Promise<number | undefined> {
    let peak = this.peak.get(backend);
    if (peak === undefined) {
      if (backend !== current) return undefined;
      // The model's own MLP product: a shape its steps spend their time on.
      peak = await matMulGflops(256, args.hiddenSize, args.intermediateSize, 3);
      this.peak.set(backend, peak);
      this.opSeconds.set(backend, await smallOpSeconds());
    }
    return peak * (this.efficiency.get(backend) ?? FIRST_EFFICIENCY);
  }

  /** Steps, passes, FLOPs and memory of the run, from its batches as the run will build them. */
  private plan(args: ModelArgs, request: EstimateRequest, weights: WeightFormat): Plan {
    // Built the way the run builds it: same batch size, accumulation, split and order.
    const data = this.dataset.trainingData(request.batchSize, request.gradAccum, request.objective);
    const batches = data.epochBatches(0);
    const trainable = batches.filter((b) => countTargets(b) > 0);
    if (batches.length === 0)
      throw new Error('There is nothing to train on: the training split has no examples.');
    if (trainable.length === 0)
      throw new Error('Every completion was cut away by the max length: raise it, or shorten the prompts.');
    const stepsPerEpoch = Math.ceil(batches.length / request.gradAccum);
    const totalSteps = stepsPerEpoch * request.epochs;
    const targets = LORA_TARGETS.filter((t) => request.targets.includes(t));
    // Memory, as the CLI reports it: batches are as long as their longest example.
    const longest = Math.max(...batches.map((b) => b.seqLength));
    const forMemory = {
      rank: request.rank,
      targets,
      // A batch of pairs holds each prompt twice, with its chosen and with its rejected answer.
      batchSize: (request.objective ?? 'sft') === 'sft' ? request.batchSize : 2 * request.batchSize,
      maxLength: longest,
      weights,
    };
    const recompute = resolveRecompute(request.recompute ?? 'auto', args, forMemory);
    const memory = estimateTrainingMemory(args, { ...forMemory, recompute });
    const shape = (b: Batch) => ({
      batch: b.batchSize,
      steps: b.seqLength - 1,
      lossRows: countTargets(b),
      rank: request.rank,
      targets,
    });
    // A micro-batch with nothing to learn is skipped by the trainer: it costs nothing.
    const stepFlops = (b: Batch) =>
      countTargets(b) > 0 ? trainingStepFlops(args, { ...shape(b), recompute }) : 0;
    const validation = data.validation;
    const validationPasses = validation.length
      ? request.evalEvery
        ? Math.ceil(totalSteps / request.evalEvery)
        : request.epochs
      : 0;
    return {
      totalSteps,
      stepsPerEpoch,
      validationPasses,
      checkpoints: Math.floor(totalSteps / CHECKPOINT_EVERY),
      epochFlops: batches.reduce((sum, b) => sum + stepFlops(b), 0),
      validationFlops: validation.reduce((sum, b) => sum + forwardFlops(args, shape(b)), 0),
      // DPO's reference pass: every training and validation pair forward once, the adapter off.
      referenceFlops:
        request.objective === 'dpo'
          ? [...batches, ...validation].reduce((sum, b) => sum + forwardFlops(args, shape(b)), 0)
          : 0,
      memory,
      opsPerStep: request.gradAccum * (args.numLayers * OPS_PER_LAYER + OPS_PER_STEP),
      gradAccum: request.gradAccum,
      validationBatches: validation.length,
      recompute,
      typical: typical(trainable, stepFlops),
      stepFlops,
    };
  }

  /** One real step of the run on a throwaway adapter, and a checkpoint's read-back, timed. */
  private async measure(
    loaded: LoadedModel,
    request: EstimateRequest,
    plan: Plan,
    batch: Batch,
    stopped: () => boolean,
  ): Promise<{ stepSeconds: number; checkpointSeconds: number }> {
    const model = loaded.model;
    const putBack = this.slot.adapter ? setAside(model, this.slot.adapter) : () => {};
    let adapter: LoraAdapter | null = null;
    let trainer: Trainer | null = null;
    try {
      const data = { epochBatches: () => [batch], validation: [] };
      const settings = {
        ...request,
        epochs: 1,
        gradAccum: 1,
        warmupSteps: 0,
        recompute: plan.recompute ? ('on' as const) : ('off' as const),
      };
      ({ trainer, adapter } = setUpTrainer(loaded, data, settings));
      // DPO's reference pass on this batch is not part of a step (the figure counts it apart).
      await trainer.prepare();
      const started = performance.now();
      await trainer.trainStep();
      const stepSeconds = (performance.now() - started) / 1000;
      if (stopped()) throw new LeaseRefused(INTERRUPTED);
      // A checkpoint reads the adapter and optimizer state back to the host every CHECKPOINT_EVERY steps.
      const exportStarted = performance.now();
      await trainer.exportState();
      return { stepSeconds, checkpointSeconds: (performance.now() - exportStarted) / 1000 };
    } finally {
      trainer?.dispose();
      if (adapter) detachLora(model, adapter);
      putBack();
    }
  }
}

/**
 * The run's time at `gflops` achieved GFLOP/s; `overhead`: seconds each step spends beyond its FLOPs (a first
 * figure's guess; a measured speed has it in it).
 */
function figure(
  plan: Plan,
  gflops: number,
  backend: string,
  measuredSteps: number,
  checkpointSeconds: number,
  overhead = 0,
): TrainingEstimate {
  const secondsPerStep = plan.epochFlops / plan.stepsPerEpoch / (gflops * 1e9) + overhead;
  // A validation pass runs each batch forward: about a third of a step's ops each.
  const validationSeconds =
    plan.validationFlops / (gflops * 1e9) + (plan.validationBatches * overhead) / (3 * plan.gradAccum);
  return {
    basis: measuredSteps > 0 ? 'measured' : 'speed',
    seconds:
      plan.referenceFlops / (gflops * 1e9) +
      plan.totalSteps * secondsPerStep +
      plan.validationPasses * validationSeconds +
      plan.checkpoints * checkpointSeconds,
    secondsPerStep,
    totalSteps: plan.totalSteps,
    validationPasses: plan.validationPasses,
    validationSeconds,
    // On wasm, XNNPACK's packed copies of the weights come on top of the tensors.
    memoryBytes: tabMemoryNeed(plan.memory, backend),
    recompute: plan.recompute,
    measuredSteps,
    gflops,
    backend,
  };
}

/**
 * The row of `batch` with the most completion tokens, as a batch of one; of a batch of pairs, its first
 * pair, as a batch of one pair.
 */
function fullestRow(batch: Batch): Batch {
  const T = batch.seqLength;
  if (isPreferenceBatch(batch)) {
    const pairs = batch.pairIds.length;
    const rows = <A extends Int32Array | Float32Array>(part: A) =>
      concatRows(part.subarray(0, T) as A, part.subarray(pairs * T, (pairs + 1) * T) as A);
    const pair: PreferenceBatch = {
      ids: rows(batch.ids),
      targetMask: rows(batch.targetMask),
      attentionMask: rows(batch.attentionMask),
      batchSize: 2,
      seqLength: T,
      pairIds: batch.pairIds.slice(0, 1),
    };
    return pair;
  }
  const row = (r: number) => ({
    ids: batch.ids.subarray(r * T, (r + 1) * T),
    targetMask: batch.targetMask.subarray(r * T, (r + 1) * T),
    attentionMask: batch.attentionMask.subarray(r * T, (r + 1) * T),
    batchSize: 1,
    seqLength: T,
  });
  const rows = Array.from({ length: batch.batchSize }, (_, r) => row(r));
  return rows.reduce((best, b) => (countTargets(b) > countTargets(best) ? b : best));
}

/** The batch whose step FLOPs are closest to the epoch's average. */
function typical(batches: Batch[], flops: (b: Batch) => number): Batch {
  const mean = batches.reduce((sum, b) => sum + flops(b), 0) / batches.length;
  return batches.reduce((best, b) => (Math.abs(flops(b) - mean) < Math.abs(flops(best) - mean) ? b : best));
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

/** Two rows of a batch's array, one after the other, in a new array of the same type. */
function concatRows<T extends Int32Array | Float32Array>(first: T, second: T): T {
  const joined = new (first.constructor as new (length: number) => T)(first.length + second.length);
  joined.set(first);
  joined.set(second, first.length);
  return joined;
}
