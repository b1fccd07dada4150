/**
 * Memory estimates against what tfjs actually allocates (tf.profile's peak while one training step
 * runs), and the catalog's parameter counts against the numbers the model authors publish.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { parseModelConfig } from '../src/engine/config';
import {
  defaultRecompute,
  estimateTrainingMemory,
  KEEP_ACTIVATIONS_BUDGET,
  memoryWarning,
  WASM_MEMORY_LIMIT,
} from '../src/engine/memory';
import type { Batch } from '../src/engine/batch';
import type { LoraTarget } from '../src/formats/peft';
import type { LlamaModel } from '../src/engine/model';
import { buildModel } from '../src/engine/weights';
import { attachLora, detachLora, peftInit } from '../src/engine/lora';
import { disposeModel } from '../src/engine/model';
import { tf } from '../src/engine/tf';
import { Trainer } from '../src/engine/train';
import { CATALOG } from '../src/hub/catalog';
import { PackedFrozenMatrix } from '../src/engine/frozen';
import { chooseWeights } from '../src/engine/weights-choice';
import { bestFriends } from './helpers/best-friends';
import { loadFixture, switchBackend } from './helpers/shared';
import { disposeAfterEach } from './helpers/cleanup';

const own = disposeAfterEach();

/** tf.profile's peak bytes over one training step with a fresh r8 adapter (the adapter is removed after). */
async function stepPeak(
  model: LlamaModel,
  batch: Batch,
  targets: LoraTarget[],
  recompute: boolean,
): Promise<number> {
  const adapter = own.adapter(
    model,
    attachLora(model, { rank: 8, alpha: 16, dropout: 0, targets, useRslora: false }, peftInit(0)),
  );
  const trainer = own.add(
    new Trainer(
      model,
      adapter,
      { epochBatches: () => [batch], validation: [] },
      {
        learningRate: 1e-3,
        epochs: 1,
        gradAccum: 1,
        warmupSteps: 0,
        maxGradNorm: 1,
        weightDecay: 0,
        seed: 0,
        recompute,
      },
    ),
  );
  const profile = await tf.profile(async () => void (await trainer.trainStep()));
  trainer.dispose();
  detachLora(model, adapter);
  return profile.peakBytes;
}

describe('training memory estimate', () => {
  beforeAll(() => switchBackend('wasm'));

  for (const recompute of [true, false]) {
    for (const [model, targets] of [
      ['stories260K', ['q_proj', 'v_proj']],
      ['tiny-random-qwen2', ['q_proj', 'v_proj']],
      ['tiny-random-qwen3', ['q_proj', 'k_proj', 'gate_proj', 'down_proj']],
      ['tiny-random-gemma3', ['q_proj', 'v_proj', 'gate_proj', 'down_proj']],
      ['stories260K', ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']],
    ] as const) {
      it(`${model}, ${targets.length} targets, recompute ${recompute ? 'on' : 'off'}: weights are what loading allocates; the total covers one step's peak without overstating it 3×`, async () => {
        const before = tf.memory().numBytes;
        const { model: m, tokenizer, args } = own(loadFixture(model));
        const weightBytes = tf.memory().numBytes - before;
        const set = bestFriends(tokenizer, { batchSize: 8 });
        const batch = set.data.epochBatches(0)[0];
        const settings = {
          rank: 8,
          targets: [...targets],
          batchSize: batch.batchSize,
          maxLength: batch.seqLength,
          recompute,
        };
        const estimate = estimateTrainingMemory(args, settings);
        expect(estimate.weights).toBe(weightBytes);
        const peak = (await stepPeak(m, batch, [...targets], recompute)) - before;
        disposeModel(m);
        expect(estimate.total).toBeGreaterThanOrEqual(peak);
        expect(estimate.total).toBeLessThan(3 * peak);
      });
    }
  }

  for (const weights of ['bf16', 'q8_0', 'nf4'] as const)
    it(`a SmolLM2-shaped model (1 of its layers) with ${weights} weights: its frozen bytes exactly, and within 1x–3x of one step's peak with them`, async () => {
      const args = parseModelConfig({
        model_type: 'llama',
        hidden_size: 576,
        intermediate_size: 1536,
        num_hidden_layers: 1,
        num_attention_heads: 9,
        num_key_value_heads: 3,
        vocab_size: 49152,
        tie_word_embeddings: true,
      });
      const before = tf.memory().numBytes;
      const m = buildModel(
        args,
        (name, shape) => ({
          shape,
          data: new Float32Array(shape.reduce((a, b) => a * b, 1)).map((_, i) =>
            name.endsWith('norm.weight') ? 1 : Math.sin(i) * 0.02,
          ),
        }),
        { weights },
      );
      // Packed matrices live outside tfjs: their bytes, and the norms' tensors.
      const packed = m.owned.reduce((n, o) => n + (o instanceof PackedFrozenMatrix ? o.bytes : 0), 0);
      const tensors = tf.memory().numBytes - before;
      const [batchSize, length] = [2, 64];
      const settings = {
        rank: 8,
        targets: ['q_proj', 'v_proj'],
        batchSize,
        maxLength: length,
        recompute: true,
        weights,
      };
      const estimate = estimateTrainingMemory(args, settings);
      expect(estimate.weights).toBe(packed + tensors);
      expect(estimate.hostWeights).toBe(packed);
      const ids = new Int32Array(batchSize * length).map((_, i) => 3 + ((i * 7919) % 40000));
      const batch = {
        ids,
        targetMask: new Float32Array(ids.length).fill(1),
        attentionMask: new Float32Array(ids.length).fill(1),
        batchSize,
        seqLength: length,
      };
      const peak = (await stepPeak(m, batch, ['q_proj', 'v_proj'], true)) - before + packed;
      disposeModel(m);
      expect(estimate.total).toBeGreaterThanOrEqual(peak);
      expect(estimate.total).toBeLessThan(3 * peak);
    });

  it("a SmolLM2-shaped model (2 of its layers, its real widths and vocabulary): within 1x–3x of one step's peak", async () => {
    const args = parseModelConfig({
      model_type: 'llama',
      hidden_size: 576,
      intermediate_size: 1536,
      num_hidden_layers: 2,
      num_attention_heads: 9,
      num_key_value_heads: 3,
      vocab_size: 49152,
      tie_word_embeddings: true,
    });
    const before = tf.memory().numBytes;
    const m = buildModel(args, (name, shape) => ({
      shape,
      data: new Float32Array(shape.reduce((a, b) => a * b, 1)).map((_, i) =>
        name.endsWith('norm.weight') ? 1 : Math.sin(i) * 0.02,
      ),
    }));
    for (const [batchSize, length, recompute] of [
      [2, 64, false],
      [4, 128, false],
      [4, 64, true],
      [4, 256, true],
      [1, 512, true],
    ] as const) {
      const ids = new Int32Array(batchSize * length).map((_, i) => 3 + ((i * 7919) % 40000));
      const batch = {
        ids,
        targetMask: new Float32Array(ids.length).fill(1),
        attentionMask: new Float32Array(ids.length).fill(1),
        batchSize,
        seqLength: length,
      };
      const peak = (await stepPeak(m, batch, ['q_proj', 'v_proj'], recompute)) - before;
      const estimate = estimateTrainingMemory(args, {
        rank: 8,
        targets: ['q_proj', 'v_proj'],
        batchSize,
        maxLength: length,
        recompute,
      });
      const label = `batch ${batchSize} × ${length}, recompute ${recompute ? 'on' : 'off'}`;
      expect(estimate.total, label).toBeGreaterThanOrEqual(peak);
      expect(estimate.total, label).toBeLessThan(3 * peak);
    }
    disposeModel(m);
  }, 300_000);

  it('recomputing is the default exactly when keeping every activation would not fit the budget', () => {
    const smol = CATALOG.find((c) => c.id === 'HuggingFaceTB/SmolLM2-135M-Instruct')!.args;
    const { args: stories } = own(loadFixture('stories260K'));
    const settings = { rank: 8, targets: ['q_proj', 'v_proj'], batchSize: 4, maxLength: 256 };
    expect(defaultRecompute(smol, settings)).toBe(true);
    expect(defaultRecompute(stories, settings)).toBe(false);
    for (const args of [smol, stories]) {
      const kept = estimateTrainingMemory(args, { ...settings, recompute: false });
      expect(defaultRecompute(args, settings)).toBe(kept.total > KEEP_ACTIVATIONS_BUDGET);
      expect(estimateTrainingMemory(args, settings).recompute).toBe(defaultRecompute(args, settings));
    }
  });

  it("at the page's defaults (batch 4, 256 tokens, r8 on q_proj and v_proj) every catalog model fits a browser's wasm heap, with the base weights Automatic picks", () => {
    const settings = { rank: 8, targets: ['q_proj', 'v_proj'], batchSize: 4, maxLength: 256 };
    for (const model of CATALOG) {
      const weights = chooseWeights('auto', model.args, settings, 'wasm').format;
      const estimate = estimateTrainingMemory(model.args, { ...settings, weights });
      expect(estimate.recompute, model.id).toBe(true);
      expect(memoryWarning(estimate, WASM_MEMORY_LIMIT, settings), model.id).toBeNull();
    }
  });

  it('warns in plain words, naming what to lower, only when the estimate is over the limit', () => {
    const { args } = CATALOG.find((c) => c.id === 'Qwen/Qwen3-0.6B')!;
    const settings = { rank: 8, targets: ['q_proj', 'v_proj'], batchSize: 8, maxLength: 1024 };
    const estimate = estimateTrainingMemory(args, settings);
    expect(memoryWarning(estimate, 4 * 2 ** 30, settings)).toMatch(
      /Training needs about \d+\.\d GB, more than the 4\.0 GB a browser gives WebAssembly\. Lower the max length \(now 1024 tokens\) or the batch size \(now 8\)\./,
    );
    // The wasm heap holds the tensors and XNNPACK's packed weights (the lm_head only, for a compact model
    // like this one).
    expect(estimate.wasmPacked).toBe(args.vocabSize * args.hiddenSize * 4);
    expect(memoryWarning(estimate, estimate.total + estimate.wasmPacked - 1, settings)).not.toBeNull();
    expect(memoryWarning(estimate, estimate.total + estimate.wasmPacked, settings)).toBeNull();
  });
});

describe('catalog', () => {
  // Parameter counts the model cards publish (SmolLM2: 135M/360M/1.7B; Qwen2.5: 0.49B/1.54B; Qwen3:
  // 0.6B/1.7B, 1.4B of them outside the embedding; Gemma 3: 270M, of them 170M in the embedding and 100M
  // in the transformer blocks, and 1B).
  const published: Record<string, [number, number]> = {
    'HuggingFaceTB/SmolLM2-135M-Instruct': [134e6, 136e6],
    'HuggingFaceTB/SmolLM2-360M-Instruct': [360e6, 363e6],
    'Qwen/Qwen2.5-0.5B-Instruct': [490e6, 496e6],
    'Qwen/Qwen3-0.6B': [590e6, 600e6],
    'Qwen/Qwen2.5-1.5B-Instruct': [1535e6, 1545e6],
    'HuggingFaceTB/SmolLM2-1.7B-Instruct': [1700e6, 1715e6],
    'Qwen/Qwen3-1.7B': [1700e6, 1725e6],
    'google/gemma-3-270m-it': [265e6, 272e6],
    'google/gemma-3-1b-it': [995e6, 1005e6],
  };
  for (const model of CATALOG) {
    it(`${model.id}: ${(model.parameters / 1e6).toFixed(1)}M parameters, as published`, () => {
      const [low, high] = published[model.id];
      expect(model.parameters).toBeGreaterThanOrEqual(low);
      expect(model.parameters).toBeLessThanOrEqual(high);
    });
  }
});
