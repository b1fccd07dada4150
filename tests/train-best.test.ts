/**
 * Early stopping and the best weights. The reference for "the best weights" is the same run (training is
 * deterministic for a seed) stopped at the best step: the adapter must end with exactly those weights.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { attachLora, detachLora, peftInit, type LoraSettings } from '../src/engine/lora';
import { disposeModel } from '../src/engine/model';
import { tf } from '../src/engine/tf';
import { runTraining, Trainer, type TrainSettings } from '../src/engine/train';
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
// A high rate on a small set: validation loss falls, then rises as the adapter overfits.
const TRAIN: TrainSettings = {
  learningRate: 3e-2,
  epochs: 12,
  gradAccum: 1,
  warmupSteps: 0,
  maxGradNorm: 1,
  weightDecay: 0,
  seed: 2,
  evalEvery: 2,
};

/** One run on best-friends.csv with a validation split; `stopAt` ends it early from outside (a pause). */
async function run(settings: Partial<TrainSettings>, options: { stopAt?: number; resumeAt?: number } = {}) {
  const { model, tokenizer } = own(loadFixture('stories260K'));
  const set = bestFriends(tokenizer, { valSplit: 0.3, seed: 4 });
  const adapter = own.adapter(model, attachLora(model, LORA, peftInit(1)));
  let trainer = own.add(new Trainer(model, adapter, set.data, { ...TRAIN, ...settings }));
  const evals: { step: number; valLoss: number; best: boolean }[] = [];
  let summary = await runTraining(trainer, {
    onEval: (e) => void evals.push(e),
    shouldStop: () => trainer.step === (options.stopAt ?? options.resumeAt),
  });
  if (options.resumeAt !== undefined) {
    // As after a reload: a new trainer from the saved state.
    const state = await trainer.exportState();
    trainer.dispose();
    trainer = own.add(new Trainer(model, adapter, set.data, { ...TRAIN, ...settings }));
    trainer.importState(state);
    summary = await runTraining(trainer, { onEval: (e) => void evals.push(e) });
  }
  const weights = await weightsOf(adapter);
  trainer.dispose();
  detachLora(model, adapter);
  disposeModel(model);
  return { summary, evals, weights, totalSteps: trainer.totalSteps };
}

describe('the best weights', () => {
  beforeAll(async () => {
    await switchBackend('wasm');
  });

  it('are the ones a finished run ends with, exactly the weights at the best step', async () => {
    const before = tf.memory().numTensors;
    const best = await run({});
    const minimum = Math.min(...best.evals.map((e) => e.valLoss));
    const bestStep = best.evals.find((e) => e.valLoss === minimum)!.step;
    // The curve turns: the best is neither the first nor the last evaluation.
    expect(bestStep).toBeGreaterThan(best.evals[0].step);
    expect(bestStep).toBeLessThan(best.totalSteps);
    expect(best.summary).toMatchObject({
      kept: 'best',
      best: { step: bestStep, valLoss: minimum },
      valLoss: minimum,
      steps: best.totalSteps,
      earlyStopped: false,
    });
    expect(
      best.evals
        .filter((e) => e.best)
        .map((e) => e.step)
        .at(-1),
    ).toBe(bestStep);

    const stoppedThere = await run({}, { stopAt: bestStep });
    expect(stoppedThere.summary).toMatchObject({ stopped: true, kept: 'last' });
    expect(best.weights).toEqual(stoppedThere.weights);

    const last = await run({ keep: 'last' });
    expect(last.summary.kept).toBe('last');
    expect(last.weights).not.toEqual(best.weights);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('survive a pause and a resume', async () => {
    const straight = await run({});
    const bestStep = straight.summary.best!.step;
    const resumed = await run({}, { resumeAt: bestStep + 4 });
    expect(resumed.summary.best).toEqual(straight.summary.best);
    expect(resumed.weights).toEqual(straight.weights);
  });

  it('end the run after `patience` evaluations without a better loss', async () => {
    const full = await run({});
    // Where a patience of 2 ends the same trajectory: the second evaluation in a row that does not beat the
    // best so far.
    let best = { step: 0, valLoss: Infinity };
    let since = 0;
    let stopStep = -1;
    for (const e of full.evals) {
      if (e.valLoss < best.valLoss) [best, since] = [{ step: e.step, valLoss: e.valLoss }, 0];
      else if (++since === 2) {
        stopStep = e.step;
        break;
      }
    }
    expect(stopStep).toBeGreaterThan(0);
    expect(stopStep).toBeLessThan(full.totalSteps);
    const early = await run({ patience: 2 });
    expect(early.summary).toMatchObject({
      earlyStopped: true,
      stopped: false,
      kept: 'best',
      steps: stopStep,
      best,
    });
    const atBest = await run({}, { stopAt: best.step });
    expect(early.weights).toEqual(atBest.weights);
  });
});
