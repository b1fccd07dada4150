/** Training settings, the live progress of a run, and its outcome. */
import { runDefaults } from '../../data/defaults';
import {
  matchesPreset,
  presetSettings,
  type PresetInput,
  type PresetName,
  type PresetSettings,
} from '../../data/presets';
import { DEFAULT_DPO_BETA } from '../../engine/preference';
import type { StepMetrics } from '../../engine/train';
import { runIsOpenElsewhere } from '../../store/locks';
import { getDataset } from '../../store/datasets';
import { deleteRun, latestRun, type SavedRun } from '../../store/runs';
import type { EngineClient } from '../../worker/client';
import type { TrainEvent, TrainingEstimate, TrainRequest, TrainResult } from '../../worker/protocol';
import { adapters } from './adapters.svelte';
import { dataset } from './dataset.svelte';
import { engine } from './engine.svelte';
import { etaSeconds, recentSecondsPerStep } from './eta';
import { readRunSetup } from '../../worker/run-setup';
import type { RunPhase } from '../../worker/run-state';

/** The knobs of a run; its seed is the dataset's (dataset.seed), which also decides the split. */
export type TrainSettingsForm = Omit<TrainRequest, 'source' | 'seed'>;

/** How long a run's lock may still be held by the page a reload replaced. */
const LOCK_GRACE_MS = 10_000;

/** Balanced, before a dataset or model is known (see data/presets.ts); the rest as most runs want it. */
const {
  batchSize,
  gradAccum,
  warmupSteps,
  dropout,
  keep,
  useRslora,
  epochs,
  learningRate,
  rank,
  alpha,
  targets,
} = runDefaults({ trainExamples: null, tokens: null, parameters: null });
export const DEFAULT_SETTINGS: TrainSettingsForm = {
  backend: 'auto',
  recompute: 'auto',
  batchSize,
  gradAccum,
  warmupSteps,
  dropout,
  keep,
  useRslora,
  epochs,
  learningRate,
  rank,
  alpha,
  targets,
  objective: 'sft',
  beta: DEFAULT_DPO_BETA,
};

/** Quiet time after a change of settings before the estimate measures again. */
const ESTIMATE_DEBOUNCE_MS = 600;

class TrainingState {
  settings = $state<TrainSettingsForm>({ ...DEFAULT_SETTINGS });
  /** The preset the knobs follow; 'custom' once one was changed by hand (or a saved run was resumed). */
  preset = $state<PresetName | 'custom'>('balanced');
  /** What the presets look at: the prepared dataset's size and the loaded model's. */
  presetInput: PresetInput = $derived({
    trainExamples: dataset.prepared?.mapping ? dataset.prepared.trainExamples : null,
    tokens: dataset.prepared?.stats?.tokens ?? null,
    parameters: engine.model?.parameters ?? null,
    objective: this.settings.objective ?? 'sft',
  });
  /** The values the chosen preset gives for this dataset and model; null for Custom. */
  presetValues: PresetSettings | null = $derived(
    this.preset === 'custom' ? null : presetSettings(this.preset, this.presetInput),
  );

  /**
   * The estimate of a run at the current settings (see worker/estimate.ts): first from the device's speed,
   * then from one real step; null before the first figure.
   */
  estimate = $state<TrainingEstimate | null>(null);
  /** A figure is on its way (the first, or one real step's). */
  estimating = $state(false);
  estimateError = $state<string | null>(null);
  /** The estimate shown when the current run started, kept to compare with the time it took. */
  estimateAtStart = $state<TrainingEstimate | null>(null);
  private estimateKey = '';
  private estimateTimer: ReturnType<typeof setTimeout> | undefined;
  private estimateRequest = 0;
  /** The newest estimate request is waiting for the worker's answer. */
  private inFlight = false;
  /** performance.now() of each step event of the current stretch, and of its start. */
  private stepTimes: number[] = [];
  /** Seconds the last validation pass took (between a step and its eval event). */
  private validationSeconds: number | null = null;
  /** An unfinished run saved before the page was closed or reloaded. */
  saved = $state<SavedRun | null>(null);
  /** The saved run is being trained (or is paused) in another tab: it is not offered here. */
  savedElsewhere = $state(false);
  warning = $state<string | null>(null);
  /** A train or resume request is in flight: the run's steps go on (or are about to end). */
  running = $state(false);
  /** The run's phase as the worker reports it (worker/run-state.ts). */
  private reported = $state<RunPhase>('idle');
  /**
   * A Pause or Stop the person pressed that the worker has not answered yet. The worker reads requests only
   * between steps, and a step of a real model takes seconds: until it answers, the page shows what was asked
   * for ("Pausing after this step…"), not a Pause button that seems to do nothing.
   */
  private asked = $state<'pause' | 'stop' | null>(null);
  /** The run's phase as the page shows it: the worker's, or where a request it has not answered yet leads. */
  phase: RunPhase = $derived.by(() => {
    const reported = this.reported;
    if (this.asked === 'stop' && (reported === 'running' || reported === 'pausing')) return 'stopping';
    if (this.asked === 'pause' && reported === 'running') return 'pausing';
    return reported;
  });
  steps = $state<StepMetrics[]>([]);
  /** Validation passes: the loss, and the share of held-out pairs preferred (DPO, ORPO) when there is one. */
  evals = $state<{ step: number; valLoss: number; rewardAccuracy?: number }[]>([]);
  /** DPO's scoring of every pair with the adapter off before step 1: how many, while it runs. */
  scoringPairs = $state<number | null>(null);
  /**
   * The lowest validation loss so far, as training reports it: the weights a finished run keeps by default.
   */
  best = $state<{ step: number; valLoss: number } | null>(null);
  result = $state<TrainResult | null>(null);
  error = $state<string | null>(null);
  startedAt = $state(0);
  /** The step the current stretch of training started from (0, or where a resume picked up). */
  startStep = $state(0);
  now = $state(0);

  last = $derived(this.steps.at(-1) ?? null);
  elapsedSeconds = $derived(this.startedAt ? (this.now - this.startedAt) / 1000 : 0);
  /** Seconds a step takes now (see eta.ts); recomputed with each step. */
  secondsPerStep = $derived.by(() => {
    void this.steps.length;
    return recentSecondsPerStep(this.stepTimes, this.estimateAtStart?.secondsPerStep ?? null);
  });
  /** What is left of the run (see eta.ts); null until there is a pace to go by. */
  etaSeconds = $derived.by(() => {
    const last = this.last;
    const perStep = this.secondsPerStep;
    if (!this.running || !last || perStep === null) return null;
    return etaSeconds({
      step: last.step,
      totalSteps: last.totalSteps,
      epochs: this.settings.epochs,
      secondsPerStep: perStep,
      validation: (dataset.prepared?.validationExamples ?? 0) > 0,
      validationSeconds: this.validationSeconds ?? this.estimateAtStart?.validationSeconds ?? 0,
      sinceLastStep: this.stepTimes.length ? (this.now - this.stepTimes.at(-1)!) / 1000 : 0,
    });
  });

  /** Follows the preset: its values for the current dataset and model, unless the knobs already hold them. */
  applyPreset(name: PresetName | 'custom' = this.preset): void {
    this.preset = name;
    const values = this.presetValues;
    if (!values || matchesPreset(this.settings, values)) return;
    Object.assign(this.settings, values);
  }

  /** A knob changed by hand: the knobs no longer follow a preset. */
  markCustom(): void {
    this.preset = 'custom';
  }

  /**
   * Measures the run the current settings make, after a quiet moment (ESTIMATE_DEBOUNCE_MS), unless it was
   * measured for these very settings, or training runs (its steps would be slowed, and it needs the model).
   */
  scheduleEstimate(): void {
    clearTimeout(this.estimateTimer);
    // Until a timer is set below, only a measurement under way means "Measuring…".
    this.estimating = this.inFlight;
    const prepared = dataset.prepared;
    if (!engine.model || !prepared?.stats || !prepared.mapping || this.running || this.paused || dataset.busy)
      return;
    const request = { ...$state.snapshot(this.settings), seed: dataset.seed };
    const key = JSON.stringify([
      request,
      engine.model.name,
      prepared.stats,
      prepared.trainExamples,
      prepared.validationExamples,
      dataset.maxLength,
    ]);
    // Measured (or being measured) for these very settings already.
    if (key === this.estimateKey) return;
    this.estimating = true;
    this.estimateTimer = setTimeout(() => void this.measure(key, request), ESTIMATE_DEBOUNCE_MS);
  }

  private async measure(key: string, request: Omit<TrainRequest, 'source'>): Promise<void> {
    const client = engine.client;
    if (!client || this.running) {
      this.estimating = false;
      return;
    }
    const id = ++this.estimateRequest;
    this.estimateKey = key;
    this.estimateError = null;
    this.inFlight = true;
    try {
      const estimate = await client.request('estimateTraining', request, (first) => {
        // The first figure, from the device's speed; the step's refines it.
        if (id === this.estimateRequest) this.estimate = first;
      });
      if (id === this.estimateRequest) this.estimate = estimate;
    } catch (error) {
      if (id !== this.estimateRequest) return;
      this.estimate = null;
      this.estimateKey = '';
      // Ended for a training run (or newer settings): nothing to tell.
      if (!/interrupted/i.test((error as Error).message)) this.estimateError = (error as Error).message;
    } finally {
      if (id === this.estimateRequest) this.estimating = this.inFlight = false;
    }
  }

  paused = $derived(this.phase === 'paused');

  async start(): Promise<void> {
    // A second click while a run's request is in flight (its first answer not back yet) does nothing.
    if (!dataset.id || this.running) return;
    this.steps = [];
    this.evals = [];
    this.best = null;
    const { beta, ...knobs } = $state.snapshot(this.settings);
    const request: TrainRequest = {
      ...knobs,
      // β belongs to a preference objective: an SFT run does not claim one.
      ...((knobs.objective ?? 'sft') !== 'sft' && { beta }),
      // One seed splits the data (the preview, the run, an export) and starts the adapter.
      seed: dataset.seed,
      source: { modelUrl: engine.modelUrl, datasetId: dataset.id },
    };
    await this.run((client, onEvent) => client.request('train', request, onEvent));
  }

  resume(): Promise<void> {
    return this.run((client, onEvent) => client.request('resumeTraining', {}, onEvent));
  }

  async checkSaved(): Promise<void> {
    try {
      const saved = (await latestRun()) ?? null;
      let elsewhere = saved !== null && (await runIsOpenElsewhere(saved.id));
      // Right after a reload, this tab's previous page may still be letting go of the run (its worker ends
      // mid-step): look again for a moment before saying another tab has it.
      for (const until = Date.now() + LOCK_GRACE_MS; elsewhere && Date.now() < until;) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        elsewhere = await runIsOpenElsewhere(saved!.id);
      }
      this.saved = saved;
      this.savedElsewhere = elsewhere;
    } catch {
      this.saved = null; // no storage (private window): nothing to resume
    }
  }

  /** Picks up the run saved before a reload: same model, same dataset and settings, from its checkpoint. */
  async resumeSaved(): Promise<void> {
    const run = this.saved;
    if (!run) return;
    const setup = readRunSetup(run.setup);
    if (engine.model?.name !== run.modelName) {
      if (!run.modelUrl) {
        this.error = `Load the model ${run.modelName} first, then resume.`;
        return;
      }
      await engine.loadFromUrl(run.modelUrl);
    }
    const saved = await getDataset(run.datasetId);
    if (!saved) {
      this.error = 'The dataset of this run was deleted, so it cannot be resumed. Start training again.';
      return;
    }
    await dataset.restore(saved, setup.prepare);
    const { seed: _seed, source: _source, ...knobs } = setup.train;
    this.settings = knobs;
    this.preset = 'custom';
    // A preference run's reward accuracy goes back on its chart too.
    const rewards = run.rewardHistory ?? [];
    const accuracyAt = (step: number, heldOut: boolean) =>
      rewards.find((r) => r.step === step && !!r.heldOut === heldOut)?.accuracy;
    this.steps = run.lossHistory.map(({ step, loss }) => ({
      ...(accuracyAt(step, false) !== undefined && {
        objectiveMetrics: { 'rewards/accuracies': accuracyAt(step, false)! },
      }),
      step,
      loss,
      totalSteps: run.totalSteps,
      epoch: 0,
      learningRate: 0,
      gradNorm: 0,
      tokens: 0,
      tokensPerSecond: 0,
    }));
    this.evals = run.evalHistory.map((e) => {
      const accuracy = accuracyAt(e.step, true);
      return accuracy === undefined ? { ...e } : { ...e, rewardAccuracy: accuracy };
    });
    // Saved before the run reported its best: the lowest so far is the one training compares with.
    this.best = run.evalHistory.reduce<{ step: number; valLoss: number } | null>(
      (low, e) => (low === null || e.valLoss < low.valLoss ? e : low),
      null,
    );
    this.saved = null;
    await this.run((client, onEvent) =>
      client.request('resumeSavedRun', { runId: run.id, backend: setup.train.backend }, onEvent),
    );
  }

  async discardSaved(): Promise<void> {
    if (this.saved) await deleteRun(this.saved.id);
    this.saved = null;
  }

  private async run(
    send: (client: EngineClient, onEvent: (event: TrainEvent) => void) => Promise<TrainResult>,
  ): Promise<void> {
    const client = engine.client;
    // One run request at a time: a double click on Resume would otherwise send two.
    if (!client || this.running) return;
    // An estimate waiting to start would measure while the run trains: it is dropped (the worker ends one
    // under way).
    clearTimeout(this.estimateTimer);
    this.estimateRequest++;
    // An answer that will not come (or a timer that will not fire): these settings are measured again after
    // the run.
    if (this.inFlight || this.estimating) this.estimateKey = '';
    this.estimating = this.inFlight = false;
    this.estimateAtStart = this.estimate;
    // A request the worker refuses (the model is busy) leaves the run where it was: the worker's answers and
    // events, taken in the order they arrive, are what moves the phase.
    const before = this.result;
    let started = false;
    this.running = true;
    this.startStep = this.last?.step ?? 0;
    this.startedAt = performance.now();
    this.stepTimes = [this.startedAt];
    this.validationSeconds = null;
    this.result = null;
    this.error = null;
    this.warning = null;
    this.now = performance.now();
    const timer = setInterval(() => (this.now = performance.now()), 500);
    const onEvent = (event: TrainEvent) => {
      if (event.kind === 'backend') engine.backend = event.choice;
      else if (event.kind === 'phase') {
        started = true;
        this.reported = event.phase;
      } else if (event.kind === 'warning') this.warning = event.message;
      else if (event.kind === 'reference') this.scoringPairs = event.done ? null : event.pairs;
      else if (event.kind === 'step') {
        this.stepTimes.push(performance.now());
        this.steps.push(event.metrics);
      } else {
        this.validationSeconds = (performance.now() - (this.stepTimes.at(-1) ?? performance.now())) / 1000;
        // The pass is not a step: the next step's interval starts when it ends.
        if (this.stepTimes.length) this.stepTimes[this.stepTimes.length - 1] = performance.now();
        const accuracy = event.objectiveMetrics?.['rewards/accuracies'];
        this.evals.push({
          step: event.step,
          valLoss: event.valLoss,
          ...(accuracy !== undefined && { rewardAccuracy: accuracy }),
        });
        if (event.best) this.best = { step: event.step, valLoss: event.valLoss };
      }
    };
    try {
      this.result = await send(client, onEvent);
      this.reported = this.result.paused ? 'paused' : 'idle';
    } catch (error) {
      this.error = (error as Error).message;
      // A run that started and failed has ended (the worker said so too); a dead engine ended it as well.
      if (started || engine.crashed) this.reported = 'idle';
      else this.result = before;
    } finally {
      clearInterval(timer);
      this.now = performance.now();
      this.running = false;
      this.scoringPairs = null;
    }
    // A finished run adds an adapter to the library and is what the chat now compares.
    void adapters.refresh();
    void adapters.refreshSetup();
  }

  /**
   * Stores the finished adapter that could not be stored at the end of the run (a full disk, since freed).
   */
  async saveAgain(): Promise<void> {
    if (!engine.client || !this.result?.unsaved) return;
    try {
      const adapterId = await engine.client.request('saveAdapterAgain', {});
      this.result = { ...this.result, adapterId, unsaved: false };
      this.warning = null;
      void adapters.refresh();
    } catch (error) {
      this.warning = `${(error as Error).message} The adapter is still kept in this tab.`;
    }
  }

  /** Asks the run to pause after its current step ("Pausing…" until it has). */
  async pause(): Promise<void> {
    await this.ask('pauseTraining');
  }

  /** Asks the run to stop after its current step; a paused run stops at once. */
  async stop(): Promise<void> {
    const wasPaused = this.paused;
    const phase = await this.ask('stopTraining');
    if (wasPaused && phase === 'idle' && this.result)
      this.result = { ...this.result, paused: false, stopped: true };
  }

  private async ask(request: 'pauseTraining' | 'stopTraining'): Promise<RunPhase | null> {
    const client = engine.client;
    if (!client) return null;
    // Shown at once (see `asked`); a Stop outranks a Pause still waiting for its answer, not the reverse.
    const asked = request === 'pauseTraining' ? 'pause' : 'stop';
    if (this.asked !== 'stop') this.asked = asked;
    try {
      // The answer comes after the phase events the request caused, and before later ones.
      const phase = await client.request(request, {});
      this.reported = phase;
      return phase;
    } catch (error) {
      this.warning = (error as Error).message;
      return null;
    } finally {
      // Answered (the worker's phase events came before its answer): the reported phase says the rest.
      if (this.asked === asked) this.asked = null;
    }
  }
}

export const training = new TrainingState();
