/**
 * Gemma 3 against the independent PyTorch reference (reference/webtune_reference.py, written from
 * transformers' modeling_gemma3), registered once per backend: scores, greedy decoding and LoRA gradients
 * of fixtures/models/tiny-random-gemma3 (six layers, five with a sliding window of 4, over sequences of 33
 * tokens), and the sliding window itself, in a full pass and in cached decoding.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { BackendName } from '../../src/engine/backend';
import { generate } from '../../src/engine/generate';
import { KVCache } from '../../src/engine/kv-cache';
import { loadModel } from '../../src/engine/load';
import { attachLora, detachLora } from '../../src/engine/lora';
import { disposeModel, hiddenStates, lmHead, type LlamaModel } from '../../src/engine/model';
import { scoreTokens } from '../../src/engine/score';
import { tf } from '../../src/engine/tf';
import { batchLossSum } from '../../src/engine/train';
import type { BuildOptions } from '../../src/engine/weights';
import type { LoraTarget } from '../../src/formats/peft';
import { readModelFolder } from '../../src/node/model-folder';
import { disposeAfterEach } from './cleanup';
import { detLora } from './det-lora';
import { loadFixture, maxAbsDiff, modelDir, reference, relativeError, switchBackend } from './shared';

const GEMMA = 'tiny-random-gemma3';

interface GradRef {
  ids: number[];
  rank: number;
  alpha: number;
  targets: LoraTarget[];
  loss: number;
  grads: Record<string, number[][]>;
}

/** The fixture with every layer sliding (window 4): position t's logits see positions t − 6·3 … t only. */
function allSliding(options: BuildOptions = {}): LlamaModel {
  const files = readModelFolder(modelDir(GEMMA));
  const config = JSON.parse(files.config) as Record<string, unknown>;
  config.layer_types = Array.from({ length: 6 }, () => 'sliding_attention');
  return loadModel({ ...files, config: JSON.stringify(config) }, options).model;
}

async function logitsOf(model: LlamaModel, ids: number[]): Promise<number[][]> {
  const logits = tf.tidy(() => lmHead(model, hiddenStates(model, Int32Array.from(ids), 1)));
  const rows = (await logits.array()) as number[][];
  logits.dispose();
  return rows;
}

/**
 * `lean` (WebGPU on SwiftShader, where each step is slow): greedy decoding in the fused layout only, the
 * gradients once per layout (recomputed layers in the fused one), and the cached-decoding check on the
 * all-sliding model only — each kind of work still checked on the backend, as the other families are there.
 */
export function gemma3Checks(backend: BackendName, { greedyTokens = 40, lean = false } = {}): void {
  describe(`Gemma 3 on ${backend}`, () => {
    const own = disposeAfterEach();
    beforeAll(async () => {
      await switchBackend(backend);
    });

    const LAYOUTS: { label: string; options: BuildOptions }[] = [
      { label: 'separate projections', options: { compactWeights: false, fuseProjections: false } },
      { label: 'fused compact weights', options: { compactWeights: true, fuseProjections: true } },
    ];

    for (const layout of LAYOUTS) {
      it(`scores like the reference (${layout.label})`, async () => {
        const ref = reference<{ ids: number[]; logprobs: number[] }>(GEMMA, 'score.json');
        const { model } = own(loadFixture(GEMMA, layout.options));
        const before = tf.memory().numTensors;
        const result = await scoreTokens(model, ref.ids);
        expect(tf.memory().numTensors).toBe(before);
        expect(maxAbsDiff(result.logprobs, ref.logprobs)).toBeLessThan(1e-4);
        disposeModel(model);
      });

      const fused = layout.options.fuseProjections === true;
      if (!lean || fused)
        it(`decodes greedily like the reference, with the KV cache (${layout.label})`, async () => {
          const ref = reference<{ ids: number[]; new: number[] }>(GEMMA, 'greedy.json');
          const { model } = own(loadFixture(GEMMA, layout.options));
          const prompt = ref.ids.slice(0, ref.ids.length - ref.new.length);
          const expected = ref.new.slice(0, greedyTokens);
          const before = tf.memory().numTensors;
          const result = await generate(model, prompt, { maxNewTokens: expected.length, eosTokenIds: [] });
          expect(tf.memory().numTensors).toBe(before);
          expect(result.tokens).toEqual(expected);
          disposeModel(model);
        });

      for (const recompute of lean ? [fused] : [false, true])
        it(`LoRA gradients match the reference (${layout.label}${recompute ? ', recomputed layers' : ''})`, async () => {
          const ref = reference<GradRef>(GEMMA, 'lora-grad-all-r4.json');
          const { model } = own(loadFixture(GEMMA, layout.options));
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
            () => tf.div(batchLossSum(model, batch, { recompute }), ids.length - 1) as tf.Scalar,
            params,
          );
          expect(tf.memory().numTensors).toBe(before + 1 + params.length);
          expect(Math.abs((await value.data())[0] - ref.loss)).toBeLessThan(1e-4 * ref.loss);
          expect(Object.keys(ref.grads)).toHaveLength(params.length);
          for (const [path, m] of adapter.modules) {
            for (const which of ['A', 'B'] as const) {
              const expected = ref.grads[`base_model.model.${path}.lora_${which}.weight`].flat();
              const actual = await grads[(which === 'A' ? m.A : m.B).name].data();
              expect(relativeError(actual, expected), `${path} lora_${which}`).toBeLessThan(1e-4);
            }
          }
          tf.dispose([value, ...Object.values(grads)]);
          detachLora(model, adapter);
          disposeModel(model);
        });
    }

    it('a token further back than the sliding windows reach changes nothing; a nearer one does', async () => {
      // Six sliding layers of window 4: position t sees positions t − 18 … t, through the layers.
      const model = allSliding();
      const ids = reference<{ ids: number[] }>(GEMMA, 'score.json').ids.slice(0, 26);
      const changed = [...ids];
      changed[1] = ids[1] === 100 ? 101 : 100;
      const [a, b] = [await logitsOf(model, ids), await logitsOf(model, changed)];
      // Token 1 reaches positions 1 … 19 and no further.
      for (const t of [20, 22, 25]) expect(maxAbsDiff(b[t], a[t]), `position ${t}`).toBe(0);
      for (const t of [2, 10, 19]) expect(maxAbsDiff(b[t], a[t]), `position ${t}`).toBeGreaterThan(1e-5);
      disposeModel(model);
    });

    it("cached decoding past the window gives the full pass's logits, mask for mask", async () => {
      const models = [() => own(loadFixture(GEMMA)).model, () => allSliding()];
      for (const make of lean ? models.slice(1) : models) {
        const model = make();
        const ids = reference<{ ids: number[] }>(GEMMA, 'score.json').ids.slice(0, 20);
        const full = await logitsOf(model, ids);
        const cache = new KVCache(model.args.numLayers);
        const rows: number[][] = [];
        const split = 3;
        for (let t = 0; t < ids.length; t = t === 0 ? split : t + 1) {
          const part = ids.slice(t, t === 0 ? split : t + 1);
          const logits = tf.tidy(() =>
            lmHead(model, hiddenStates(model, Int32Array.from(part), 1, { cache })),
          );
          rows.push(...((await logits.array()) as number[][]));
          logits.dispose();
        }
        cache.dispose();
        expect(maxAbsDiff(rows.flat(), full.flat())).toBeLessThan(1e-4);
        disposeModel(model);
      }
    });
  });
}
