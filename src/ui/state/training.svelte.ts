/** Training settings, the live progress of a run, and its outcome. */
import type { StepMetrics } from '../../engine/train';
import type { TrainEvent, TrainRequest, TrainResult } from '../../worker/protocol';
import { engine } from './engine.svelte';

export const DEFAULT_SETTINGS: TrainRequest = {
  backend: 'auto', rank: 8, alpha: 16, dropout: 0.05, targets: ['q_proj', 'v_proj'], learningRate: 5e-3, epochs: 5,
  batchSize: 4, gradAccum: 1, warmupSteps: 2, seed: 0,
};

class TrainingState {
  settings = $state<TrainRequest>({ ...DEFAULT_SETTINGS });
  running = $state(false);
  steps = $state<StepMetrics[]>([]);
  evals = $state<{ step: number; valLoss: number }[]>([]);
  result = $state<TrainResult | null>(null);
  error = $state<string | null>(null);
  startedAt = $state(0);
  now = $state(0);

  last = $derived(this.steps.at(-1) ?? null);
  elapsedSeconds = $derived(this.startedAt ? (this.now - this.startedAt) / 1000 : 0);
  etaSeconds = $derived(this.last && this.last.step > 0 ? (this.elapsedSeconds / this.last.step) * (this.last.totalSteps - this.last.step) : null);

  paused = $derived(this.result?.paused ?? false);

  async start(): Promise<void> {
    this.steps = [];
    this.evals = [];
    this.startedAt = performance.now();
    await this.run('train');
  }

  resume(): Promise<void> {
    return this.run('resumeTraining');
  }

  private async run(kind: 'train' | 'resumeTraining'): Promise<void> {
    const client = engine.client;
    if (!client) return;
    this.running = true;
    this.result = null;
    this.error = null;
    this.now = performance.now();
    const timer = setInterval(() => (this.now = performance.now()), 500);
    const onEvent = (event: TrainEvent) => {
      if (event.kind === 'backend') engine.backend = event.choice;
      else if (event.kind === 'step') this.steps.push(event.metrics);
      else this.evals.push({ step: event.step, valLoss: event.valLoss });
    };
    try {
      this.result = kind === 'train' ? await client.request('train', $state.snapshot(this.settings), onEvent) : await client.request('resumeTraining', {}, onEvent);
    } catch (error) {
      this.error = (error as Error).message;
    } finally {
      clearInterval(timer);
      this.now = performance.now();
      this.running = false;
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
