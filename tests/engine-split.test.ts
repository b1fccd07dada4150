/**
 * A vocabulary matrix over the GPU's buffer limit (Qwen2.5-0.5B's embedding is 544 MB in f32) is stored
 * in pieces. Forced over a small limit here, the tiny fixtures split into three uneven pieces and must
 * still score like PyTorch, generate and train exactly like the unsplit model, tied or untied, and leave
 * no tensor behind; any other tensor over the limit is refused by name.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { readModelFolder } from '../src/node/model-folder';
import { generate } from '../src/engine/generate';
import { loadModel, type ModelFiles } from '../src/engine/load';
import { attachLora, detachLora, peftInit } from '../src/engine/lora';
import { disposeModel, hiddenStates, lmHead, type LlamaModel } from '../src/engine/model';
import { readSafetensors, writeSafetensors } from '../src/engine/safetensors';
import { scoreTokens } from '../src/engine/score';
import { tf } from '../src/engine/tf';
import { batchLossSum, Trainer } from '../src/engine/train';
import type { LoraTarget } from '../src/formats/peft';
import { bestFriends, weightsOf } from './helpers/best-friends';
import { maxAbsDiff, modelDir, reference, relativeError, switchBackend } from './helpers/shared';
import { disposeAfterEach } from './helpers/cleanup';

const own = disposeAfterEach();

interface ScoreRef {
  ids: number[];
  logprobs: number[];
}

// Every fixture has hidden 64 and vocabulary 512: a vocabulary row is 256 bytes. 200 rows and a bit
// cut the vocabulary into [200, 200, 112], and every other tensor (at most 172×64 floats, 43 KB) fits.
const LIMIT = 200 * 64 * 4 + 100;
const PIECES = [200, 200, 112];

const files = (name: string) => readModelFolder(modelDir(name));

/**
 * The fixture with tie_word_embeddings false and its own lm_head.weight (`head` maps vocabulary row v to an
 * embedding row).
 */
function untied(name: string, head: (v: number) => number): ModelFiles {
  const base = files(name);
  const { tensors } = readSafetensors(base.weights as Uint8Array);
  const embed = tensors.get('model.embed_tokens.weight')!;
  const [vocab, hidden] = embed.shape;
  const lmHeadWeight = new Float32Array(vocab * hidden);
  for (let v = 0; v < vocab; v++)
    lmHeadWeight.set(embed.data.subarray(head(v) * hidden, (head(v) + 1) * hidden), v * hidden);
  return {
    ...base,
    name: `${name}-untied`,
    config: JSON.stringify({ ...JSON.parse(base.config), tie_word_embeddings: false }),
    weights: writeSafetensors([
      ...tensors,
      ['lm_head.weight', { shape: [vocab, hidden], data: lmHeadWeight }],
    ]),
  };
}

async function logits(model: LlamaModel, ids: number[]): Promise<Float32Array> {
  const out = tf.tidy(() => lmHead(model, hiddenStates(model, Int32Array.from(ids), 1)));
  const data = (await out.data()) as Float32Array;
  out.dispose();
  return data;
}

describe('a vocabulary split over the buffer limit', () => {
  beforeAll(() => switchBackend('wasm'));

  for (const [name, file] of [
    ['stories260K', 'score-lily.json'],
    ['tiny-random-qwen2', 'score.json'],
  ]) {
    it(`${name} (tied) in three uneven pieces scores like the PyTorch reference and frees every tensor`, async () => {
      const ref = reference<ScoreRef>(name, file);
      // The scored text reads from every piece, so each gather and each product is exercised.
      expect(
        [0, 200, 400].every((start, i) => ref.ids.some((id) => id >= start && id < start + PIECES[i])),
      ).toBe(true);
      const before = tf.memory().numTensors;
      const { model } = own(loadModel(files(name), { maxTensorBytes: LIMIT }));
      expect(model.embed_tokens).toBeUndefined();
      expect(model.lm_head.map((p) => [p.rows, p.cols])).toEqual(PIECES.map((rows) => [rows, 64]));
      expect(model.vocabStarts).toEqual([0, 200, 400]);
      const loaded = tf.memory().numTensors;
      const result = await scoreTokens(model, ref.ids);
      expect(tf.memory().numTensors).toBe(loaded);
      // The tolerance of tests/engine.test.ts.
      expect(maxAbsDiff(result.logprobs, ref.logprobs)).toBeLessThan(1e-3);
      disposeModel(model);
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it('an untied model splits both matrices and uses each for its own side', async () => {
    // lm_head rows permuted (7 is coprime with 512), so mixing up the embedding and the head shows.
    const permuted = untied('stories260K', (v) => (v * 7 + 3) % 512);
    const before = tf.memory().numTensors;
    const whole = own(loadModel(permuted)).model;
    const split = own(loadModel(permuted, { maxTensorBytes: LIMIT })).model;
    expect(split.embed_tokens!.map((p) => [p.rows, p.cols])).toEqual(PIECES.map((rows) => [rows, 64]));
    expect(split.lm_head.map((p) => [p.rows, p.cols])).toEqual(PIECES.map((rows) => [rows, 64]));
    const ids = reference<ScoreRef>('stories260K', 'score-lily.json').ids;
    const [a, b] = [await logits(whole, ids), await logits(split, ids)];
    expect(maxAbsDiff(b, a)).toBeLessThan(1e-5);
    disposeModel(whole);
    disposeModel(split);
    expect(tf.memory().numTensors).toBe(before);

    // With lm_head equal to the embedding, the untied split model is the tied one: PyTorch's scores apply.
    const ref = reference<ScoreRef>('tiny-random-qwen2', 'score.json');
    const same = own(
      loadModel(
        untied('tiny-random-qwen2', (v) => v),
        { maxTensorBytes: LIMIT },
      ),
    ).model;
    expect(same.embed_tokens).toHaveLength(3);
    expect(maxAbsDiff((await scoreTokens(same, ref.ids)).logprobs, ref.logprobs)).toBeLessThan(1e-3);
    disposeModel(same);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('greedy generation equals the unsplit model and the reference', async () => {
    const ref = reference<{ ids: number[]; new: number[] }>('stories260K', 'greedy-once-upon-a-time.json');
    const prompt = ref.ids.slice(0, ref.ids.length - ref.new.length);
    const whole = own(loadModel(files('stories260K'))).model;
    const split = own(loadModel(files('stories260K'), { maxTensorBytes: LIMIT })).model;
    const before = tf.memory().numTensors;
    const options = { maxNewTokens: 60, eosTokenIds: [] };
    const [a, b] = [await generate(whole, prompt, options), await generate(split, prompt, options)];
    expect(tf.memory().numTensors).toBe(before);
    expect(b.tokens).toEqual(a.tokens);
    expect(b.tokens).toEqual(ref.new.slice(0, 60));
    disposeModel(whole);
    disposeModel(split);
  });

  it('one training step on completion rows gives the unsplit loss, gradients and weights', async () => {
    const lora = {
      rank: 4,
      alpha: 8,
      dropout: 0,
      targets: ['q_proj', 'v_proj', 'down_proj'] as LoraTarget[],
      useRslora: false,
    };
    const before = tf.memory().numTensors;
    const run = async (options: { maxTensorBytes?: number }) => {
      const { model, tokenizer } = own(loadModel(files('stories260K'), options));
      const set = bestFriends(tokenizer);
      const adapter = own.adapter(model, attachLora(model, lora, peftInit(5)));
      // Prompts are masked out, so batchLossSum takes the selected-rows path through the split lm_head.
      const batch = set.data.epochBatches(0)[0];
      expect(Array.from(batch.targetMask).some((w) => w === 0)).toBe(true);
      const { value, grads } = tf.variableGrads(() => batchLossSum(model, batch), adapter.variables());
      // All gradients as one vector: with PEFT's init B is 0, so every A gradient is exactly 0.
      const gradients = (
        await Promise.all(adapter.variables().map(async (v) => Array.from(await grads[v.name].data())))
      ).flat();
      const loss = (await value.data())[0];
      tf.dispose([value, ...Object.values(grads)]);
      const trainer = own.add(
        new Trainer(model, adapter, set.data, {
          learningRate: 1e-2,
          epochs: 1,
          gradAccum: 1,
          warmupSteps: 0,
          maxGradNorm: 1,
          weightDecay: 0,
          seed: 1,
        }),
      );
      const metrics = await trainer.trainStep();
      const weights = await weightsOf(adapter);
      trainer.dispose();
      detachLora(model, adapter);
      disposeModel(model);
      return { loss, gradients, metrics, weights };
    };
    const whole = await run({});
    const split = await run({ maxTensorBytes: LIMIT });
    expect(tf.memory().numTensors).toBe(before);
    expect(Math.abs(split.loss - whole.loss)).toBeLessThan(1e-4);
    expect(relativeError(split.gradients, whole.gradients)).toBeLessThan(1e-4);
    expect(split.metrics.loss).toBeCloseTo(whole.metrics.loss, 5);
    expect(split.metrics.gradNorm).toBeCloseTo(whole.metrics.gradNorm, 5);
    expect(maxAbsDiff(split.weights, whole.weights)).toBeLessThan(1e-6);
  });

  it('refuses a tensor it cannot split, naming it, its size and the limit, and keeps no tensor', () => {
    const before = tf.memory().numTensors;
    // 40 000 bytes: the vocabulary splits (156 rows a piece) and the attention fits, but gate_proj (172×64
    // floats) does not.
    expect(() => loadModel(files('stories260K'), { maxTensorBytes: 40_000 })).toThrow(
      /Tensor "model\.layers\.0\.mlp\.gate_proj\.weight" needs 43 KB, more than the 39 KB/,
    );
    // Under one vocabulary row (64 floats) even the finest split would be over the limit.
    expect(() => loadModel(files('stories260K'), { maxTensorBytes: 200 })).toThrow(
      /One row of "model\.embed_tokens\.weight" needs 256 bytes, more than the 200 bytes/,
    );
    expect(tf.memory().numTensors).toBe(before);
  });
});
