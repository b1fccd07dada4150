// Small engine pieces checked against values worked out by hand from their published definitions.
import { describe, expect, it } from 'vitest';
import { parameterCount, parseModelConfig } from '../src/engine/config';
import { AdamW } from '../src/engine/optimizer';
import { createRng, permutation } from '../src/engine/random';
import { sampleToken } from '../src/engine/sample';
import { learningRateAt } from '../src/engine/schedule';
import { tf } from '../src/engine/tf';
import { modelConfig } from './helpers/shared';

describe('model config', () => {
  it('reads stories260K and derives what config.json leaves out', () => {
    const args = parseModelConfig(modelConfig('stories260K'));
    expect(args).toMatchObject({
      modelType: 'llama',
      hiddenSize: 64,
      numLayers: 5,
      numHeads: 8,
      numKvHeads: 4,
      headDim: 8,
      vocabSize: 512,
      tieWordEmbeddings: true,
      qkvBias: false,
      qkNorm: false,
      eosTokenIds: [2],
    });
    // The shared README states 260,032 parameters.
    expect(parameterCount(args)).toBe(260_032);
    const derived = parseModelConfig({
      model_type: 'mistral',
      hidden_size: 32,
      intermediate_size: 64,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      vocab_size: 100,
    });
    expect(derived).toMatchObject({ numKvHeads: 4, headDim: 8, ropeTheta: 10000, tieWordEmbeddings: false });
  });

  it('sets the Qwen flags: q/k/v bias for qwen2, q/k norm for qwen3', () => {
    expect(parseModelConfig(modelConfig('tiny-random-qwen2'))).toMatchObject({
      qkvBias: true,
      oBias: false,
      qkNorm: false,
    });
    expect(parseModelConfig(modelConfig('tiny-random-qwen3'))).toMatchObject({
      qkvBias: false,
      qkNorm: true,
      headDim: 16,
    });
  });

  it('names an unsupported model type and lists the supported ones', () => {
    expect(() => parseModelConfig({ model_type: 'gpt2', hidden_size: 8 })).toThrow(
      /"gpt2" is not supported.*llama, mistral, qwen2, qwen3/,
    );
    expect(() =>
      parseModelConfig({
        model_type: 'llama',
        hidden_size: 64,
        num_attention_heads: 6,
        num_key_value_heads: 4,
        intermediate_size: 8,
        num_hidden_layers: 1,
        vocab_size: 8,
      }),
    ).toThrow(/num_key_value_heads is 4; it must divide num_attention_heads \(6\)/);
    expect(() =>
      parseModelConfig({
        model_type: 'llama',
        hidden_size: 64,
        num_attention_heads: 8,
        intermediate_size: 8,
        num_hidden_layers: 1,
        vocab_size: 8,
        rope_scaling: { rope_type: 'llama3' },
      }),
    ).toThrow(/llama3/);
    expect(() => parseModelConfig([])).toThrow(/not a JSON object/);
  });
});

describe('learning-rate schedule', () => {
  it('warms up linearly, then decays along a cosine to a tenth of the peak', () => {
    expect(learningRateAt(0, 100, 1e-3, 10)).toBeCloseTo(1e-4, 12);
    expect(learningRateAt(9, 100, 1e-3, 10)).toBeCloseTo(1e-3, 12);
    expect(learningRateAt(10, 100, 1e-3, 10)).toBeCloseTo(1e-3, 12);
    // Halfway through the decay cos(π/2) = 0: 0.1 + 0.9·0.5 = 0.55 of the peak.
    expect(learningRateAt(55, 100, 1e-3, 10)).toBeCloseTo(0.55e-3, 12);
    expect(learningRateAt(100, 100, 1e-3, 10)).toBeCloseTo(1e-4, 12);
  });
});

describe('AdamW', () => {
  it('takes the steps torch.optim.AdamW takes', async () => {
    const p = tf.variable(tf.tensor1d([1, -2]));
    const adam = new AdamW([p], { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01 });
    // Step 1 by hand: p ← p(1 − lr·λ); m̂ = g, v̂ = g², so the update is lr·g/|g| = ±lr.
    adam.apply([tf.tensor1d([0.5, 0.25])], 0.1);
    expect(Array.from(await p.data())).toEqual([
      expect.closeTo(1 * 0.999 - 0.1, 6),
      expect.closeTo(-2 * 0.999 - 0.1, 6),
    ]);
    // Step 2 with g = (−0.5, 0.25): m = (0.04, 0.05), v = (0.0005, 0.0001249…), bias-corrected.
    adam.apply([tf.tensor1d([-0.5, 0.25])], 0.1);
    const m = [0.9 * 0.05 + 0.1 * -0.5, 0.9 * 0.025 + 0.1 * 0.25];
    const v = [0.999 * 0.00025 + 0.001 * 0.25, 0.999 * 0.0000625 + 0.001 * 0.0625];
    const expected = [0.899, -2.098].map(
      (x, i) => x * 0.999 - (0.1 * (m[i] / (1 - 0.81))) / (Math.sqrt(v[i] / (1 - 0.998001)) + 1e-8),
    );
    const actual = await p.data();
    expected.forEach((e, i) => expect(actual[i]).toBeCloseTo(e, 5));
    const state = await adam.exportState();
    expect(state.step).toBe(2);
    adam.dispose();
    p.dispose();
  });
});

describe('sampling', () => {
  const logits = Float32Array.from([1, 3, 2, 0]);

  it('is greedy at temperature 0 and never leaves the top-k', () => {
    expect(sampleToken(logits, { temperature: 0, topK: 0, topP: 1 }, createRng(1))).toBe(1);
    const rng = createRng(3);
    const seen = new Set(
      Array.from({ length: 200 }, () => sampleToken(logits, { temperature: 1, topK: 2, topP: 1 }, rng)),
    );
    expect([...seen].sort()).toEqual([1, 2]);
  });

  it('keeps the smallest set of tokens whose probability reaches top-p', () => {
    // softmax([1,3,2,0]) = [0.0871, 0.6439, 0.2369, 0.0321]: p = 0.7 needs tokens 1 and 2.
    const rng = createRng(5);
    const seen = new Set(
      Array.from({ length: 300 }, () => sampleToken(logits, { temperature: 1, topK: 0, topP: 0.7 }, rng)),
    );
    expect([...seen].sort()).toEqual([1, 2]);
  });

  it('draws in proportion to the softmax at temperature 1', () => {
    const rng = createRng(11);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 20000; i++) counts[sampleToken(logits, { temperature: 1, topK: 0, topP: 1 }, rng)]++;
    [0.0871, 0.6439, 0.2369, 0.0321].forEach((p, i) => expect(counts[i] / 20000).toBeCloseTo(p, 1));
  });
});

describe('random', () => {
  it('continues the same stream from a saved state', () => {
    const rng = createRng(42);
    rng.next();
    const copy = createRng(rng.state());
    expect(Array.from({ length: 5 }, () => copy.next())).toEqual(Array.from({ length: 5 }, () => rng.next()));
    expect(permutation(10, createRng(1)).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});
