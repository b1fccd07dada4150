/**
 * Gradient accumulation with a micro-batch that has no completion tokens: an example whose prompt fills
 * the max length loses its whole completion, and length grouping puts such long examples together. The
 * step must train on the other micro-batch alone — its loss is the mean negative log-likelihood of that
 * example's completion tokens under the PyTorch reference (the adapter starts as the base model) — in the
 * engine, in `webtune train` and in the page's worker.
 */
import 'fake-indexeddb/auto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countTargets } from '../src/engine/batch';
import { parseDataset, plainFormat } from '../src/data';
import { setUpTrainer } from '../src/data/trainer-setup';
import { buildTrainingSet } from '../src/data/training-set';
import { tf } from '../src/engine/tf';
import { disposeAfterEach } from './helpers/cleanup';
import { runCli } from './helpers/cli';
import { HostDriver } from './helpers/host';
import { referenceScore } from './helpers/reference';
import { loadFixture, modelDir, switchBackend } from './helpers/shared';
import { crossEntropySum } from './helpers/cross-entropy';

const LONG = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ');
// The second row's prompt alone is longer than the max length: nothing of its answer is left to learn.
const CSV = `question,answer\nWho is Tom?,Tom is a boy.\n"${LONG}",It is long.\n`;
const MAX_LENGTH = 24;
const RUN = {
  rank: 4,
  alpha: 8,
  dropout: 0,
  targets: ['q_proj', 'v_proj'],
  learningRate: 1e-3,
  epochs: 1,
  batchSize: 1,
  gradAccum: 2,
  warmupSteps: 0,
  seed: 0,
  recompute: 'on' as const,
};

const own = disposeAfterEach();

beforeAll(async () => {
  await switchBackend('wasm');
});

describe('gradient accumulation over a micro-batch with nothing to learn', () => {
  it('trains on the other micro-batch: its loss is the reference NLL of that completion', async () => {
    const loaded = own(loadFixture('stories260K'));
    const dataset = parseDataset(CSV, 'long.csv');
    const set = buildTrainingSet(dataset, loaded.tokenizer, {
      mapping: { kind: 'template', promptTemplate: '{question}', completionTemplate: '{answer}' },
      format: plainFormat(),
      maxLength: MAX_LENGTH,
      valSplit: 0,
      batchSize: 1,
      gradAccum: 2,
      seed: 0,
    });
    const micro = set.data.epochBatches(0);
    expect(micro.map((b) => countTargets(b) > 0).sort()).toEqual([false, true]);
    const tensors = tf.memory().numTensors;
    const { trainer, adapter } = setUpTrainer(loaded, set.data, RUN);
    own.adapter(loaded.model, adapter);
    own.add(trainer);
    const metrics = await trainer.trainStep();
    expect(trainer.step).toBe(1);

    // The reference: per-token log-probs of the short example; its loss is over its completion tokens.
    const short = micro.find((b) => countTargets(b) > 0)!;
    const ids = Array.from(
      short.ids.subarray(
        0,
        short.attentionMask.reduce((a, b) => a + b, 0),
      ),
    );
    const { logprobs } = referenceScore(modelDir('stories260K'), ids);
    const completion = logprobs.filter((_, i) => short.targetMask[i + 1] === 1);
    const nll = -completion.reduce((a, b) => a + b, 0) / completion.length;
    expect(metrics.loss).toBeCloseTo(nll, 4);
    expect(metrics.gradNorm).toBeGreaterThan(0);
    trainer.dispose();
    expect(tf.memory().numTensors).toBe(tensors + adapter.variables().length);
  });

  it('the fused loss over no rows has a zero gradient instead of failing', () => {
    const loaded = own(loadFixture('stories260K'));
    const x = tf.variable(tf.ones([3, loaded.args.hiddenSize]));
    const tensors = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(() => {
      const none = tf.slice(x, [0, 0], [0, -1]) as tf.Tensor2D;
      const empty = crossEntropySum(loaded.model, none, new Int32Array(0), new Float32Array(0));
      return tf.add(empty, tf.sum(x)) as tf.Scalar;
    }, [x]);
    expect(value.dataSync()[0]).toBe(3 * loaded.args.hiddenSize);
    expect(Array.from(grads[x.name].dataSync()).every((g) => g === 1)).toBe(true);
    tf.dispose([value, ...Object.values(grads)]);
    expect(tf.memory().numTensors).toBe(tensors);
    x.dispose();
  });

  describe('in the CLI and the page', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-accum-'));
    const file = path.join(dir, 'long.csv');
    fs.writeFileSync(file, CSV);
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('webtune train --grad-accum 2 finishes and writes the adapter', async () => {
      const out = path.join(dir, 'long.zip');
      const run = await runCli([
        'train',
        '--model',
        modelDir('stories260K'),
        '--data',
        file,
        '--out',
        out,
        '--batch-size',
        '1',
        '--grad-accum',
        '2',
        '--max-length',
        String(MAX_LENGTH),
        '--val-split',
        '0',
        '--epochs',
        '1',
        '--backend',
        'wasm',
      ]);
      expect(run.stderr).not.toMatch(/Cannot read|undefined/);
      expect(run.status).toBe(0);
      expect(fs.existsSync(out)).toBe(true);
    });

    it("the page's worker trains the same run to its end", async () => {
      const before = tf.memory().numTensors;
      const driver = new HostDriver();
      try {
        await driver.send('init', { backend: 'wasm' });
        await driver.loadFixture();
        await driver.openDataset(
          'long.csv',
          { mapping: null, useChatTemplate: false, maxLength: MAX_LENGTH, valSplit: 0, seed: 0 },
          new Uint8Array(fs.readFileSync(file)),
        );
        const result = await driver.send('train', {
          ...RUN,
          source: { modelUrl: null, datasetId: 'long' },
          backend: 'wasm',
        });
        expect(result).toMatchObject({ steps: 1, stopped: false });
        expect(result.adapterId).not.toBeNull();
      } finally {
        driver.dispose();
      }
      expect(tf.memory().numTensors).toBe(before);
    });
  });
});
