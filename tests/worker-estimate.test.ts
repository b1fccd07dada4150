/**
 * The training estimate (src/worker/estimate.ts): a few real steps on a throwaway adapter give seconds and
 * memory for the whole run, leave no tensor behind and leave the model — with the chat's adapter on it —
 * answering exactly as before; and the figure adds up and has the order of a real run of those settings.
 */
import 'fake-indexeddb/auto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadedModel } from '../src/engine/load';
import { attachLora } from '../src/engine/lora';
import { disposeModel } from '../src/engine/model';
import { scoreTokens } from '../src/engine/score';
import { tf } from '../src/engine/tf';
import { AdapterSlot } from '../src/worker/adapter-slot';
import { DatasetSession } from '../src/worker/dataset-session';
import { EstimateSession, MEASURED_STEPS } from '../src/worker/estimate';
import type { DatasetSettings, TrainRequest } from '../src/worker/protocol';
import { TrainingSession } from '../src/worker/training';
import { dataFile, loadFixture, switchBackend } from './helpers/shared';

const FILE = 'best-friends.csv';
const SETTINGS: DatasetSettings = {
  mapping: null,
  useChatTemplate: true,
  maxLength: 64,
  valSplit: 0.1,
  seed: 0,
};
const TRAIN: TrainRequest = {
  source: { modelUrl: null, datasetId: 'best-friends' },
  backend: 'auto',
  rank: 8,
  alpha: 16,
  dropout: 0.05,
  targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
  learningRate: 5e-3,
  epochs: 4,
  batchSize: 4,
  gradAccum: 1,
  warmupSteps: 2,
  seed: 0,
  recompute: 'auto',
};
const TEXT = 'Tom and Lily were best friends. They played in the park every day.';

describe('the training estimate', () => {
  let model: LoadedModel;
  let session: DatasetSession;
  let slot: AdapterSlot;
  beforeAll(async () => {
    await switchBackend('wasm');
    model = loadFixture('stories260K');
    session = new DatasetSession();
    await session.open({
      bytes: new Uint8Array(fs.readFileSync(dataFile(FILE))),
      fileName: FILE,
      settings: SETTINGS,
    });
    session.useModel(model);
    slot = new AdapterSlot();
    // The chat's adapter: weights far from zero, so the outputs show whether it is still on after the
    // estimate.
    let k = 0;
    const init = (
      _l: number,
      _t: string,
      _i: number,
      { in: inF, out, rank }: { in: number; out: number; rank: number },
    ) => ({
      A: Float32Array.from({ length: rank * inF }, () => Math.sin(++k) * 0.3),
      B: Float32Array.from({ length: out * rank }, () => Math.cos(++k) * 0.3),
    });
    slot.put(
      model.model,
      () =>
        attachLora(
          model.model,
          { rank: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'v_proj', 'up_proj'], useRslora: false },
          init,
          model.name,
        ),
      { id: 'chat-adapter', name: 'the chat adapter', style: null },
    );
  });
  afterAll(() => {
    slot.clear(model.model);
    disposeModel(model.model);
  });

  it('measures seconds and memory, leaves no tensor behind and the model (with the chat adapter) unchanged', async () => {
    const ids = model.tokenizer.encode(TEXT);
    const before = await scoreTokens(model.model, ids);
    const adapterBefore = slot.adapter;
    const infoBefore = slot.info;
    const tensorsBefore = tf.memory().numTensors;

    const estimates = new EstimateSession(slot, session);
    const estimate = await estimates.estimate(model, TRAIN, async () => 'wasm');

    expect(tf.memory().numTensors).toBe(tensorsBefore);
    // 36 examples, 4 held out: 32 in batches of 4 is 8 steps an epoch.
    expect(estimate.totalSteps).toBe(8 * TRAIN.epochs);
    expect(estimate.measuredSteps).toBe(MEASURED_STEPS);
    expect(estimate.secondsPerStep).toBeGreaterThan(0);
    expect(estimate.validationPasses).toBe(TRAIN.epochs);
    expect(estimate.validationSeconds).toBeGreaterThan(0);
    expect(estimate.seconds).toBeGreaterThan(estimate.totalSteps * estimate.secondsPerStep);
    expect(estimate.memoryBytes).toBeGreaterThan(0);
    expect(estimate.backend).toBe('wasm');

    const after = await scoreTokens(model.model, ids);
    expect(after.logprobs).toEqual(before.logprobs);
    expect(slot.adapter).toBe(adapterBefore);
    expect(slot.info).toBe(infoBefore);
    // And the adapter is really on: switching it off changes the scores.
    slot.adapter!.enabled = false;
    let base;
    try {
      base = await scoreTokens(model.model, ids);
    } finally {
      // On for the tests after this one whatever happened here.
      slot.adapter!.enabled = true;
    }
    expect(base.nll).not.toBeCloseTo(before.nll, 3);
  });

  it('ends when stopped (a training run or the chat needs the model) and still leaves no tensor behind', async () => {
    const tensorsBefore = tf.memory().numTensors;
    const estimates = new EstimateSession(slot, session);
    try {
      const pending = estimates.estimate(model, TRAIN, async () => 'wasm');
      expect(estimates.busy).toBe(true);
      await estimates.stop();
      await expect(pending).rejects.toThrow(/interrupted/);
      expect(estimates.busy).toBe(false);
      expect(tf.memory().numTensors).toBe(tensorsBefore);
      // A newer estimate replaces an older one: the older fails, the newer answers.
      const older = estimates.estimate(model, TRAIN, async () => 'wasm');
      const newer = estimates.estimate(model, { ...TRAIN, epochs: 1 }, async () => 'wasm');
      await expect(older).rejects.toThrow(/interrupted/);
      expect((await newer).totalSteps).toBe(8);
      expect(tf.memory().numTensors).toBe(tensorsBefore);
    } finally {
      // Never left running into the next test, whichever assertion failed.
      await estimates.stop();
    }
  });

  // The 2× is checked in the browser (tests/e2e/estimate.e2e.test.ts); here, on a machine whose other
  // processes come and go, the figure must add up and have the run's order of magnitude.
  it("adds up the run's steps, validation passes and checkpoints, and has the order of a real run", async () => {
    const estimates = new EstimateSession(slot, session);
    const estimate = await estimates.estimate(model, TRAIN, async () => 'wasm');
    const steps = estimate.totalSteps * estimate.secondsPerStep;
    expect(estimate.seconds).toBeGreaterThanOrEqual(
      steps + estimate.validationPasses * estimate.validationSeconds,
    );
    // Checkpoints (every 5 steps) read the adapter back: a small share of the run.
    expect(estimate.seconds).toBeLessThan(2 * steps + estimate.validationPasses * estimate.validationSeconds);
    const training = new TrainingSession(slot, session);
    const started = performance.now();
    const result = await training.train(model, TRAIN, () => {});
    const seconds = (performance.now() - started) / 1000;
    expect(result.steps).toBe(estimate.totalSteps);
    expect(estimate.seconds).toBeGreaterThan(seconds / 10);
    expect(estimate.seconds).toBeLessThan(seconds * 10);
  });
});
