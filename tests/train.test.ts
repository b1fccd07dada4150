import { beforeAll, describe, expect, it } from 'vitest';
import { generate } from '../src/engine/generate';
import { attachLora, detachLora, peftInit, type LoraInit, type LoraSettings } from '../src/engine/lora';
import { disposeModel } from '../src/engine/model';
import { tf } from '../src/engine/tf';
import { runTraining, Trainer, TrainingError, type TrainSettings } from '../src/engine/train';
import { bestFriends, weightsOf } from './helpers/best-friends';
import { loadFixture, switchBackend } from './helpers/shared';
import { disposeAfterEach } from './helpers/cleanup';

const own = disposeAfterEach();

const LORA: LoraSettings = {
  rank: 8,
  alpha: 16,
  dropout: 0,
  targets: ['q_proj', 'v_proj'],
  useRslora: false,
};
const TRAIN: TrainSettings = {
  learningRate: 1e-2,
  epochs: 6,
  gradAccum: 1,
  warmupSteps: 2,
  maxGradNorm: 1,
  weightDecay: 0,
  seed: 1,
};

describe('training', () => {
  beforeAll(async () => {
    await switchBackend('wasm');
  });

  it('learns best-friends.csv: train loss at least halves and greedy answers reproduce the data', async () => {
    const { model, tokenizer } = own(loadFixture('stories260K'));
    const set = bestFriends(tokenizer);
    const adapter = own.adapter(model, attachLora(model, LORA, peftInit(1)));
    const before = tf.memory().numTensors;
    const trainer = own.add(
      new Trainer(
        model,
        adapter,
        { epochBatches: set.data.epochBatches, validation: set.data.epochBatches(0) },
        TRAIN,
      ),
    );
    const initialLoss = (await trainer.evaluate())!;
    const summary = await runTraining(trainer);
    const finalLoss = (await trainer.evaluate())!;
    trainer.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(summary.steps).toBe(trainer.totalSteps);
    expect(summary.history.every((m) => Number.isFinite(m.loss) && m.tokensPerSecond > 0)).toBe(true);
    expect(finalLoss).toBeLessThan(initialLoss / 2);

    for (const { example } of set.train.slice(0, 6)) {
      const prompt = tokenizer.encode(example.prompt + '\n');
      const result = await generate(model, prompt, {
        maxNewTokens: 16,
        decode: (ids) => tokenizer.decode(ids),
        stopStrings: ['\n'],
      });
      expect(result.text.startsWith(example.completion), `${example.prompt} → ${result.text}`).toBe(true);
    }
    expect(tf.memory().numTensors).toBe(before);
    // The base model, with the adapter off, does not know these answers.
    adapter.enabled = false;
    const base = await generate(model, tokenizer.encode(set.train[0].example.prompt + '\n'), {
      maxNewTokens: 16,
      decode: (ids) => tokenizer.decode(ids),
    });
    expect(base.text.startsWith(set.train[0].example.completion)).toBe(false);
    detachLora(model, adapter);
    disposeModel(model);
  });

  it('resumes from a saved state to exactly the weights of an uninterrupted run', async () => {
    const settings = { ...TRAIN, epochs: 2 };
    const lora = { ...LORA, dropout: 0.1 }; // dropout makes the RNG state matter
    const run = async (stopAt: number | null) => {
      const { model, tokenizer } = own(loadFixture('stories260K'));
      const set = bestFriends(tokenizer, { batchSize: 3 });
      const adapter = own.adapter(model, attachLora(model, lora, peftInit(7)));
      const trainer = own.add(new Trainer(model, adapter, set.data, settings));
      if (stopAt !== null) {
        await runTraining(trainer, { shouldStop: () => trainer.step >= stopAt });
        const saved = await trainer.exportState();
        trainer.dispose();
        detachLora(model, adapter);
        // A fresh adapter with a different init: everything must come from the saved state.
        const resumedAdapter = own.adapter(model, attachLora(model, lora, peftInit(99)));
        const resumed = own.add(new Trainer(model, resumedAdapter, set.data, settings));
        resumed.importState(saved);
        await runTraining(resumed);
        resumed.dispose();
        const w = await weightsOf(resumedAdapter);
        detachLora(model, resumedAdapter);
        disposeModel(model);
        return w;
      }
      await runTraining(trainer);
      trainer.dispose();
      const w = await weightsOf(adapter);
      detachLora(model, adapter);
      disposeModel(model);
      return w;
    };
    const straight = await run(null);
    const resumed = await run(7); // mid-epoch: 12 steps per epoch
    expect(resumed).toEqual(straight);
  });

  it('a run with recomputed layers ends on the losses and weights of one that keeps every activation', async () => {
    // Dropout on: the recomputed layers must draw the masks the first pass drew.
    const lora = {
      ...LORA,
      dropout: 0.1,
      targets: ['q_proj', 'v_proj', 'down_proj'] as LoraSettings['targets'],
    };
    const run = async (recompute: boolean) => {
      const { model, tokenizer } = own(loadFixture('stories260K'));
      const set = bestFriends(tokenizer, { batchSize: 3 });
      const adapter = own.adapter(model, attachLora(model, lora, peftInit(5)));
      const trainer = own.add(new Trainer(model, adapter, set.data, { ...TRAIN, epochs: 2, recompute }));
      const before = tf.memory().numTensors;
      const summary = await runTraining(trainer);
      trainer.dispose();
      const after = tf.memory().numTensors;
      const w = await weightsOf(adapter);
      detachLora(model, adapter);
      disposeModel(model);
      return {
        losses: summary.history.map((m) => m.loss),
        valLoss: summary.valLoss,
        w,
        leaked: after - before,
      };
    };
    const kept = await run(false);
    const recomputed = await run(true);
    expect(recomputed.leaked).toBeLessThanOrEqual(0);
    expect(recomputed.losses).toHaveLength(kept.losses.length);
    recomputed.losses.forEach((loss, i) =>
      expect(Math.abs(loss - kept.losses[i]), `step ${i + 1}`).toBeLessThan(1e-4),
    );
    expect(Math.max(...kept.w.map((v, i) => Math.abs(v - recomputed.w[i])))).toBeLessThan(1e-4);
  });

  it('gradient accumulation over two half batches equals one full batch', async () => {
    const firstStep = async (batchSize: number, gradAccum: number) => {
      const { model, tokenizer } = own(loadFixture('stories260K'));
      const set = bestFriends(tokenizer, { batchSize, gradAccum });
      const adapter = own.adapter(model, attachLora(model, LORA, peftInit(3)));
      const trainer = own.add(new Trainer(model, adapter, set.data, { ...TRAIN, gradAccum }));
      const metrics = await trainer.trainStep();
      const w = await weightsOf(adapter);
      trainer.dispose();
      detachLora(model, adapter);
      disposeModel(model);
      return { metrics, w };
    };
    const full = await firstStep(4, 1);
    const accumulated = await firstStep(2, 2);
    expect(accumulated.metrics.loss).toBeCloseTo(full.metrics.loss, 5);
    expect(accumulated.metrics.gradNorm).toBeCloseTo(full.metrics.gradNorm, 4);
    const worst = Math.max(...full.w.map((v, i) => Math.abs(v - accumulated.w[i])));
    expect(worst).toBeLessThan(1e-6);
  });

  it('stops on a non-finite loss with a clear message and leaves the weights as they were', async () => {
    const { model, tokenizer } = own(loadFixture('stories260K'));
    const set = bestFriends(tokenizer);
    // Weights so large that the adapter's output overflows float32: the loss becomes NaN.
    const overflowing: LoraInit = (_l, _t, _i, { in: inFeatures, out, rank }) => ({
      A: new Float32Array(rank * inFeatures).fill(1e20),
      B: new Float32Array(out * rank).fill(1e20),
    });
    const adapter = own.adapter(model, attachLora(model, LORA, overflowing));
    const trainer = own.add(new Trainer(model, adapter, set.data, TRAIN));
    const before = await weightsOf(adapter);
    const error = await trainer.trainStep().then(
      () => null,
      (e: Error) => e,
    );
    expect(error).toBeInstanceOf(TrainingError);
    expect(error!.message).toMatch(/step 1: the loss became NaN/);
    expect(error!.message).toMatch(/lower learning rate/);
    expect(trainer.step).toBe(0);
    expect(await weightsOf(adapter)).toEqual(before);
    trainer.dispose();
    detachLora(model, adapter);
    disposeModel(model);
  });
});
