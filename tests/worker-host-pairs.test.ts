/**
 * Every pair of requests, the second arriving at each turn of the worker's event loop while the first is
 * under way, with the real engine (stories260K on wasm) behind the worker's host. A message can only reach
 * a worker between tasks, so these are all the places a person's second click can land. Whatever the
 * order, each request is answered — with its result, or refused in words — and afterwards nobody holds
 * the model, a run is idle or paused (and a paused run resumes to its end), the LoRA wrappers round the
 * model are exactly the slot's adapter, switched on, and no tensor is left behind.
 */
import 'fake-indexeddb/auto';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../src/engine/tf';
import type { DatasetSettings, TrainEvent, TrainRequest } from '../src/worker/protocol';
import { HostDriver } from './helpers/host';
import { switchBackend } from './helpers/shared';

const ROWS = Array.from({ length: 8 }, (_, i) => `What is ${i} plus one?,It is ${i + 1}.`);
const CSV = new TextEncoder().encode(`question,answer\n${ROWS.join('\n')}\n`);
const SETTINGS: DatasetSettings = {
  mapping: null,
  useChatTemplate: false,
  maxLength: 32,
  valSplit: 0.25,
  seed: 0,
};
// 6 training rows in batches of 4: 2 steps; 2 held out.
const TRAIN: TrainRequest = {
  source: { modelUrl: null, datasetId: 'sums' },
  backend: 'wasm',
  rank: 2,
  alpha: 4,
  dropout: 0,
  targets: ['q_proj', 'v_proj'],
  learningRate: 1e-3,
  epochs: 1,
  batchSize: 4,
  gradAccum: 1,
  warmupSteps: 0,
  seed: 0,
  recompute: 'off',
};

/** Words the host may answer with instead of a result: refusals and "nothing to do". */
const SAID =
  /^(A training run is|Training is (running|pausing|stopping)|The chat is still|The evaluation is still|An export is being|An adapter is being|A model is loading|The model is generating|There is no (paused training run|training run|fine-tuned adapter)|The training run is|The last training run|The estimate was interrupted|Training is running: the estimate)/;

type Kind =
  | 'train'
  | 'resume'
  | 'pause'
  | 'stop'
  | 'chat'
  | 'evaluate'
  | 'estimate'
  | 'useAdapter'
  | 'export'
  | 'loadModel';

const REQUESTS: Record<Kind, (d: HostDriver) => Promise<unknown>> = {
  train: (d) => d.send('train', TRAIN),
  resume: (d) => d.send('resumeTraining', {}),
  pause: (d) => d.send('pauseTraining', {}),
  stop: (d) => d.send('stopTraining', {}),
  chat: (d) =>
    d.send('chat', {
      pane: 'tuned',
      turns: [{ role: 'user', content: 'What is 3 plus one?' }],
      settings: { temperature: 0, topP: 1, maxNewTokens: 4, stopStrings: [], seed: 0 },
      shots: 0,
    }),
  evaluate: (d) =>
    d.send('evaluate', { referenceText: null, shots: 1, split: 'validation', datasetId: 'sums' }),
  estimate: (d) => d.send('estimateTraining', TRAIN),
  useAdapter: (d) => d.send('useAdapter', { id: null }),
  export: (d) => d.send('exportAdapter', { adapterId: null, format: 'gguf', modelFiles: d.pickedFiles() }),
  loadModel: (d) => d.loadFixture(),
};
const KINDS = Object.keys(REQUESTS) as Kind[];

const turn = () => new Promise((resolve) => setTimeout(resolve, 0));

type Outcome = { kind: Kind; ok: boolean; message?: string };

async function settle(kind: Kind, answer: Promise<unknown>): Promise<Outcome> {
  try {
    await answer;
    return { kind, ok: true };
  } catch (error) {
    return { kind, ok: false, message: (error as Error).message };
  }
}

/** A host with the model, the dataset, and (for 'paused') a run paused after its first step. */
async function host(base: 'idle' | 'paused'): Promise<HostDriver> {
  const d = new HostDriver();
  await d.send('init', { backend: 'wasm' });
  await d.loadFixture();
  await d.openDataset('sums.csv', SETTINGS, CSV);
  if (base === 'paused') {
    const run = d.send('train', TRAIN, (event) => {
      if ((event as TrainEvent).kind === 'step') void d.send('pauseTraining', {});
    });
    expect(await run).toMatchObject({ paused: true });
  } else {
    // An adapter on the model, for the chat's fine-tuned pane and the evaluation.
    await d.send('train', TRAIN);
  }
  return d;
}

/** How many turns of the event loop `kind` takes alone from `base` (a few: wasm computes within a turn). */
async function turnsOf(base: 'idle' | 'paused', kind: Kind): Promise<number> {
  const d = await host(base);
  try {
    let done = false;
    void settle(kind, REQUESTS[kind](d)).then(() => (done = true));
    let turns = 0;
    while (!done) {
      await turn();
      turns++;
    }
    return turns;
  } finally {
    d.dispose();
  }
}

/** Runs `first`, sends `second` after `turns` turns, and checks what must hold once both are answered. */
async function interleave(base: 'idle' | 'paused', first: Kind, second: Kind, turns: number): Promise<void> {
  const before = tf.memory().numTensors;
  const d = await host(base);
  const label = `${base}: ${first}, then ${second} after ${turns} turns`;
  try {
    const a = settle(first, REQUESTS[first](d));
    for (let i = 0; i < turns; i++) await turn();
    const b = settle(second, REQUESTS[second](d));
    for (const outcome of await Promise.all([a, b]))
      if (!outcome.ok) expect(outcome.message, `${label}: ${outcome.kind}`).toMatch(SAID);
    expect(d.state(), label).toEqual({
      holder: null,
      phase: expect.stringMatching(/^(idle|paused)$/),
      consistent: null,
    });
    if (d.state().phase === 'paused') {
      // The paused run is intact: it resumes to its end.
      await expect(d.send('resumeTraining', {}), label).resolves.toMatchObject({
        stopped: false,
        paused: false,
      });
      expect(d.state(), label).toEqual({ holder: null, phase: 'idle', consistent: null });
    }
  } finally {
    d.dispose();
  }
  expect(tf.memory().numTensors, `${label}: tensors left`).toBe(before);
}

describe('every pair of requests, interleaved at each turn, with the real engine', () => {
  beforeAll(async () => {
    await switchBackend('wasm');
  });

  const firsts: Record<'idle' | 'paused', Kind[]> = {
    idle: ['train', 'chat', 'evaluate', 'estimate', 'useAdapter', 'export', 'loadModel'],
    paused: ['resume', 'stop', 'chat', 'evaluate'],
  };
  for (const base of ['idle', 'paused'] as const) {
    for (const first of firsts[base]) {
      it(`${base}: ${first}, then any other request at any turn`, { timeout: 600_000 }, async () => {
        const last = await turnsOf(base, first);
        for (const second of KINDS)
          for (let turns = 0; turns <= last; turns++) await interleave(base, first, second, turns);
      });
    }
  }
});
