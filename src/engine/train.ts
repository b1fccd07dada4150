/**
 * LoRA training: a flat loop of get batch → forward → backward → clip → step → report, in the spirit
 * of nanoGPT's train.py. Reports go through callbacks, so the CLI prints, the worker posts messages
 * and tests collect, all from one loop.
 */
import { countTokens, type Batch } from './batch';
import type { LoraAdapter } from './lora';
import type { LlamaModel } from './model';
import { batchLogProbs, SFT, TrainingError, type Objective, type ObjectiveState } from './objective';
import { AdamW, DEFAULT_ADAMW, type AdamWState } from './optimizer';
import { createRng, type Rng } from './random';
import { lastEpochMeanLoss } from './loss-report';
import { learningRateAt } from './schedule';
import { tf } from './tf';

export interface TrainSettings {
  learningRate: number;
  epochs: number;
  /** Micro-batches whose gradients are summed before one optimizer step. */
  gradAccum: number;
  warmupSteps: number;
  maxGradNorm: number;
  weightDecay: number;
  seed: number;
  /** Recompute each layer in the backward pass (default on): far less memory, one more forward per step. */
  recompute?: boolean;
  /**
   * Evaluate the validation split every this many steps (default: at the end of each epoch) and at the end.
   */
  evalEvery?: number;
  /** Stop after this many evaluations in a row without a new best validation loss (default: never). */
  patience?: number;
  /**
   * Which weights a finished run ends with: those of the best validation loss (default) or the last step's.
   */
  keep?: 'best' | 'last';
}

/** The adapter weights of the lowest validation loss so far, and when it was reached. */
export interface BestWeights {
  step: number;
  valLoss: number;
  adapter: Map<string, { A: Float32Array; B: Float32Array }>;
}

export interface TrainingData {
  /** The micro-batches of an epoch in that epoch's (seeded) order; same answer every call. */
  epochBatches(epoch: number): Batch[];
  validation: Batch[];
}

export interface StepMetrics {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number;
  learningRate: number;
  gradNorm: number;
  tokens: number;
  tokensPerSecond: number;
  /** The objective's own figures for this step (DPO, ORPO: rewards/…, as TRL names them); absent for SFT. */
  objectiveMetrics?: Record<string, number>;
}

export interface TrainState {
  step: number;
  rngState: number;
  adapter: Map<string, { A: Float32Array; B: Float32Array }>;
  optimizer: AdamWState;
  /** The best weights so far and how many evaluations have passed without beating them. */
  best?: BestWeights;
  evalsSinceBest?: number;
  /** What the objective keeps (DPO: the reference log-probs), so a resumed run need not recompute it. */
  objective?: ObjectiveState;
}

export { batchLossSum, TrainingError, type LossOptions } from './objective';
export { lastEpochMeanLoss } from './loss-report';

export class Trainer {
  step = 0;
  /** The weights of the lowest validation loss so far (none before the first evaluation). */
  best: BestWeights | null = null;
  evalsSinceBest = 0;
  readonly stepsPerEpoch: number;
  readonly totalSteps: number;
  private rng: Rng;
  private readonly optimizer: AdamW;
  private readonly params: tf.Variable[];
  private cachedEpoch: { epoch: number; batches: Batch[] } | null = null;
  private prepared = false;

  /** `objective`: what a step minimises (default SFT, the completions' cross-entropy). */
  constructor(
    private readonly model: LlamaModel,
    readonly adapter: LoraAdapter,
    private readonly data: TrainingData,
    readonly settings: TrainSettings,
    readonly objective: Objective = SFT,
  ) {
    const perEpoch = data.epochBatches(0).length;
    if (perEpoch === 0)
      throw new TrainingError('There is nothing to train on: the training split has no examples.');
    this.stepsPerEpoch = Math.ceil(perEpoch / settings.gradAccum);
    this.totalSteps = this.stepsPerEpoch * settings.epochs;
    this.rng = createRng(settings.seed ^ 0x5eed);
    this.params = adapter.variables();
    this.optimizer = new AdamW(this.params, { ...DEFAULT_ADAMW, weightDecay: settings.weightDecay });
  }

  get done(): boolean {
    return this.step >= this.totalSteps;
  }

  private microBatches(step: number): Batch[] {
    const epoch = Math.floor(step / this.stepsPerEpoch);
    if (this.cachedEpoch?.epoch !== epoch)
      this.cachedEpoch = { epoch, batches: this.data.epochBatches(epoch) };
    const first = (step % this.stepsPerEpoch) * this.settings.gradAccum;
    return this.cachedEpoch.batches.slice(first, first + this.settings.gradAccum);
  }

  /**
   * The objective's work before the first step (DPO: the reference log-probs of every pair, training and
   * validation); nothing when it has none or a resumed state brought it. Steps and evaluations call it.
   */
  async prepare(): Promise<void> {
    if (this.prepared) return;
    const batches = [...this.data.epochBatches(0), ...this.data.validation];
    await this.objective.prepare?.({ model: this.model, adapter: this.adapter, batches });
    this.prepared = true;
  }

  /** One optimizer step. On a NaN or infinite loss it throws and leaves the weights untouched. */
  async trainStep(): Promise<StepMetrics> {
    await this.prepare();
    const started = performance.now();
    const micro = this.microBatches(this.step);
    const counts = micro.map((b) => this.objective.count(b));
    // What the step's loss is a mean over: its target tokens (SFT), its pairs (DPO, ORPO).
    const stepCount = counts.reduce((a, b) => a + b, 0);
    const learningRate = learningRateAt(
      this.step,
      this.totalSteps,
      this.settings.learningRate,
      this.settings.warmupSteps,
    );
    const epoch = Math.floor(this.step / this.stepsPerEpoch);
    if (stepCount === 0) {
      // Every completion was truncated away: nothing to learn from these rows, move on.
      this.step++;
      return {
        step: this.step,
        totalSteps: this.totalSteps,
        epoch,
        loss: 0,
        learningRate,
        gradNorm: 0,
        tokens: 0,
        tokensPerSecond: 0,
      };
    }
    let grads: tf.Tensor[] = [];
    let lossSum: tf.Tensor = tf.scalar(0);
    let metricSums: tf.Tensor | null = null;
    const options = { rng: this.rng, recompute: this.settings.recompute ?? true };
    // A micro-batch with no completion tokens (every one truncated away; length grouping puts such long
    // examples together) adds nothing to the loss or the gradients: it is not run at all.
    for (const batch of micro.filter((_, i) => counts[i] > 0)) {
      let metrics: tf.Tensor | undefined;
      const { value, grads: named } = tf.variableGrads(() => {
        const logProbs = batchLogProbs(this.model, batch, this.objective.grouping, options);
        const share = this.objective.lossSum(logProbs, batch);
        if (share.metrics) metrics = tf.keep(share.metrics);
        return tf.div(share.loss, stepCount) as tf.Scalar;
      }, this.params);
      if (metrics) {
        const total: tf.Tensor = metricSums ? tf.add(metricSums, metrics) : metrics;
        if (metricSums) tf.dispose([metricSums, metrics]);
        metricSums = total;
      }
      const ordered = this.params.map((p) => named[p.name]);
      const summed = grads.length ? ordered.map((g, i) => tf.add(grads[i], g)) : ordered;
      if (grads.length) tf.dispose([...grads, ...ordered]);
      grads = summed;
      const nextLoss = tf.add(lossSum, value);
      tf.dispose([lossSum, value]);
      lossSum = nextLoss;
    }
    // A chain of adds rather than addN: webgpu's AddN binds one buffer per input and fails past its limit.
    const squaredNorm = tf.tidy(() =>
      grads.map((g) => tf.sum(tf.square(g))).reduce((total, s) => tf.add(total, s)),
    );
    const readout = tf.tidy(() =>
      tf.concat([tf.stack([lossSum, squaredNorm]), ...(metricSums ? [metricSums] : [])]),
    );
    const [loss, squared, ...metricValues] = Array.from(await readout.data());
    tf.dispose([readout, ...(metricSums ? [metricSums] : [])]);
    const gradNorm = Math.sqrt(squared);
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
      tf.dispose([...grads, lossSum, squaredNorm]);
      throw new TrainingError(
        `Training stopped at step ${this.step + 1}: ${Number.isFinite(loss) ? `the gradients became ${gradNorm}` : `the loss became ${loss}`}. ` +
          'The adapter keeps the weights of the last good step. Try a lower learning rate (for example half of it) or a smaller max length.',
      );
    }
    const clip = gradNorm > this.settings.maxGradNorm ? this.settings.maxGradNorm / (gradNorm + 1e-6) : 1;
    const clipped = clip < 1 ? grads.map((g) => tf.mul(g, clip)) : grads;
    this.optimizer.apply(clipped, learningRate);
    tf.dispose([...grads, ...(clip < 1 ? clipped : []), lossSum, squaredNorm]);
    this.step++;
    const tokens = micro.reduce((n, b) => n + countTokens(b), 0);
    const seconds = (performance.now() - started) / 1000;
    return {
      step: this.step,
      totalSteps: this.totalSteps,
      epoch,
      loss,
      learningRate,
      gradNorm,
      tokens,
      tokensPerSecond: tokens / seconds,
      ...this.namedMetrics(metricValues, stepCount),
    };
  }

  private namedMetrics(sums: number[], count: number): { objectiveMetrics?: Record<string, number> } {
    const names = this.objective.metricNames;
    if (!names.length || sums.length !== names.length) return {};
    return { objectiveMetrics: Object.fromEntries(names.map((name, i) => [name, sums[i] / count])) };
  }

  /** The objective's mean loss over the validation split (no dropout), or null without one. */
  async evaluate(): Promise<number | null> {
    return (await this.evaluateWithMetrics())?.loss ?? null;
  }

  /** The validation loss and the objective's figures over the validation split; null without one. */
  async evaluateWithMetrics(): Promise<{ loss: number; objectiveMetrics?: Record<string, number> } | null> {
    await this.prepare();
    const batches = this.data.validation;
    const count = batches.reduce((n, b) => n + this.objective.count(b), 0);
    if (count === 0) return null;
    let total = 0;
    const sums = new Array<number>(this.objective.metricNames.length).fill(0);
    for (const batch of batches) {
      const values = tf.tidy(() => {
        const share = this.objective.lossSum(
          batchLogProbs(this.model, batch, this.objective.grouping),
          batch,
        );
        return share.metrics ? tf.concat([tf.reshape(share.loss, [1]), share.metrics]) : share.loss;
      });
      const [loss, ...metrics] = Array.from(await values.data());
      values.dispose();
      total += loss;
      metrics.forEach((m, i) => (sums[i] += m));
    }
    return { loss: total / count, ...this.namedMetrics(sums, count) };
  }

  private async adapterWeights(): Promise<TrainState['adapter']> {
    const weights = (await this.adapter.toWeights()).modules;
    return new Map([...weights].map(([path, m]) => [path, { A: m.A.data, B: m.B.data }]));
  }

  /** Takes a validation loss: a new lowest one keeps a copy of the weights. Returns whether it was one. */
  async recordValidation(valLoss: number): Promise<boolean> {
    if (this.best && !(valLoss < this.best.valLoss)) {
      this.evalsSinceBest++;
      return false;
    }
    this.best = { step: this.step, valLoss, adapter: await this.adapterWeights() };
    this.evalsSinceBest = 0;
    return true;
  }

  /** Puts the best weights back in the adapter. */
  restoreBest(): void {
    if (this.best) this.adapter.load(this.best.adapter);
  }

  async exportState(): Promise<TrainState> {
    const state: TrainState = {
      step: this.step,
      rngState: this.rng.state(),
      adapter: await this.adapterWeights(),
      optimizer: await this.optimizer.exportState(),
    };
    const objective = this.objective.exportState?.();
    const withObjective = objective ? { ...state, objective } : state;
    return this.best
      ? { ...withObjective, best: this.best, evalsSinceBest: this.evalsSinceBest }
      : withObjective;
  }

  importState(state: TrainState): void {
    this.adapter.load(state.adapter);
    this.optimizer.importState(state.optimizer);
    this.step = state.step;
    this.rng = createRng(state.rngState);
    this.best = state.best ?? null;
    this.evalsSinceBest = state.evalsSinceBest ?? 0;
    if (state.objective) this.objective.importState?.(state.objective);
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}

export interface EvalResult {
  step: number;
  epoch: number;
  valLoss: number;
  best: boolean;
  /** The objective's figures over the validation split (DPO, ORPO: TRL's names); absent for SFT. */
  objectiveMetrics?: Record<string, number>;
}

export interface TrainCallbacks {
  onStep?(metrics: StepMetrics): void | Promise<void>;
  /** After each evaluation; `best` when it is the lowest validation loss so far. */
  onEval?(result: EvalResult): void | Promise<void>;
  /** Receives the full training state every `checkpointEvery` steps, to save for a later resume. */
  onCheckpoint?(state: TrainState): void | Promise<void>;
  checkpointEvery?: number;
  /** Checked before every step: true ends the run early (pause/stop). */
  shouldStop?(): boolean;
}

export interface TrainSummary {
  steps: number;
  /** Mean training loss over the steps of the last epoch run. */
  trainLoss: number;
  /**
   * Validation loss of the weights the adapter ends with (see `kept`), or null without a validation split.
   */
  valLoss: number | null;
  /** Tokens processed per second over the whole run. */
  tokensPerSecond: number;
  history: StepMetrics[];
  /** Told to stop (pause or stop) before the last step. */
  stopped: boolean;
  /** Ended early: `patience` evaluations passed without a better validation loss. */
  earlyStopped: boolean;
  /** The lowest validation loss and its step, or null without a validation split. */
  best: { step: number; valLoss: number } | null;
  /** Which weights the adapter holds now: the best (restored) or the last step's. */
  kept: 'best' | 'last';
}

/**
 * The loop: step until done (or told to stop, or out of patience), evaluating on the schedule. A run
 * that finishes ends with the best validation loss's weights unless `keep` is 'last'.
 */
export async function runTraining(trainer: Trainer, callbacks: TrainCallbacks = {}): Promise<TrainSummary> {
  const history: StepMetrics[] = [];
  const { evalEvery, patience, keep = 'best' } = trainer.settings;
  let valLoss: number | null = null;
  let tokens = 0;
  let seconds = 0;
  let stopped = false;
  let earlyStopped = false;
  while (!trainer.done) {
    if (callbacks.shouldStop?.()) {
      stopped = true;
      break;
    }
    const metrics = await trainer.trainStep();
    history.push(metrics);
    tokens += metrics.tokens;
    if (metrics.tokensPerSecond > 0) seconds += metrics.tokens / metrics.tokensPerSecond;
    await callbacks.onStep?.(metrics);
    const scheduled = evalEvery ? trainer.step % evalEvery === 0 : trainer.step % trainer.stepsPerEpoch === 0;
    if (scheduled || trainer.done) {
      const evaluation = await trainer.evaluateWithMetrics();
      valLoss = evaluation?.loss ?? null;
      if (evaluation && valLoss !== null) {
        const best = await trainer.recordValidation(valLoss);
        const figures = evaluation.objectiveMetrics && { objectiveMetrics: evaluation.objectiveMetrics };
        await callbacks.onEval?.({ step: trainer.step, epoch: metrics.epoch, valLoss, best, ...figures });
        earlyStopped = patience !== undefined && !trainer.done && trainer.evalsSinceBest >= patience;
      }
    }
    if (
      callbacks.onCheckpoint &&
      callbacks.checkpointEvery &&
      trainer.step % callbacks.checkpointEvery === 0
    ) {
      await callbacks.onCheckpoint(await trainer.exportState());
    }
    if (earlyStopped) break;
  }
  const finished = !stopped;
  const restore = finished && keep === 'best' && trainer.best !== null && trainer.best.step !== trainer.step;
  if (restore) trainer.restoreBest();
  return {
    steps: trainer.step,
    trainLoss: lastEpochMeanLoss(history, trainer.stepsPerEpoch, trainer.step),
    valLoss: restore ? trainer.best!.valLoss : valLoss,
    tokensPerSecond: seconds > 0 ? tokens / seconds : 0,
    history,
    stopped,
    earlyStopped,
    best: trainer.best && { step: trainer.best.step, valLoss: trainer.best.valLoss },
    kept: restore || (finished && keep === 'best' && trainer.best?.step === trainer.step) ? 'best' : 'last',
  };
}
