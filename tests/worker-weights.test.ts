/**
 * The page's Base weights setting in the worker: models load as it says, the model in memory is loaded
 * again that way only when the worker can read its files again, and never under a paused run.
 */
import 'fake-indexeddb/auto';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { tf } from '../src/engine/tf';
import type { TrainEvent, TrainRequest } from '../src/worker/protocol';
import { HostDriver } from './helpers/host';
import { switchBackend } from './helpers/shared';

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

let driver: HostDriver;
let baseline = 0;
beforeAll(() => switchBackend('wasm'));
beforeEach(async () => {
  baseline = tf.memory().numTensors;
  driver = new HostDriver();
  await driver.send('init', { backend: 'wasm' });
});
afterEach(() => {
  driver.dispose();
  expect(tf.memory().numTensors).toBe(baseline);
});

describe('Base weights in the worker', () => {
  it('Automatic holds a small model in 32 bits and says why; a setting made first holds the next model so', async () => {
    const auto = await driver.loadFixture();
    expect(auto.weights.format).toBe('f32');
    expect(auto.weights.reason).toMatch(
      /^32-bit: training on 1 × 256 tokens needs about 0\.\d GB, within the 3\.0 GB/,
    );
    // Picked files are not kept: the model cannot be loaded again by itself, and stays as it is.
    await expect(driver.send('setWeights', { setting: 'nf4' })).rejects.toThrow(/pick them again/);
    driver.dispose();
    driver = new HostDriver();
    await driver.send('init', { backend: 'wasm' });
    expect(await driver.send('setWeights', { setting: 'nf4' })).toBeNull();
    const nf4 = await driver.loadFixture();
    expect(nf4.weights).toEqual({ format: 'nf4', reason: '4-bit (nf4), as chosen' });
    // The model the worker holds is the nf4 one: its scores are not the 32-bit model's.
    const text = { text: 'Once upon a time, there was a little girl' };
    const quantized = await driver.send('score', text);
    driver.dispose();
    driver = new HostDriver();
    await driver.send('init', { backend: 'wasm' });
    await driver.loadFixture();
    const wide = await driver.send('score', text);
    expect(quantized.tokens).toEqual(wide.tokens);
    expect(quantized.logprobs).not.toEqual(wide.logprobs);
  });

  it('is refused while a run is paused, saying so, and the run resumes to its end', async () => {
    await driver.loadFixture();
    await driver.openDataset('best-friends.csv', {
      mapping: null,
      useChatTemplate: false,
      maxLength: 64,
      valSplit: 0.1,
      seed: 0,
    });
    const run = driver.send('train', TRAIN, (event) => {
      if (
        (event as TrainEvent).kind === 'step' &&
        (event as { metrics: { step: number } }).metrics.step === 2
      )
        void driver.send('pauseTraining', {});
    });
    expect((await run).paused).toBe(true);
    await expect(driver.send('setWeights', { setting: 'q8_0' })).rejects.toThrow(
      'A training run is paused. Resume it to its end or stop it, then hold the weights another way.',
    );
    const resumed = await driver.send('resumeTraining', {});
    expect(resumed.paused).toBe(false);
  });
});
