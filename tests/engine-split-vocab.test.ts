/**
 * Models whose vocabulary matrices exceed one GPU buffer (Qwen2.5-0.5B's embedding is 544 MB in f32):
 * forced over a small simulated limit, stories260K and the Qwen fixtures are stored in uneven pieces and
 * still score, generate and give LoRA gradients like the PyTorch reference; other tensors over the limit
 * are refused with a message naming them.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { readModelFolder } from '../src/node/model-folder';
import { generate } from '../src/engine/generate';
import { loadModel } from '../src/engine/load';
import { attachLora, detachLora } from '../src/engine/lora';
import type { LoraTarget } from '../src/formats/peft';
import { disposeModel, logitRowsPerChunk } from '../src/engine/model';
import { scoreTokens } from '../src/engine/score';
import { tf } from '../src/engine/tf';
import { batchLossSum } from '../src/engine/train';
import { detLora } from './helpers/det-lora';
import { maxAbsDiff, modelConfig, modelDir, reference, relativeError, switchBackend } from './helpers/shared';
import { disposeAfterEach } from './helpers/cleanup';

const own = disposeAfterEach();

/**
 * A limit that cuts the vocabulary into pieces of `rows` rows (200: three uneven pieces for a 512-token
 * vocabulary).
 */
function splitLimit(model: string, rows: number): number {
  const { hidden_size: hidden } = modelConfig(model) as { hidden_size: number };
  return rows * hidden * 4;
}
const loadSplit = (model: string, rows = 200) =>
  loadModel(readModelFolder(modelDir(model)), { maxTensorBytes: splitLimit(model, rows) });

describe('vocabulary split over the buffer limit', () => {
  beforeAll(() => switchBackend('wasm'));

  it('stories260K in three pieces scores and decodes greedily like the PyTorch reference', async () => {
    const loaded = own(loadSplit('stories260K'));
    expect(loaded.model.lm_head.map((p) => p.rows)).toEqual([200, 200, 112]);
    expect(loaded.model.vocabStarts).toEqual([0, 200, 400]);
    const before = tf.memory().numTensors;
    const score = reference<{ ids: number[]; logprobs: number[] }>('stories260K', 'score-lily.json');
    expect(logitRowsPerChunk(loaded.model)).toBeLessThan(score.ids.length - 1); // scored in row chunks
    expect(maxAbsDiff((await scoreTokens(loaded.model, score.ids)).logprobs, score.logprobs)).toBeLessThan(
      1e-4,
    );
    const greedy = reference<{ ids: number[]; new: number[] }>('stories260K', 'greedy-once-upon-a-time.json');
    const prompt = greedy.ids.slice(0, greedy.ids.length - greedy.new.length);
    const out = await generate(loaded.model, prompt, { maxNewTokens: 40, eosTokenIds: [] });
    expect(out.tokens).toEqual(greedy.new.slice(0, 40));
    expect(tf.memory().numTensors).toBe(before);
    disposeModel(loaded.model);
  });

  // stories260K's reference sequence is long enough that its logits also need several row chunks; the Qwen
  // ones are not.
  for (const [model, file, chunked] of [
    ['stories260K', 'lora-grad-all-r8.json', true],
    ['tiny-random-qwen2', 'lora-grad-all-r4.json', false],
    ['tiny-random-qwen3', 'lora-grad-all-r4.json', false],
  ] as const) {
    it(`${model} split: the loss and LoRA gradients match the reference (${file})`, async () => {
      const ref = reference<{
        ids: number[];
        rank: number;
        alpha: number;
        targets: LoraTarget[];
        loss: number;
        grads: Record<string, number[][]>;
      }>(model, file);
      const { model: m } = own(loadSplit(model));
      expect(m.lm_head.length).toBeGreaterThan(1);
      // Where the logits do not fit in one tensor under the limit either, the loss is summed over row chunks.
      expect(logitRowsPerChunk(m) < ref.ids.length - 1).toBe(chunked);
      const adapter = own.adapter(
        m,
        attachLora(
          m,
          { rank: ref.rank, alpha: ref.alpha, dropout: 0, targets: ref.targets, useRslora: false },
          detLora,
        ),
      );
      const ids = Int32Array.from(ref.ids);
      const batch = {
        ids,
        targetMask: new Float32Array(ids.length).fill(1),
        attentionMask: new Float32Array(ids.length).fill(1),
        batchSize: 1,
        seqLength: ids.length,
      };
      const { value, grads } = tf.variableGrads(
        () => tf.div(batchLossSum(m, batch), ids.length - 1) as tf.Scalar,
        adapter.variables(),
      );
      expect(Math.abs((await value.data())[0] - ref.loss)).toBeLessThan(1e-3 * Math.max(1, ref.loss));
      for (const [path, lora] of adapter.modules) {
        for (const which of ['A', 'B'] as const) {
          const actual = await grads[(which === 'A' ? lora.A : lora.B).name].data();
          expect(
            relativeError(actual, ref.grads[`base_model.model.${path}.lora_${which}.weight`].flat()),
            `${path} lora_${which}`,
          ).toBeLessThan(1e-3);
        }
      }
      tf.dispose([value, ...Object.values(grads)]);
      detachLora(m, adapter);
      disposeModel(m);
    });
  }

  it('refuses any other tensor over the limit, naming it, its size and the limit', () => {
    const files = readModelFolder(modelDir('stories260K'));
    // A q_proj of stories260K is 64×64 floats = 16 KB.
    expect(() => loadModel(files, { maxTensorBytes: 10_000 })).toThrow(
      /Tensor "model\.layers\.0\.self_attn\.q_proj\.weight" needs 16 KB, more than the 10 KB this device's GPU takes in one buffer/,
    );
  });

  it('leaves no tensors behind when a load is refused', () => {
    const before = tf.memory().numTensors;
    expect(() => loadModel(readModelFolder(modelDir('stories260K')), { maxTensorBytes: 10_000 })).toThrow();
    expect(tf.memory().numTensors).toBe(before);
  });
});
