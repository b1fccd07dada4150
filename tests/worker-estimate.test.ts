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
import { EstimateSession } from '../src/worker/estimate';
import { ModelLease } from '../src/worker/lease';
import type { DatasetSettings, TrainingEstimate, TrainRequest } from '../src/worker/protocol';
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
      { id: 'chat-adapter', name: 'the chat adapter', style: null, trainedOn: null },
    );
  });
  afterAll(() => {
    slot.clear(model.model);
    disposeModel(model.model);
  });

  const backends = { current: () => 'wasm', choose: async () => 'wasm' };

  it('gives a first figure from the device speed before a step, then one from a real step, leaving the model as it was', async () => {
    const ids = model.tokenizer.encode(TEXT);
    const before = await scoreTokens(model.model, ids);
    const adapterBefore = slot.adapter;
    const infoBefore = slot.info;
    const tensorsBefore = tf.memory().numTensors;

    const lease = new ModelLease();
    const estimates = new EstimateSession(slot, session, lease);
    const firsts: TrainingEstimate[] = [];
    const heldAtFirst: (string | null)[] = [];
    const estimate = await estimates.estimate(
      model,
      TRAIN,
      (first) => {
        firsts.push(first);
        heldAtFirst.push(lease.holder);
      },
      backends,
    );

    expect(tf.memory().numTensors).toBe(tensorsBefore);
    // The first figure came before the estimate took the model for its step.
    expect(firsts).toHaveLength(1);
    expect(heldAtFirst).toEqual([null]);
    expect(firsts[0]).toMatchObject({ basis: 'speed', measuredSteps: 0, backend: 'wasm' });
    expect(estimate).toMatchObject({ basis: 'measured', measuredSteps: 1, backend: 'wasm' });
    for (const e of [firsts[0], estimate]) {
      // 36 examples, 4 held out: 32 in batches of 4 is 8 steps an epoch.
      expect(e.totalSteps).toBe(8 * TRAIN.epochs);
      expect(e.validationPasses).toBe(TRAIN.epochs);
      expect(e.secondsPerStep).toBeGreaterThan(0);
      expect(e.validationSeconds).toBeGreaterThan(0);
      expect(e.seconds).toBeGreaterThanOrEqual(
        e.totalSteps * e.secondsPerStep + e.validationPasses * e.validationSeconds,
      );
      expect(e.memoryBytes).toBeGreaterThan(0);
    }
    expect(lease.holder).toBeNull();

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

    // Other settings for the same model: the speed the step reached, scaled by FLOPs, at once and without
    // taking the model again.
    const again: TrainingEstimate[] = [];
    const held: (string | null)[] = [];
    const pending = estimates.estimate(
      model,
      { ...TRAIN, epochs: 1 },
      (first) => again.push(first),
      backends,
    );
    held.push(lease.holder);
    const second = await pending;
    expect(again).toEqual([]);
    expect(held).toEqual([null]);
    expect(second).toMatchObject({ basis: 'measured', gflops: estimate.gflops, totalSteps: 8 });
    expect(second.secondsPerStep).toBeCloseTo(estimate.secondsPerStep, 10);
  });

  it('waits for the model behind the chat, gives way to anyone who asks, and is replaced by a newer one', async () => {
    const tensorsBefore = tf.memory().numTensors;
    const lease = new ModelLease();
    const estimates = new EstimateSession(slot, session, lease);
    // The chat holds the model: the first figure comes, the step waits.
    const release = await lease.take({ kind: 'chat' }, 'chat');
    const firsts: TrainingEstimate[] = [];
    const pending = estimates.estimate(model, TRAIN, (first) => firsts.push(first), backends);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(firsts).toHaveLength(1);
    expect(estimates.busy).toBe(true);
    release();
    // Once it measures, a request for the model ends it after its step.
    await expect.poll(() => lease.holder).toBe('estimate');
    const chat = await lease.take({ kind: 'chat' }, 'chat');
    expect(lease.holder).toBe('chat');
    await expect(pending).rejects.toThrow(/interrupted/);
    chat();
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    // A newer estimate replaces an older one: the older fails, the newer answers.
    const older = estimates.estimate(model, TRAIN, () => {}, backends);
    const newer = estimates.estimate(model, { ...TRAIN, epochs: 1 }, () => {}, backends);
    await expect(older).rejects.toThrow(/interrupted/);
    expect((await newer).totalSteps).toBe(8);
    expect(estimates.busy).toBe(false);
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });

  it('is refused while a run trains or is paused', async () => {
    const lease = new ModelLease(() => paused);
    let paused = false;
    const estimates = new EstimateSession(slot, session, lease);
    const release = await lease.take({ kind: 'training' }, 'train');
    await expect(estimates.estimate(model, TRAIN, () => {}, backends)).rejects.toThrow(
      /Training is running: the estimate waits until it ends/,
    );
    release();
    paused = true;
    await expect(estimates.estimate(model, TRAIN, () => {}, backends)).rejects.toThrow(
      /A training run is paused\. Resume it to its end or stop it, then estimate/,
    );
  });

  // The 2× is checked in the browser (tests/e2e/estimate.e2e.test.ts); here, on a machine whose other
  // processes come and go, both figures must have the order of a real run.
  it('has the order of a real run, first figure and measured one alike', async () => {
    const firsts: TrainingEstimate[] = [];
    const lease = new ModelLease();
    const estimate = await new EstimateSession(slot, session, lease).estimate(
      model,
      TRAIN,
      (first) => firsts.push(first),
      backends,
    );
    const training = new TrainingSession(slot, session, lease);
    const started = performance.now();
    const result = await training.train(model, TRAIN, () => {});
    const seconds = (performance.now() - started) / 1000;
    expect(result.steps).toBe(estimate.totalSteps);
    for (const e of [firsts[0], estimate]) {
      expect(e.seconds).toBeGreaterThan(seconds / 10);
      expect(e.seconds).toBeLessThan(seconds * 10);
    }
  });
});
