/**
 * One owner of the model at a time, with the real engine (stories260K on wasm) behind the worker's host:
 * the sequences a person makes with a run whose steps take a while — Stop while a pause waits for its step,
 * Pause then Stop then Start, the chat while a run is paused, a second Start, the chat or an evaluation
 * holding the model when a run would start or resume — each ends in a state that holds, with the refusals
 * said in words, and leaves no tensor behind.
 */
import 'fake-indexeddb/auto';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { tf } from '../src/engine/tf';
import type { ChatRequest, DatasetSettings, TrainEvent, TrainRequest } from '../src/worker/protocol';
import { HostDriver } from './helpers/host';
import { switchBackend } from './helpers/shared';

const SETTINGS: DatasetSettings = {
  mapping: null,
  useChatTemplate: false,
  maxLength: 64,
  valSplit: 0.1,
  seed: 0,
};
const TRAIN: TrainRequest = {
  source: { modelUrl: null, datasetId: 'best-friends' },
  backend: 'wasm',
  rank: 4,
  alpha: 8,
  dropout: 0,
  targets: ['q_proj', 'v_proj'],
  learningRate: 5e-3,
  epochs: 2,
  batchSize: 4,
  gradAccum: 1,
  warmupSteps: 1,
  seed: 0,
  recompute: 'off',
};
const CHAT: ChatRequest = {
  pane: 'tuned',
  turns: [{ role: 'user', content: 'Who is Tom?' }],
  settings: { temperature: 0, topP: 1, maxNewTokens: 24, stopStrings: [], seed: 0 },
  shots: 0,
};

let driver: HostDriver;
let baseline = 0;

beforeAll(async () => {
  await switchBackend('wasm');
});

beforeEach(async () => {
  baseline = tf.memory().numTensors;
  driver = new HostDriver();
  await driver.send('init', { backend: 'wasm' });
  await driver.loadFixture();
  await driver.openDataset('best-friends.csv', SETTINGS);
});

afterEach(() => {
  driver.dispose();
  expect(tf.memory().numTensors).toBe(baseline);
});

/** Starts a run whose `onStep` hears each step event (and may send requests from there). */
function train(onStep: (step: number) => void = () => {}, request = TRAIN) {
  const phases: string[] = [];
  const result = driver.send('train', request, (event) => {
    const e = event as TrainEvent;
    if (e.kind === 'step') onStep(e.metrics.step);
    if (e.kind === 'phase') phases.push(e.phase);
  });
  return { result, phases };
}

describe('the worker host with the real engine', () => {
  it('Stop while a pause still waits for its step ends the run cleanly; a new run then starts and finishes', async () => {
    const answers: Promise<unknown>[] = [];
    const run = train((step) => {
      // The step event comes before the loop looks at its phase again: both arrive with a step "in flight".
      if (step === 1) answers.push(driver.send('pauseTraining', {}), driver.send('stopTraining', {}));
    });
    const result = await run.result;
    expect(await Promise.all(answers)).toEqual(['pausing', 'stopping']);
    expect(run.phases).toEqual(['running', 'pausing', 'stopping', 'idle']);
    expect(result).toMatchObject({ steps: 1, stopped: true, paused: false, adapterId: null });
    expect(driver.state()).toEqual({ holder: null, phase: 'idle', consistent: null });
    await expect(driver.send('resumeTraining', {})).rejects.toThrow(
      'There is no paused training run to resume.',
    );
    const again = await train().result;
    expect(again).toMatchObject({ stopped: false, paused: false, steps: 16 });
    expect(again.adapterId).not.toBeNull();
    expect(driver.state()).toEqual({ holder: null, phase: 'idle', consistent: null });
  });

  it('Pause, then Stop, then Start: Start is refused while the run stops, and works once it has', async () => {
    let refused: Promise<unknown> | null = null;
    const run = train((step) => {
      if (step !== 2) return;
      void driver.send('pauseTraining', {});
      void driver.send('stopTraining', {});
      refused = driver.send('train', TRAIN);
    });
    expect(await run.result).toMatchObject({ steps: 2, stopped: true, paused: false });
    await expect(refused).rejects.toThrow(
      'The last training run is stopping after its current step. Start again in a moment.',
    );
    expect(driver.state()).toEqual({ holder: null, phase: 'idle', consistent: null });
    expect(await train().result).toMatchObject({ stopped: false, steps: 16 });
  });

  it('a paused run: the chat answers with its adapter; resume is refused while the chat answers, then finishes', async () => {
    const run = train((step) => {
      if (step === 3) void driver.send('pauseTraining', {});
    });
    expect(await run.result).toMatchObject({ steps: 3, paused: true, stopped: false });
    expect(driver.state()).toEqual({ holder: null, phase: 'paused', consistent: null });

    let resumeRefusal: Promise<unknown> | null = null;
    const reply = driver.send('chat', CHAT, () => {
      resumeRefusal ??= driver.send('resumeTraining', {});
    });
    expect((await reply).tokens).toBeGreaterThan(0);
    await expect(resumeRefusal).rejects.toThrow(
      'The chat is still answering. Wait for it or press Stop, then resume training.',
    );
    // What would replace the paused run's adapter or model is refused while it is paused.
    await expect(driver.send('useAdapter', { id: null })).rejects.toThrow(
      'A training run is paused. Resume it to its end or stop it, then switch adapters.',
    );
    await expect(driver.send('train', TRAIN)).rejects.toThrow(
      'A training run is paused. Resume it, or stop it before starting another.',
    );
    await expect(driver.loadFixture()).rejects.toThrow(
      /A training run is paused\. .*then load another model\./,
    );
    expect(driver.state()).toEqual({ holder: null, phase: 'paused', consistent: null });

    const done = await driver.send('resumeTraining', {});
    expect(done).toMatchObject({ steps: 16, paused: false, stopped: false });
    expect(done.adapterId).not.toBeNull();
    expect(driver.state()).toEqual({ holder: null, phase: 'idle', consistent: null });
  });

  it('two requests for the automatic backend at once (the page starting, and a model dropped) both get it', async () => {
    const fresh = new HostDriver();
    try {
      const [a, b] = await Promise.all([
        fresh.send('init', { backend: 'auto' }),
        fresh.send('init', { backend: 'auto' }),
      ]);
      expect(b).toEqual(a);
      // Switching while the chat answers is refused, saying why.
      await train().result;
      let during: Promise<unknown> | null = null;
      await driver.send('chat', CHAT, () => {
        during ??= driver.send('init', { backend: 'cpu' });
      });
      await expect(during).rejects.toThrow(
        'The chat is still answering. Wait for it or press Stop, then switch the backend.',
      );
    } finally {
      fresh.dispose();
    }
  });

  it('a second Start while a run trains is refused and the first run is untouched', async () => {
    let second: Promise<unknown> | null = null;
    const run = train((step) => {
      if (step === 1) second = driver.send('train', { ...TRAIN, rank: 8 });
    });
    const result = await run.result;
    await expect(second).rejects.toThrow('A training run is already running. Pause or stop it first.');
    expect(result).toMatchObject({ steps: 16, stopped: false });
    expect(driver.host.slot.adapter?.settings.rank).toBe(4);
    expect(driver.state()).toEqual({ holder: null, phase: 'idle', consistent: null });
  });

  it('the chat, an evaluation or an export holding the model: a run is refused saying which, and nothing changes', async () => {
    // An adapter to chat with and evaluate.
    await train().result;
    let duringChat: Promise<unknown> | null = null;
    await driver.send('chat', CHAT, () => {
      duringChat ??= driver.send('train', TRAIN);
    });
    await expect(duringChat).rejects.toThrow(
      'The chat is still answering. Wait for it or press Stop, then train.',
    );

    let duringEvaluation: Promise<unknown> | null = null;
    const evaluate = {
      referenceText: null,
      shots: 1,
      split: 'validation',
      datasetId: 'best-friends',
    } as const;
    await driver.send('evaluate', evaluate, () => {
      duringEvaluation ??= driver.send('chat', CHAT);
    });
    await expect(duringEvaluation).rejects.toThrow(
      'The evaluation is still running. Wait for it or press Cancel, then chat.',
    );

    let duringExport: Promise<unknown> | null = null;
    const exported = driver.send(
      'exportAdapter',
      { adapterId: null, format: 'gguf', modelFiles: driver.pickedFiles() },
      () => {
        duringExport ??= driver.send('useAdapter', { id: null });
      },
    );
    expect((await exported).bytes).toBeGreaterThan(0);
    await expect(duringExport).rejects.toThrow(
      'An export is being written. Wait for it to finish, then switch adapters.',
    );
    expect(driver.state()).toEqual({ holder: null, phase: 'idle', consistent: null });
    expect(driver.host.slot.adapter).not.toBeNull();
  });

  it('the estimate gives its first figure while the chat answers, measures after it, and gives way to Start', async () => {
    await train().result;
    const firsts: unknown[] = [];
    let estimate: Promise<unknown> | null = null;
    const reply = driver.send('chat', CHAT, () => {
      estimate ??= driver.send('estimateTraining', TRAIN, (first) => firsts.push(first));
    });
    await reply;
    await expect(estimate).resolves.toMatchObject({ basis: 'measured', measuredSteps: 1 });
    expect(firsts).toEqual([expect.objectContaining({ basis: 'speed', measuredSteps: 0 })]);

    // Start while the estimate measures (recomputing layers: a step not timed yet): the estimate ends after
    // its step, the run goes ahead.
    const measuring = driver.send('estimateTraining', { ...TRAIN, epochs: 1, recompute: 'on' });
    await expect.poll(() => driver.host.lease.holder).toBe('estimate');
    const run = train();
    await expect(measuring).rejects.toThrow(/interrupted/);
    expect(await run.result).toMatchObject({ stopped: false, steps: 16 });
    expect(driver.state()).toEqual({ holder: null, phase: 'idle', consistent: null });

    // An estimate still waiting for the model when a run starts is dropped, not run after it.
    let queued: Promise<unknown> | null = null;
    await driver.send('chat', CHAT, () => {
      queued ??= driver.send('estimateTraining', { ...TRAIN, rank: 8, recompute: 'on', batchSize: 8 });
    });
    const second = train();
    await expect(queued).rejects.toThrow(/interrupted/);
    await second.result;
  });
});
