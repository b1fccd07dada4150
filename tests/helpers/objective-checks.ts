/**
 * The training objectives (SFT, DPO, ORPO) against reference/objectives_reference.py, written from the
 * papers' definitions: the loss, TRL's figures, each sequence's summed log-probability and every LoRA
 * gradient of one batch, registered once per backend so cpu, wasm and webgpu run the same assertions.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { BackendName } from '../../src/engine/backend';
import { attachLora } from '../../src/engine/lora';
import { batchLogProbs, SFT, type Objective } from '../../src/engine/objective';
import { Dpo, objectiveNamed } from '../../src/engine/preference';
import { tf } from '../../src/engine/tf';
import type { LoraTarget } from '../../src/formats/peft';
import { disposeAfterEach } from './cleanup';
import { detLora } from './det-lora';
import { pairBatch, paddedBatch, referenceCompletions, referencePairs } from './pairs';
import { loadFixture, maxAbsDiff, reference, relativeError, switchBackend } from './shared';

export interface ObjectiveRef {
  objective: 'sft' | 'dpo' | 'orpo';
  beta: number;
  rank: number;
  alpha: number;
  targets: LoraTarget[];
  loss: number;
  metrics: Record<string, number>;
  logps: { chosen?: number[]; rejected?: number[]; completion?: number[] };
  reference_logps: { chosen: number[]; rejected: number[] } | null;
  grads: Record<string, number[][]>;
}

const CASES: [string, 'sft' | 'dpo' | 'orpo'][] = [
  ['stories260K', 'sft'],
  ['stories260K', 'dpo'],
  ['stories260K', 'orpo'],
  ['tiny-random-qwen2', 'dpo'],
  ['tiny-random-qwen2', 'orpo'],
  ['tiny-random-qwen3', 'dpo'],
  ['tiny-random-qwen3', 'orpo'],
];

/** All activations kept; layers recomputed; recomputed with the lm_head rows in chunks of 5 (chunks then
 * cut through sequences, so a sequence's sum is put together from two chunks). */
const MODES = [
  { label: 'all activations kept', recompute: false, chunkRows: 0 },
  { label: 'recomputed layers', recompute: true, chunkRows: 0 },
  { label: 'recomputed layers, logits in 5-row chunks', recompute: true, chunkRows: 5 },
];

export function objectiveChecks(backend: BackendName, modes = MODES): void {
  describe(`objectives on ${backend}`, () => {
    const own = disposeAfterEach();
    beforeAll(async () => {
      await switchBackend(backend);
    });

    for (const [name, objectiveName] of CASES)
      for (const mode of modes)
        it(`${objectiveName} on ${name}: loss, figures, sequence log-probs and LoRA gradients equal the reference's (${mode.label})`, async () => {
          const ref = reference<ObjectiveRef>(name, `objective-${objectiveName}.json`);
          const { model } = own(loadFixture(name));
          if (mode.chunkRows) model.logitsChunkBytes = mode.chunkRows * model.args.vocabSize * 4;
          const adapter = own.adapter(
            model,
            attachLora(
              model,
              { rank: ref.rank, alpha: ref.alpha, dropout: 0, targets: ref.targets, useRslora: false },
              detLora,
            ),
          );
          const objective: Objective = objectiveNamed(objectiveName, ref.beta);
          const batch =
            objectiveName === 'sft'
              ? paddedBatch(referenceCompletions().map((c) => ({ prompt: c.prompt, answer: c.completion })))
              : pairBatch(referencePairs());
          await objective.prepare?.({ model, adapter, batches: [batch] });
          if (objective instanceof Dpo) {
            const stored = objective.exportState();
            expect(maxAbsDiff(stored.chosen, ref.reference_logps!.chosen)).toBeLessThan(2e-4);
            expect(maxAbsDiff(stored.rejected, ref.reference_logps!.rejected)).toBeLessThan(2e-4);
          }
          const params = adapter.variables();
          const before = tf.memory().numTensors;
          let metrics: tf.Tensor | undefined;
          const { value, grads } = tf.variableGrads(() => {
            const logProbs = batchLogProbs(model, batch, objective.grouping, { recompute: mode.recompute });
            const share = objective.lossSum(logProbs, batch);
            if (share.metrics) metrics = tf.keep(share.metrics);
            return tf.div(share.loss, objective.count(batch)) as tf.Scalar;
          }, params);
          expect(Math.abs((await value.data())[0] - ref.loss)).toBeLessThan(1e-4);
          const figures = metrics ? Array.from(await metrics.data()) : [];
          const pairs = objectiveName === 'sft' ? 1 : referencePairs().length;
          expect(objective.metricNames).toEqual(Object.keys(ref.metrics));
          objective.metricNames.forEach((metric, i) =>
            expect(Math.abs(figures[i] / pairs - ref.metrics[metric]), metric).toBeLessThan(1e-4),
          );
          expect(Object.keys(ref.grads)).toHaveLength(params.length);
          for (const [path, m] of adapter.modules)
            for (const which of ['A', 'B'] as const) {
              const expected = ref.grads[`base_model.model.${path}.lora_${which}.weight`].flat();
              const actual = await grads[(which === 'A' ? m.A : m.B).name].data();
              expect(relativeError(actual, expected), `${path} lora_${which}`).toBeLessThan(1e-3);
            }
          tf.dispose([value, ...Object.values(grads), ...(metrics ? [metrics] : [])]);
          expect(tf.memory().numTensors).toBe(before);

          // The primitive alone: each sequence's summed log-probability, no gradient.
          const perSequence = tf.tidy(() => batchLogProbs(model, batch, 'sequence'));
          const sums = Array.from(await perSequence.data());
          perSequence.dispose();
          const expected =
            objectiveName === 'sft' ? ref.logps.completion! : [...ref.logps.chosen!, ...ref.logps.rejected!];
          expect(maxAbsDiff(sums, expected)).toBeLessThan(2e-4);
          expect(tf.memory().numTensors).toBe(before);
        });

    it('SFT through the objective is the mean token cross-entropy of the batch, as one sum', async () => {
      const ref = reference<ObjectiveRef>('stories260K', 'objective-sft.json');
      const { model } = own(loadFixture('stories260K'));
      own.adapter(
        model,
        attachLora(
          model,
          { rank: ref.rank, alpha: ref.alpha, dropout: 0, targets: ref.targets, useRslora: false },
          detLora,
        ),
      );
      const batch = paddedBatch(
        referenceCompletions().map((c) => ({ prompt: c.prompt, answer: c.completion })),
      );
      const targetTokens = referenceCompletions().reduce((n, c) => n + c.completion.length, 0);
      expect(SFT.count(batch)).toBe(targetTokens);
      const total = tf.tidy(() => batchLogProbs(model, batch, 'batch'));
      expect(total.shape).toEqual([1]);
      expect(Math.abs(-(await total.data())[0] / targetTokens - ref.loss)).toBeLessThan(1e-4);
      total.dispose();
    });
  });
}
