// DPO and ORPO through the Trainer: one step with accumulation against the PyTorch reference, the first DPO
// step at exactly log 2, a few steps raising the held-out reward accuracy, resume, and refused batches.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Batch } from '../src/engine/batch';
import { attachLora, detachLora, peftInit, type LoraSettings } from '../src/engine/lora';
import { Dpo, objectiveNamed, Orpo } from '../src/engine/preference';
import { tf } from '../src/engine/tf';
import { runTraining, Trainer, TrainingError, type TrainSettings } from '../src/engine/train';
import { disposeAfterEach } from './helpers/cleanup';
import { detLora } from './helpers/det-lora';
import type { ObjectiveRef } from './helpers/objective-checks';
import { pairBatch, paddedBatch, referencePairs, type PairIds } from './helpers/pairs';
import { loadFixture, reference, switchBackend } from './helpers/shared';

const own = disposeAfterEach();

const ONE_STEP: TrainSettings = {
  learningRate: 1e-3,
  epochs: 1,
  gradAccum: 2,
  warmupSteps: 0,
  maxGradNorm: 1e9,
  weightDecay: 0,
  seed: 3,
};

const LORA: LoraSettings = {
  rank: 8,
  alpha: 16,
  dropout: 0,
  targets: ['q_proj', 'v_proj'],
  useRslora: false,
};

describe('preference objectives in the trainer', () => {
  beforeAll(async () => {
    await switchBackend('wasm');
  });

  for (const name of ['dpo', 'orpo'] as const)
    for (const recompute of [true, false])
      it(`${name}: one step over two accumulated micro-batches has the reference's loss, figures and gradient norm (layers ${recompute ? '' : 'not '}recomputed)`, async () => {
        const ref = reference<ObjectiveRef>('stories260K', `objective-${name}.json`);
        const { model } = own(loadFixture('stories260K'));
        const adapter = own.adapter(
          model,
          attachLora(
            model,
            { rank: ref.rank, alpha: ref.alpha, dropout: 0, targets: ref.targets, useRslora: false },
            detLora,
          ),
        );
        const pairs = referencePairs();
        // Two pairs, then one: the step's mean is over all three, not a mean of the micro-batches' means.
        const micro = [pairBatch(pairs.slice(0, 2), 0), pairBatch(pairs.slice(2), 2)];
        const data = { epochBatches: () => micro, validation: [] };
        const trainer = own.add(
          new Trainer(model, adapter, data, { ...ONE_STEP, recompute }, objectiveNamed(name, ref.beta)),
        );
        const metrics = await trainer.trainStep();
        expect(Math.abs(metrics.loss - ref.loss)).toBeLessThan(1e-4);
        const norm = Math.sqrt(
          Object.values(ref.grads)
            .flatMap((g) => g.flat())
            .reduce((s, g) => s + g * g, 0),
        );
        expect(Math.abs(metrics.gradNorm - norm) / norm).toBeLessThan(1e-3);
        expect(Object.keys(metrics.objectiveMetrics!)).toEqual(Object.keys(ref.metrics));
        for (const [figure, value] of Object.entries(ref.metrics))
          expect(Math.abs(metrics.objectiveMetrics![figure] - value), figure).toBeLessThan(1e-4);
      });

  it("dpo's first step, with the adapter's B at zero, is exactly log 2 for every pair with zero rewards", async () => {
    const { model } = own(loadFixture('stories260K'));
    const adapter = own.adapter(model, attachLora(model, LORA, peftInit(5)));
    const micro = [pairBatch(referencePairs(), 0)];
    const trainer = own.add(
      new Trainer(
        model,
        adapter,
        { epochBatches: () => micro, validation: [] },
        { ...ONE_STEP, gradAccum: 1 },
        new Dpo(),
      ),
    );
    const { loss, objectiveMetrics } = await trainer.trainStep();
    expect(objectiveMetrics).toEqual({
      'rewards/chosen': 0,
      'rewards/rejected': 0,
      'rewards/margins': 0,
      'rewards/accuracies': 0,
    });
    expect(Math.abs(loss - Math.LN2)).toBeLessThan(1e-7);
  });

  it('a few DPO steps raise the held-out reward accuracy from none to all pairs, and leave no tensor behind', async () => {
    const { model, tokenizer } = own(loadFixture('stories260K'));
    // The chosen answers end happily, the rejected ones sadly: a style the held-out pairs share.
    const pair = (prompt: string, chosen: string, rejected: string): PairIds => ({
      prompt: tokenizer.encode(prompt),
      chosen: tokenizer.encode(' ' + chosen, { addSpecialTokens: false }),
      rejected: tokenizer.encode(' ' + rejected, { addSpecialTokens: false }),
    });
    const happy = (who: string) => `${who} smiled and was very happy.`;
    const sad = (who: string) => `${who} cried and was very sad.`;
    const train = [
      pair('Tom had a red ball.', happy('He'), sad('He')),
      pair('Lily saw a big dog.', happy('She'), sad('She')),
      pair('The cat went to the park.', happy('It'), sad('It')),
      pair('Ben found a little box.', happy('He'), sad('He')),
    ];
    const heldOut = [
      pair('Sue made a cake with mom.', happy('She'), sad('She')),
      pair('The bird sang a song.', happy('It'), sad('It')),
    ];
    const adapter = own.adapter(model, attachLora(model, LORA, peftInit(2)));
    const before = tf.memory().numTensors;
    const data = {
      epochBatches: () => [pairBatch(train.slice(0, 2), 0), pairBatch(train.slice(2), 2)],
      validation: [pairBatch(heldOut, 100)],
    };
    const settings = { ...ONE_STEP, learningRate: 1e-2, epochs: 4, gradAccum: 1 };
    const trainer = new Trainer(model, adapter, data, settings, new Dpo(0.1));
    const first = (await trainer.evaluateWithMetrics())!;
    expect(first.loss).toBeCloseTo(Math.LN2, 6);
    expect(first.objectiveMetrics!['rewards/accuracies']).toBe(0);
    const summary = await runTraining(trainer, {});
    const last = (await trainer.evaluateWithMetrics())!;
    expect(summary.history[0].objectiveMetrics!['rewards/accuracies']).toBe(0);
    expect(summary.history.at(-1)!.objectiveMetrics!['rewards/accuracies']).toBe(1);
    expect(last.objectiveMetrics!['rewards/accuracies']).toBe(1);
    expect(last.objectiveMetrics!['rewards/margins']).toBeGreaterThan(0);
    expect(last.loss).toBeLessThan(first.loss);
    trainer.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a resumed DPO run takes its reference log-probs from the saved state and ends on the same losses', async () => {
    const { model } = own(loadFixture('stories260K'));
    const pairs = referencePairs();
    const data = {
      epochBatches: () => [pairBatch(pairs.slice(0, 2), 0), pairBatch(pairs.slice(2), 2)],
      validation: [],
    };
    const settings = { ...ONE_STEP, learningRate: 1e-2, epochs: 2, gradAccum: 1 };
    const run = async (steps: number, state?: Awaited<ReturnType<Trainer['exportState']>>) => {
      const adapter = attachLora(model, LORA, peftInit(4));
      const objective = new Dpo();
      const trainer = own.add(new Trainer(model, adapter, data, settings, objective));
      if (state) trainer.importState(structuredClone(state));
      if (state) {
        // Nothing left to compute before the first step: switching the adapter off would be a mistake now.
        Object.defineProperty(adapter, 'enabled', { get: () => true, set: () => expect.fail('recomputed') });
      }
      const losses: number[] = [];
      for (let i = 0; i < steps; i++) losses.push((await trainer.trainStep()).loss);
      const saved = await trainer.exportState();
      trainer.dispose();
      detachLora(model, adapter);
      return { losses, saved };
    };
    const whole = await run(4);
    const firstHalf = await run(2);
    expect(firstHalf.saved.objective!.pairIds).toEqual([0, 1, 2]);
    const secondHalf = await run(2, firstHalf.saved);
    expect([...firstHalf.losses, ...secondHalf.losses]).toEqual(whole.losses);
  });

  it('refuses single examples for DPO and a pair whose answer has no tokens for ORPO, naming the pair', async () => {
    const { model } = own(loadFixture('stories260K'));
    const [p] = referencePairs();
    const single = paddedBatch([{ prompt: p.prompt, answer: p.chosen }]);
    const adapter = own.adapter(model, attachLora(model, LORA, peftInit(1)));
    const plain: Batch[] = [single];
    const dpo = own.add(
      new Trainer(model, adapter, { epochBatches: () => plain, validation: [] }, ONE_STEP, new Dpo()),
    );
    await expect(dpo.trainStep()).rejects.toThrow(/needs batches of answer pairs.*Choose SFT/);
    const empty = [pairBatch([p, { ...p, rejected: [] }], 6)];
    const orpo = own.add(
      new Trainer(model, adapter, { epochBatches: () => empty, validation: [] }, ONE_STEP, new Orpo()),
    );
    const refused = orpo.trainStep();
    await expect(refused).rejects.toThrow(TrainingError);
    await expect(refused).rejects.toThrow(/^Pair 7: its rejected answer has no tokens left to score/);
    expect(orpo.step).toBe(0);
  });
});
