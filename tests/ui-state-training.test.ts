// The Train step's state over a scripted engine worker: the knobs follow a preset until one is changed by
// hand, a run sends them and streams its steps into the chart, the finished run refreshes the adapter
// library and the chat, pause/resume/stop, and a failing or dying worker becomes the words the page shows.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { presetSettings } from '../src/data/presets';
import { describeCrash } from '../src/worker/client';
import type { ChatSetup, TrainingEstimate } from '../src/worker/protocol';
import { newAdapter, pageWithModel, prepared, step, trainResult, until, type Page } from './helpers/ui-state';

const SETUP: ChatSetup = {
  adapter: null,
  style: { useChatTemplate: false, promptTemplate: '{question}', conversation: false },
  defaultStopStrings: ['\n'],
  multiTurn: false,
  shotsAvailable: 36,
};

let page: Page;

beforeEach(async () => {
  page = await pageWithModel();
  page.double.handle('openDataset', () => prepared());
  await page.dataset.open(new File(['question,answer\nWhat is 2+2?,4\n'], 'qa.csv'));
});
afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe('training settings', () => {
  it('follow the chosen preset for this dataset and model, until a knob is changed by hand', () => {
    const { training } = page;
    // What the presets size themselves by: 36 training examples of 1,200 tokens, a 260K-parameter model.
    const input = { trainExamples: 36, tokens: 1200, parameters: 260_000 };
    expect(training.preset).toBe('balanced');
    expect(training.presetValues).toEqual(presetSettings('balanced', input));

    training.applyPreset('quick');
    expect(training.settings).toMatchObject(presetSettings('quick', input));
    training.applyPreset('thorough');
    expect(training.settings).toMatchObject(presetSettings('thorough', input));
    expect(presetSettings('thorough', input).rank).toBeGreaterThan(presetSettings('quick', input).rank);

    training.settings.rank = 2;
    training.markCustom();
    expect(training.preset).toBe('custom');
    expect(training.presetValues).toBeNull();
    // New data or a new model no longer moves the knobs.
    page.dataset.prepared = prepared({
      trainExamples: 4000,
      stats: { ...prepared().stats!, tokens: 900_000 },
    });
    training.applyPreset();
    expect(training.settings.rank).toBe(2);
  });

  it('follow a bigger dataset when it arrives (the preset recomputes from the prepared data)', () => {
    const { training } = page;
    training.applyPreset('balanced');
    const small = training.settings.epochs;
    page.dataset.prepared = prepared({
      trainExamples: 20_000,
      stats: { ...prepared().stats!, tokens: 2_000_000 },
    });
    training.applyPreset();
    expect(training.settings.epochs).toBe(
      presetSettings('balanced', { trainExamples: 20_000, tokens: 2_000_000, parameters: 260_000 }).epochs,
    );
    expect(training.settings.epochs).toBeLessThan(small);
  });
});

describe('a training run', () => {
  it('sends the settings with where the model and data came from, and streams steps into the chart', async () => {
    const { training, double, dataset, engine } = page;
    double.hold('train');
    training.settings.rank = 4;
    training.settings.alpha = 8;
    training.markCustom();
    const run = training.start();

    const call = await double.next('train');
    expect(call.params).toMatchObject({ rank: 4, alpha: 8, epochs: training.settings.epochs });
    expect(call.params.source).toEqual({ modelUrl: '/models/stories260K', datasetId: dataset.id });
    expect(dataset.id).toEqual(expect.any(String));
    expect(training.running).toBe(true);

    call.emit({ kind: 'backend', choice: { backend: 'wasm', reason: 'no WebGPU here' } });
    call.emit({ kind: 'step', metrics: step(1, 3, 2.5) });
    call.emit({ kind: 'step', metrics: step(2, 3, 2.0) });
    expect(training.steps.map((s) => s.loss)).toEqual([2.5, 2.0]);
    expect(training.last?.step).toBe(2);
    expect(engine.backend?.backend).toBe('wasm');
    call.emit({ kind: 'eval', step: 2, valLoss: 2.2, best: true });
    call.emit({ kind: 'step', metrics: step(3, 3, 1.8) });
    call.emit({ kind: 'eval', step: 3, valLoss: 2.4 });
    expect(training.evals).toEqual([
      { step: 2, valLoss: 2.2 },
      { step: 3, valLoss: 2.4 },
    ]);
    // The ring on the chart stays on the lowest validation loss.
    expect(training.best).toEqual({ step: 2, valLoss: 2.2 });

    const result = trainResult({ steps: 3, adapterId: 'a1', best: { step: 2, valLoss: 2.2 }, kept: 'best' });
    call.answer(result);
    await run;
    expect(training.running).toBe(false);
    expect(training.result).toEqual(result);
    expect(training.error).toBeNull();
  });

  it('one seed: the one the data step splits with is the one the run and its estimate get', async () => {
    const { training, double, dataset } = page;
    double.handle('configureDataset', (settings) => prepared({ mapping: settings.mapping }));
    // The Advanced seed box edits the dataset's seed and prepares the split again.
    dataset.seed = 7;
    await dataset.refresh();
    expect(double.sent('configureDataset').at(-1)).toMatchObject({ seed: 7 });
    double.hold('train');
    const run = training.start();
    const call = await double.next('train');
    expect(call.params.seed).toBe(7);
    call.answer(trainResult());
    await run;
    expect(training.settings).not.toHaveProperty('seed');
  });

  it('a finished run refreshes the adapter library and the chat setup by itself', async () => {
    const { training, double, adapters, store } = page;
    let saved = '';
    double.handle('train', async () => {
      // The worker stores the finished adapter in the page's IndexedDB before it answers.
      saved = (await store.saveAdapter(newAdapter('qa adapter'))).id;
      return trainResult({ adapterId: saved });
    });
    double.handle('chatSetup', () => ({ ...SETUP, adapter: { id: saved, name: 'qa adapter' } }));
    expect(adapters.list).toEqual([]);

    await training.start();
    await until(() => adapters.list.length === 1 && adapters.setup !== null, 'the library and chat setup');
    expect(adapters.list[0]).toMatchObject({ id: saved, name: 'qa adapter' });
    expect(adapters.activeId).toBe(saved);
  });

  it('a second run starts a fresh chart', async () => {
    const { training, double } = page;
    double.handle('train', (_params, call) => {
      call.emit({ kind: 'step', metrics: step(1, 1, 3) });
      call.emit({ kind: 'eval', step: 1, valLoss: 3.1, best: true });
      return trainResult({ steps: 1 });
    });
    await training.start();
    expect(training.steps).toHaveLength(1);
    double.hold('train');
    const second = training.start();
    const call = await double.next('train');
    expect(training.steps).toEqual([]);
    expect(training.evals).toEqual([]);
    expect(training.best).toBeNull();
    expect(training.result).toBeNull();
    call.answer(trainResult());
    await second;
  });

  it('does nothing before the dataset is stored', async () => {
    const fresh = await pageWithModel();
    await fresh.training.start();
    expect(fresh.double.sent('train')).toEqual([]);
  });

  it('pauses between steps, resumes where it left off, and a stop while paused ends the run', async () => {
    const { training, double } = page;
    double.hold('train').hold('resumeTraining');
    const run = training.start();
    const call = await double.next('train');
    call.emit({ kind: 'step', metrics: step(1, 4, 2.5) });
    // The real worker says the run is pausing, and ends the train request with a paused result once the
    // step in progress is done.
    double.handle('pauseTraining', () => {
      call.emit({ kind: 'phase', phase: 'pausing' });
      return 'pausing';
    });
    await training.pause();
    expect(training.phase).toBe('pausing');
    expect(training.running).toBe(true);
    call.answer(trainResult({ steps: 1, paused: true }));
    await run;
    expect(training.phase).toBe('paused');
    expect(training.paused).toBe(true);
    expect(training.running).toBe(false);

    const resumed = training.resume();
    const resumeCall = await double.next('resumeTraining');
    resumeCall.emit({ kind: 'phase', phase: 'running' });
    expect(training.running).toBe(true);
    expect(training.paused).toBe(false);
    expect(training.startStep).toBe(1);
    resumeCall.emit({ kind: 'step', metrics: step(2, 4, 2.1) });
    expect(training.steps.map((s) => s.step)).toEqual([1, 2]);
    resumeCall.answer(trainResult({ steps: 2, paused: true }));
    await resumed;

    double.handle('stopTraining', () => 'idle');
    await training.stop();
    expect(double.sent('stopTraining')).toHaveLength(1);
    expect(training.phase).toBe('idle');
    expect(training.paused).toBe(false);
    expect(training.result).toMatchObject({ stopped: true, paused: false });
  });

  it('a stop while running asks the worker, which ends the run with what it has', async () => {
    const { training, double } = page;
    double.hold('train');
    const run = training.start();
    const call = await double.next('train');
    double.handle('stopTraining', () => {
      call.emit({ kind: 'phase', phase: 'stopping' });
      return 'stopping';
    });
    await training.stop();
    expect(training.phase).toBe('stopping');
    call.answer(trainResult({ steps: 1, stopped: true }));
    await run;
    expect(training.phase).toBe('idle');
    expect(training.result).toMatchObject({ stopped: true, paused: false, adapterId: null });
    expect(training.running).toBe(false);
  });

  it('shows Pausing and then Stopping at once, while the worker is still busy with a step', async () => {
    const { training, double } = page;
    double.hold('train').hold('pauseTraining').hold('stopTraining');
    const run = training.start();
    const call = await double.next('train');
    call.emit({ kind: 'phase', phase: 'running' });
    call.emit({ kind: 'step', metrics: step(1, 4, 2.5) });
    // The worker reads requests only between steps: neither is answered while step 2 is in flight, yet the
    // page says at once what it waits for.
    const pausing = training.pause();
    const pause = await double.next('pauseTraining');
    expect(training.phase).toBe('pausing');
    const stopping = training.stop();
    const stop = await double.next('stopTraining');
    expect(training.phase).toBe('stopping');
    expect(training.paused).toBe(false);

    // The step ends; the worker takes the pause, then the stop, each announced before its answer. The page
    // never goes back to "Pausing" on the way.
    call.emit({ kind: 'step', metrics: step(2, 4, 2.4) });
    call.emit({ kind: 'phase', phase: 'pausing' });
    pause.answer('pausing');
    await pausing;
    expect(training.phase).toBe('stopping');
    call.emit({ kind: 'phase', phase: 'stopping' });
    stop.answer('stopping');
    await stopping;
    expect(training.phase).toBe('stopping');
    call.emit({ kind: 'phase', phase: 'idle' });
    call.answer(trainResult({ steps: 2, stopped: true }));
    await run;
    expect(training.phase).toBe('idle');
    expect(training.result).toMatchObject({ stopped: true, paused: false });
  });

  it('a Pause the worker refuses (the run ended meanwhile) leaves the phase it reports, and says why', async () => {
    const { training, double } = page;
    double.hold('train').hold('pauseTraining');
    const run = training.start();
    const call = await double.next('train');
    call.emit({ kind: 'phase', phase: 'running' });
    const pausing = training.pause();
    const pause = await double.next('pauseTraining');
    expect(training.phase).toBe('pausing');
    call.emit({ kind: 'phase', phase: 'idle' });
    call.answer(trainResult({ steps: 4 }));
    await run;
    pause.fail('There is no training run to pause.');
    await pausing;
    expect(training.phase).toBe('idle');
    expect(training.warning).toBe('There is no training run to pause.');
  });

  it("shows the worker's words when the run fails", async () => {
    const { training, double } = page;
    const message =
      'The run needs 3.1 GB but this device offers 2 GB. Lower the batch size or max length, then start again.';
    double.handle('train', () => {
      throw new Error(message);
    });
    await training.start();
    expect(training.error).toBe(message);
    expect(training.result).toBeNull();
    expect(training.running).toBe(false);
  });

  it('shows what happened when the engine dies mid-run, and the model is gone with it', async () => {
    const { training, double, engine } = page;
    double.hold('train');
    const run = training.start();
    await double.next('train');
    double.worker.crash('Uncaught RangeError: Array buffer allocation failed');
    await run;
    const words = describeCrash('Uncaught RangeError: Array buffer allocation failed');
    expect(training.error).toBe(words);
    expect(engine.crashed).toBe(words);
    expect(engine.model).toBeNull();
    expect(training.running).toBe(false);
  });

  it('shows a warning the worker sends during the run', async () => {
    const { training, double } = page;
    double.handle('train', (_params, call) => {
      call.emit({ kind: 'warning', message: 'WebGPU was lost; training goes on with wasm.' });
      return trainResult();
    });
    await training.start();
    expect(training.warning).toBe('WebGPU was lost; training goes on with wasm.');
  });
});

describe('the estimate', () => {
  it('measures the current settings after a quiet moment, once, and shows why it could not', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { training, double } = page;
    const estimate: TrainingEstimate = {
      basis: 'measured',
      gflops: 1,
      seconds: 30,
      secondsPerStep: 0.5,
      totalSteps: 50,
      validationPasses: 2,
      validationSeconds: 1,
      memoryBytes: 2 ** 24,
      recompute: false,
      measuredSteps: 3,
      backend: 'cpu',
    };
    double.handle('estimateTraining', () => estimate);
    training.scheduleEstimate();
    training.scheduleEstimate();
    expect(training.estimating).toBe(true);
    expect(double.sent('estimateTraining')).toHaveLength(0);
    await vi.runAllTimersAsync();
    await until(() => training.estimate !== null, 'the estimate');
    expect(double.sent('estimateTraining')).toHaveLength(1);
    expect(double.sent('estimateTraining')[0]).not.toHaveProperty('source');
    expect(training.estimating).toBe(false);

    // The same settings are not measured again.
    training.scheduleEstimate();
    await vi.runAllTimersAsync();
    expect(double.sent('estimateTraining')).toHaveLength(1);

    double.handle('estimateTraining', () => {
      throw new Error('Out of memory while measuring: lower the batch size.');
    });
    training.settings.batchSize = 64;
    training.scheduleEstimate();
    await vi.runAllTimersAsync();
    await until(() => training.estimateError !== null, 'the estimate error');
    expect(training.estimateError).toBe('Out of memory while measuring: lower the batch size.');
    expect(training.estimate).toBeNull();
  });

  it('waiting to measure, is dropped when a run starts (it would slow the run)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { training, double } = page;
    double.handle('train', () => trainResult());
    training.scheduleEstimate();
    await training.start();
    await vi.runAllTimersAsync();
    expect(double.sent('estimateTraining')).toEqual([]);
    expect(training.estimating).toBe(false);
  });
});
