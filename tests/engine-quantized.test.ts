/**
 * A frozen base held in 16, 8 or 4 bits (`--weights bf16|q8_0|nf4`) computes what the PyTorch reference
 * computes on the same weights: reference/quant_model.py dequantizes the checkpoint by the formats'
 * published definitions (numpy, written apart from src/engine/quant.ts) into a float32 model folder, and
 * webtune_reference.py scores it and takes LoRA gradients on it. 16 bits from a bf16 file are the file's
 * own values: the model scores exactly as its float32 widening does.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseModelConfig } from '../src/engine/config';
import { loadModel } from '../src/engine/load';
import type { Linear } from '../src/engine/layers';
import { KVCache } from '../src/engine/kv-cache';
import { disposeModel, hiddenStates, lmHead, type LlamaModel } from '../src/engine/model';
import { readSafetensors, writeSafetensors } from '../src/engine/safetensors';
import { scoreTokens } from '../src/engine/score';
import { tf } from '../src/engine/tf';
import { buildModel } from '../src/engine/weights';
import { readModelFolder } from '../src/node/model-folder';
import { bf16Safetensors } from './helpers/bf16';
import { disposeAfterEach } from './helpers/cleanup';
import { referenceScore } from './helpers/reference';
import {
  dequantizedFolder,
  dequantizedFolders,
  expectGradsLike,
  referenceGrads,
  removeDequantizedFolders,
  type GradRef,
} from './helpers/quantized';
import { maxAbsDiff, modelDir, reference, switchBackend } from './helpers/shared';

const own = disposeAfterEach();

/**
 * Each token's log-prob decoded one token at a time through the KV cache: every product then has one row of
 * x, which the CPU backends multiply straight from the packed bytes (quant-product.ts).
 */
async function decodedLogprobs(model: LlamaModel, ids: number[]): Promise<number[]> {
  const cache = new KVCache(model.args.numLayers);
  const out: number[] = [];
  for (let t = 0; t + 1 < ids.length; t++) {
    const logprobs = tf.tidy(() =>
      tf.logSoftmax(lmHead(model, hiddenStates(model, Int32Array.from([ids[t]]), 1, { cache }))),
    );
    out.push((await logprobs.data())[ids[t + 1]]);
    logprobs.dispose();
  }
  cache.dispose();
  return out;
}
const PROJECTIONS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

const FIXTURES: [string, string, string][] = [
  ['stories260K', 'score-lily.json', 'lora-grad-all-r8.json'],
  ['tiny-random-qwen2', 'score.json', 'lora-grad-all-r4.json'],
  ['tiny-random-qwen3', 'score.json', 'lora-grad-all-r4.json'],
  ['tiny-random-gemma3', 'score.json', 'lora-grad-all-r4.json'],
];

describe('a frozen base in 16, 8 and 4 bits', () => {
  beforeAll(() => switchBackend('wasm'));
  afterAll(removeDequantizedFolders);

  for (const [name, scoreFile, gradFile] of FIXTURES)
    for (const format of ['q8_0', 'nf4'] as const) {
      it(`${name} with --weights ${format} scores and takes LoRA gradients like the reference on the dequantized weights`, async () => {
        const { ids, logprobs: f32Logprobs } = reference<{ ids: number[]; logprobs: number[] }>(
          name,
          scoreFile,
        );
        const dir = dequantizedFolder(modelDir(name), format);
        const loaded = own(loadModel(readModelFolder(modelDir(name)), { weights: format }));
        const before = tf.memory().numTensors;
        const engine = (await scoreTokens(loaded.model, ids)).logprobs;
        expect(tf.memory().numTensors).toBe(before);
        const torch = referenceScore(dir, ids).logprobs;
        expect(maxAbsDiff(engine, torch)).toBeLessThan(1e-4);
        // Decoding, token by token, computes the same.
        expect(maxAbsDiff(await decodedLogprobs(loaded.model, ids), torch)).toBeLessThan(1e-4);
        expect(tf.memory().numTensors).toBe(before);
        // Quantizing moved the log-probs: the comparison above is not the float32 model's.
        expect(maxAbsDiff(torch, f32Logprobs)).toBeGreaterThan(1e-4);

        const like = reference<GradRef>(name, gradFile);
        await expectGradsLike(loaded.model, referenceGrads(dir, like));
        disposeModel(loaded.model);
      });
    }

  it('16 bits from a bf16 file are its own values: scores exactly as the float32 widening, in half the bytes', async () => {
    const source = modelDir('stories260K');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-bf16-'));
    dequantizedFolders.push(dir);
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json'])
      fs.copyFileSync(path.join(source, f), path.join(dir, f));
    const { tensors } = readSafetensors(
      new Uint8Array(fs.readFileSync(path.join(source, 'model.safetensors'))),
    );
    fs.writeFileSync(path.join(dir, 'model.safetensors'), bf16Safetensors([...tensors]));
    const { ids } = reference<{ ids: number[] }>('stories260K', 'score-lily.json');
    const wide = own(loadModel(readModelFolder(dir)));
    const half = own(loadModel(readModelFolder(dir), { weights: 'bf16' }));
    const wideLogprobs = (await scoreTokens(wide.model, ids)).logprobs;
    expect((await scoreTokens(half.model, ids)).logprobs).toEqual(wideLogprobs);
    // Decoding reads the halves straight from their bits: the same up to the order of the additions.
    expect(maxAbsDiff(await decodedLogprobs(half.model, ids), wideLogprobs)).toBeLessThan(1e-5);
    // Every frozen matrix in 2 bytes a weight instead of 4.
    const bytes = ({ model }: typeof wide) =>
      [
        ...model.lm_head,
        ...model.layers.flatMap((l) =>
          PROJECTIONS.map(
            (p) => ((p in l.self_attn ? l.self_attn : l.mlp) as unknown as Record<string, Linear>)[p].matrix,
          ),
        ),
      ].reduce((n, m) => n + m.bytes, 0);
    expect(bytes(half) * 2).toBe(bytes(wide));
    disposeModel(half.model);
    disposeModel(wide.model);
  });

  it('a SmolLM2-shaped model (2 of its layers, random weights) with --weights nf4 scores like the reference', async () => {
    const config = {
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      hidden_size: 576,
      intermediate_size: 1536,
      num_hidden_layers: 2,
      num_attention_heads: 9,
      num_key_value_heads: 3,
      vocab_size: 49152,
      rms_norm_eps: 1e-5,
      rope_theta: 100000,
      tie_word_embeddings: true,
      max_position_embeddings: 8192,
    };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-smol-'));
    dequantizedFolders.push(dir);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
    const args = parseModelConfig(config);
    const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
    let seed = 1;
    const random = (shape: number[], norm: boolean) => {
      const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
      for (let i = 0; i < data.length; i++) {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        data[i] = norm ? 1 + (seed / 2 ** 31 - 0.5) * 0.2 : (seed / 2 ** 31 - 0.5) * 0.08;
      }
      return { shape, data };
    };
    const model0 = buildModel(args, (tensorName, shape) => {
      const t = random(shape, tensorName.endsWith('norm.weight'));
      tensors.set(tensorName, t);
      return t;
    });
    disposeModel(model0);
    fs.writeFileSync(path.join(dir, 'model.safetensors'), writeSafetensors([...tensors]));
    const ids = [1, 17, 4000, 123, 49151, 9, 300, 2048, 77, 5];
    const quantized = buildModel(args, (tensorName) => tensors.get(tensorName), { weights: 'nf4' });
    const engine = (await scoreTokens(quantized, ids)).logprobs;
    disposeModel(quantized);
    const torch = referenceScore(dequantizedFolder(dir, 'nf4'), ids).logprobs;
    expect(maxAbsDiff(engine, torch)).toBeLessThan(1e-4);
  });
});
