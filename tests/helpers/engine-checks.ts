/**
 * Engine checks against the independent PyTorch reference, registered once per backend so cpu, wasm
 * and webgpu run exactly the same assertions.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { BackendName } from '../../src/engine/backend';
import { KVCache } from '../../src/engine/kv-cache';
import { attachLora, detachLora } from '../../src/engine/lora';
import { disposeModel, hiddenStates, lmHead } from '../../src/engine/model';
import { generate } from '../../src/engine/generate';
import { scoreTokens } from '../../src/engine/score';
import { tf } from '../../src/engine/tf';
import { batchLossSum } from '../../src/engine/train';
import type { BuildOptions } from '../../src/engine/weights';
import type { LoraTarget } from '../../src/formats/peft';
import { disposeAfterEach } from './cleanup';
import { detLora } from './det-lora';
import { loadFixture, maxAbsDiff, reference, relativeError, switchBackend } from './shared';

/**
 * Σ weights[i] · −log softmax(logits[i])[targets[i]] over rows i of logits [N, vocab], written with plain
 * tfjs ops and their own gradients (log-softmax times a weighted one-hot built from host arrays), so the
 * engine's hand-written loss and gradient are checked against a computation that shares neither.
 */
function plainWeightedCrossEntropy(
  logits: tf.Tensor2D,
  targets: Int32Array,
  weights: Float32Array,
): tf.Scalar {
  const [rows, vocab] = logits.shape;
  const weightedOneHot = new Float32Array(rows * vocab);
  targets.forEach((target, i) => (weightedOneHot[i * vocab + target] = weights[i]));
  return tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), tf.tensor2d(weightedOneHot, [rows, vocab]))));
}

interface ScoreRef {
  ids: number[];
  logprobs: number[];
}
interface GradRef {
  ids: number[];
  rank: number;
  alpha: number;
  targets: LoraTarget[];
  loss: number;
  grads: Record<string, number[][]>;
}

const SCORE_FIXTURES: [string, string][] = [
  ['stories260K', 'score-lily.json'],
  ['tiny-random-qwen2', 'score.json'],
  ['tiny-random-qwen3', 'score.json'],
];
const GRAD_FIXTURES: [string, string][] = [
  ['stories260K', 'lora-grad-qv-r4.json'],
  ['stories260K', 'lora-grad-all-r8.json'],
  ['tiny-random-qwen2', 'lora-grad-all-r4.json'],
  ['tiny-random-qwen3', 'lora-grad-all-r4.json'],
];

/**
 * `greedyTokens`: how much of the 100-token reference continuation to check, and `greedyLayouts` in how many
 * weight layouts (SwiftShader is slow; the layouts' arithmetic is checked by the scores and gradients).
 */
export function engineChecks(backend: BackendName, greedyTokens = 100, greedyLayouts = 3): void {
  describe(`engine on ${backend}`, () => {
    const own = disposeAfterEach();
    beforeAll(async () => {
      await switchBackend(backend);
    });

    // Weight layouts that must not change the arithmetic: [in, out] on the right or compact [out, in] on the
    // left; q/k/v and gate/up each separate or fused into one weight (a fixture's qwen2 has q/k/v biases).
    const LAYOUTS: { label: string; options: BuildOptions }[] = [
      { label: 'separate projections', options: { compactWeights: false, fuseProjections: false } },
      { label: 'compact weights', options: { compactWeights: true, fuseProjections: false } },
      { label: 'fused projections', options: { compactWeights: false, fuseProjections: true } },
      { label: 'fused compact weights', options: { compactWeights: true, fuseProjections: true } },
    ];
    for (const [name, file] of SCORE_FIXTURES)
      for (const layout of LAYOUTS) {
        it(`scores ${name} like the reference (${file}; ${layout.label})`, async () => {
          const ref = reference<ScoreRef>(name, file);
          const { model } = own(loadFixture(name, layout.options));
          const before = tf.memory().numTensors;
          const result = await scoreTokens(model, ref.ids);
          expect(tf.memory().numTensors).toBe(before);
          expect(result.logprobs).toHaveLength(ref.logprobs.length);
          expect(maxAbsDiff(result.logprobs, ref.logprobs)).toBeLessThan(1e-3);
          disposeModel(model);
        });
      }

    // Every way the trainer can compute a step: all activations kept; each layer recomputed in the
    // backward pass (recomputed layers); and recomputed layers with the logits forced into chunks of 5 rows.
    // Compact weights (multiplied from the left, one copy on wasm) must not change the arithmetic either.
    const MODES = [
      { label: 'all activations kept', recompute: false, chunkRows: 0, compactWeights: false },
      { label: 'recomputed layers', recompute: true, chunkRows: 0, compactWeights: false },
      {
        label: 'recomputed layers, logits in 5-row chunks',
        recompute: true,
        chunkRows: 5,
        compactWeights: false,
      },
      { label: 'compact weights, recomputed layers', recompute: true, chunkRows: 0, compactWeights: true },
      {
        label: 'fused projections, all activations kept',
        recompute: false,
        chunkRows: 0,
        compactWeights: false,
        fuseProjections: true,
      },
      {
        label: 'fused compact weights, recomputed layers',
        recompute: true,
        chunkRows: 0,
        compactWeights: true,
        fuseProjections: true,
      },
    ];
    for (const [name, file] of GRAD_FIXTURES)
      for (const mode of MODES) {
        it(`LoRA gradients of ${name} match the reference (${file}; ${mode.label})`, async () => {
          const ref = reference<GradRef>(name, file);
          const { model } = own(
            loadFixture(name, {
              compactWeights: mode.compactWeights,
              fuseProjections: mode.fuseProjections ?? false,
            }),
          );
          if (mode.chunkRows) model.logitsChunkBytes = mode.chunkRows * model.args.vocabSize * 4;
          const adapter = own.adapter(
            model,
            attachLora(
              model,
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
          const params = adapter.variables();
          const before = tf.memory().numTensors;
          const { value, grads } = tf.variableGrads(
            () =>
              tf.div(batchLossSum(model, batch, { recompute: mode.recompute }), ids.length - 1) as tf.Scalar,
            params,
          );
          // Only the loss and one gradient per parameter are left: nothing the recomputed backward made
          // leaks.
          expect(tf.memory().numTensors).toBe(before + 1 + params.length);
          expect(Math.abs((await value.data())[0] - ref.loss)).toBeLessThan(1e-3 * Math.max(1, ref.loss));
          expect(Object.keys(ref.grads)).toHaveLength(params.length);
          for (const [path, m] of adapter.modules) {
            for (const which of ['A', 'B'] as const) {
              const expected = ref.grads[`base_model.model.${path}.lora_${which}.weight`].flat();
              const actual = await grads[(which === 'A' ? m.A : m.B).name].data();
              expect(relativeError(actual, expected), `${path} lora_${which}`).toBeLessThan(1e-3);
            }
          }
          tf.dispose([value, ...Object.values(grads)]);
          detachLora(model, adapter);
          disposeModel(model);
        });
      }

    it('a completion-masked loss gives the gradients of the full pass with zero weights on the prompt', async () => {
      const { model, tokenizer } = own(loadFixture('stories260K'));
      const adapter = own.adapter(
        model,
        attachLora(
          model,
          { rank: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'v_proj', 'down_proj'], useRslora: false },
          detLora,
        ),
      );
      const ids = Int32Array.from(tokenizer.encode('Who is Tom?\nTom is my best friend.'));
      const targetMask = Float32Array.from(ids, (_, i) => (i >= 6 ? 1 : 0));
      const batch = {
        ids,
        targetMask,
        attentionMask: new Float32Array(ids.length).fill(1),
        batchSize: 1,
        seqLength: ids.length,
      };
      const params = adapter.variables();
      // Reference path: every position through the lm_head, prompt positions weighted 0.
      const full = tf.variableGrads(() => {
        const hidden = hiddenStates(model, ids.slice(0, -1), 1);
        return plainWeightedCrossEntropy(lmHead(model, hidden), ids.slice(1), targetMask.slice(1));
      }, params);
      const selected = tf.variableGrads(() => batchLossSum(model, batch), params);
      expect(Math.abs((await selected.value.data())[0] - (await full.value.data())[0])).toBeLessThan(1e-4);
      for (const p of params) {
        expect(
          relativeError(await selected.grads[p.name].data(), await full.grads[p.name].data()),
          p.name,
        ).toBeLessThan(1e-4);
      }
      tf.dispose([
        full.value,
        selected.value,
        ...Object.values(full.grads),
        ...Object.values(selected.grads),
      ]);
      detachLora(model, adapter);
      disposeModel(model);
    });

    // The first is what the engine builds on WebGPU by default.
    for (const layout of [LAYOUTS[2], LAYOUTS[0], LAYOUTS[1]].slice(0, greedyLayouts))
      it(`greedy continuation of "Once upon a time" equals the reference (${greedyTokens} tokens; ${layout.label})`, async () => {
        const ref = reference<{ ids: number[]; new: number[] }>(
          'stories260K',
          'greedy-once-upon-a-time.json',
        );
        const { model, tokenizer } = own(loadFixture('stories260K', layout.options));
        const prompt = tokenizer.encode('Once upon a time');
        expect(prompt).toEqual(ref.ids.slice(0, ref.ids.length - ref.new.length));
        const before = tf.memory().numTensors;
        const expected = ref.new.slice(0, greedyTokens);
        const result = await generate(model, prompt, { maxNewTokens: expected.length, eosTokenIds: [] });
        expect(tf.memory().numTensors).toBe(before);
        expect(result.tokens).toEqual(expected);
        disposeModel(model);
      });

    it('KV-cache decoding gives the logits of the full-sequence pass', async () => {
      const { model, tokenizer } = own(loadFixture('tiny-random-qwen3'));
      const ids = tokenizer.encode('Once upon a time, there was a little girl named Lily.');
      const full = tf.tidy(() => lmHead(model, hiddenStates(model, Int32Array.from(ids), 1)));
      const cache = new KVCache(model.args.numLayers);
      const split = 5;
      const prefill = tf.tidy(() =>
        lmHead(model, hiddenStates(model, Int32Array.from(ids.slice(0, split)), 1, { cache })),
      );
      const stepwise = [prefill];
      for (let t = split; t < ids.length; t++) {
        stepwise.push(
          tf.tidy(() => lmHead(model, hiddenStates(model, Int32Array.from([ids[t]]), 1, { cache }))),
        );
      }
      const cached = tf.concat(stepwise, 0);
      expect(maxAbsDiff(await cached.data(), await full.data())).toBeLessThan(1e-4);
      tf.dispose([full, cached, ...stepwise]);
      cache.dispose();
      const greedyCached = await generate(model, ids.slice(0, 4), { maxNewTokens: 12, eosTokenIds: [] });
      const greedyFull = await generate(model, ids.slice(0, 4), {
        maxNewTokens: 12,
        eosTokenIds: [],
        noCache: true,
      });
      expect(greedyCached.tokens).toEqual(greedyFull.tokens);
      disposeModel(model);
    });

    it('a padded batch scores each row as if it were alone', async () => {
      const { model, tokenizer } = own(loadFixture('stories260K'));
      const rows = [tokenizer.encode('Once upon a time, there was a dog.'), tokenizer.encode('Lily smiled.')];
      const alone = await Promise.all(rows.map((r) => scoreTokens(model, r)));
      const T = Math.max(...rows.map((r) => r.length));
      // Right padding for the first pass, left padding (as batched generation uses) for the second.
      for (const side of ['right', 'left'] as const) {
        const ids = new Int32Array(2 * T);
        const mask = rows.map(() => new Float32Array(T));
        rows.forEach((r, b) => {
          const offset = side === 'right' ? 0 : T - r.length;
          ids.set(r, b * T + offset);
          mask[b].fill(1, offset, offset + r.length);
        });
        const logp = tf.tidy(() =>
          tf.logSoftmax(lmHead(model, hiddenStates(model, ids, 2, { attentionMask: mask }))),
        );
        const values = (await logp.array()) as number[][];
        rows.forEach((r, b) => {
          const offset = side === 'right' ? 0 : T - r.length;
          const batched = r.slice(1).map((next, t) => values[b * T + offset + t][next]);
          expect(maxAbsDiff(batched, alone[b].logprobs), `${side} padding, row ${b}`).toBeLessThan(1e-4);
        });
        logp.dispose();
      }
      disposeModel(model);
    });
  });
}
