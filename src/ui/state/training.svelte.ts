/** Training settings, the live progress of a run, and its outcome. */
import type { StepMetrics } from '../../engine/train';
import { runIsOpenElsewhere } from '../../store/locks';
import { getDataset } from '../../store/datasets';
import { deleteRun, latestRun, type SavedRun } from '../../store/runs';
import type { EngineClient } from '../../worker/client';
import type { RunSetup, TrainEvent, TrainRequest, TrainResult } from '../../worker/protocol';
import { dataset } from './dataset.svelte';
import { engine } from './engine.svelte';

export type TrainSettingsForm = Omit<TrainRequest, 'source'>;

/** How long a run's lock may still be held by the page a reload replaced. */
const LOCK_GRACE_MS = 10_000;

export const DEFAULT_SETTINGS: TrainSettingsForm = {
  backend: 'auto', rank: 8, alpha: 16, dropout: 0.05, targets: ['q_proj', 'v_proj'], learningRate: 5e-3, epochs: 5,
  batchSize: 4, gradAccum: 1, warmupSteps: 2, seed: 0, checkpoint: 'auto', keep: 'best',
};

class TrainingState {
  settings = $state<TrainSettingsForm>({ ...DEFAULT_SETTINGS });
  /** An unfinished run saved before the page was closed or reloaded. */
  saved = $state<SavedRun | null>(null);
  /** The saved run is being trained (or is paused) in another tab: it is not offered here. */
  savedElsewhere = $state(false);
  warning = $state<string | null>(null);
  running = $state(false);
  steps = $state<StepMetrics[]>([]);
  evals = $state<{ step: number; valLoss: number }[]>([]);
  /** The lowest validation loss so far, as training reports it: the weights a finished run keeps by default. */
  best = $state<{ step: number; valLoss: number } | null>(null);
  result = $state<TrainResult | null>(null);
  error = $state<string | null>(null);
  startedAt = $state(0);
  /** The step the current stretch of training started from (0, or where a resume picked up). */
  startStep = $state(0);
  now = $state(0);

  last = $derived(this.steps.at(-1) ?? null);
  elapsedSeconds = $derived(this.startedAt ? (this.now - this.startedAt) / 1000 : 0);
  etaSeconds = $derived(
    this.last && this.last.step > this.startStep ? (this.elapsedSeconds / (this.last.step - this.startStep)) * (this.last.totalSteps - this.last.step) : null,
  );

  paused = $derived(this.result?.paused ?? false);

  async start(): Promise<void> {
    if (!dataset.id) return;
    this.steps = [];
    this.evals = [];
    this.best = null;
    const request: TrainRequest = { ...$state.snapshot(this.settings), source: { modelUrl: engine.modelUrl, datasetId: dataset.id } };
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
      for (const until = Date.now() + LOCK_GRACE_MS; elsewhere && Date.now() < until; ) {
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
    const setup = run.setup as RunSetup;
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
    this.settings = { ...setup.train };
    this.steps = run.lossHistory.map(({ step, loss }) => ({ step, loss, totalSteps: run.totalSteps, epoch: 0, learningRate: 0, gradNorm: 0, tokens: 0, tokensPerSecond: 0 }));
    this.evals = [...run.evalHistory];
    // Saved before the run reported its best: the lowest so far is the one training compares with.
    this.best = run.evalHistory.reduce<{ step: number; valLoss: number } | null>((low, e) => (low === null || e.valLoss < low.valLoss ? e : low), null);
    this.saved = null;
    await this.run((client, onEvent) => client.request('resumeSavedRun', { runId: run.id, backend: setup.train.backend }, onEvent));
  }

  async discardSaved(): Promise<void> {
    if (this.saved) await deleteRun(this.saved.id);
    this.saved = null;
  }

  private async run(send: (client: EngineClient, onEvent: (event: TrainEvent) => void) => Promise<TrainResult>): Promise<void> {
    const client = engine.client;
    if (!client) return;
    this.running = true;
    this.startStep = this.last?.step ?? 0;
    this.startedAt = performance.now();
    this.result = null;
    this.error = null;
    this.warning = null;
    this.now = performance.now();
    const timer = setInterval(() => (this.now = performance.now()), 500);
    const onEvent = (event: TrainEvent) => {
      if (event.kind === 'backend') engine.backend = event.choice;
      else if (event.kind === 'warning') this.warning = event.message;
      else if (event.kind === 'step') this.steps.push(event.metrics);
      else {
        this.evals.push({ step: event.step, valLoss: event.valLoss });
        if (event.best) this.best = { step: event.step, valLoss: event.valLoss };
      }
    };
    try {
      this.result = await send(client, onEvent);
    } catch (error) {
      this.error = (error as Error).message;
    } finally {
      clearInterval(timer);
      this.now = performance.now();
      this.running = false;
    }
  }

  /** Stores the finished adapter that could not be stored at the end of the run (a full disk, since freed). */
  async saveAgain(): Promise<void> {
    if (!engine.client || !this.result?.unsaved) return;
    try {
      const adapterId = await engine.client.request('saveAdapterAgain', {});
      this.result = { ...this.result, adapterId, unsaved: false };
      this.warning = null;
    } catch (error) {
      this.warning = `${(error as Error).message} The adapter is still kept in this tab.`;
    }
  }

  pause(): void {
    void engine.client?.request('pauseTraining', {});
  }

  stop(): void {
    void engine.client?.request('stopTraining', {});
    if (this.paused && this.result) this.result = { ...this.result, paused: false, stopped: true };
  }
}

export const training = new TrainingState();
