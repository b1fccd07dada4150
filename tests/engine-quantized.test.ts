/**
 * A frozen base held in 16, 8 or 4 bits (`--weights bf16|q8_0|nf4`) computes what the PyTorch reference
 * computes on the same weights: reference/quant_model.py dequantizes the checkpoint by the formats'
 * published definitions (numpy, written apart from src/engine/quant.ts) into a float32 model folder, and
 * webtune_reference.py scores it and takes LoRA gradients on it. 16 bits from a bf16 file are the file's
 * own values: the model scores exactly as its float32 widening does.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseModelConfig } from '../src/engine/config';
import { loadModel } from '../src/engine/load';
import type { Linear } from '../src/engine/layers';
import { attachLora, detachLora } from '../src/engine/lora';
import { disposeModel } from '../src/engine/model';
import type { WeightFormat } from '../src/engine/quant';
import { readSafetensors, writeSafetensors } from '../src/engine/safetensors';
import { scoreTokens } from '../src/engine/score';
import { tf } from '../src/engine/tf';
import { batchLossSum } from '../src/engine/train';
import { buildModel } from '../src/engine/weights';
import type { LoraTarget } from '../src/formats/peft';
import { readModelFolder } from '../src/node/model-folder';
import { bf16Safetensors } from './helpers/bf16';
import { disposeAfterEach } from './helpers/cleanup';
import { detLora } from './helpers/det-lora';
import { referenceScore } from './helpers/reference';
import {
  maxAbsDiff,
  modelDir,
  reference,
  REFERENCE_SCRIPT,
  relativeError,
  switchBackend,
} from './helpers/shared';

const PYTHON = '/usr/bin/python3';
const QUANT_MODEL = path.join(path.dirname(REFERENCE_SCRIPT), 'quant_model.py');
const own = disposeAfterEach();
const temporary: string[] = [];
const PROJECTIONS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

/** The model folder with its weights as `format` holds them, dequantized by the reference. */
function dequantizedFolder(source: string, format: Exclude<WeightFormat, 'f32' | 'f16'>): string {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), `webtune-${format}-`));
  temporary.push(out);
  execFileSync(PYTHON, [QUANT_MODEL, source, out, format], { stdio: ['ignore', 'ignore', 'pipe'] });
  return out;
}

interface GradRef {
  ids: number[];
  rank: number;
  alpha: number;
  targets: LoraTarget[];
  loss: number;
  grads: Record<string, number[][]>;
}

/** The reference's loss and LoRA gradients (deterministic init) on the model folder `dir`. */
function referenceGrads(dir: string, like: GradRef): GradRef {
  const out = path.join(dir, 'grads.json');
  execFileSync(
    PYTHON,
    [
      REFERENCE_SCRIPT,
      'lora-grad',
      dir,
      '--ids',
      like.ids.join(','),
      '--rank',
      String(like.rank),
      '--alpha',
      String(like.alpha),
      '--targets',
      like.targets.join(','),
      '--out',
      out,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return JSON.parse(fs.readFileSync(out, 'utf8')) as GradRef;
}

const FIXTURES: [string, string, string][] = [
  ['stories260K', 'score-lily.json', 'lora-grad-all-r8.json'],
  ['tiny-random-qwen2', 'score.json', 'lora-grad-all-r4.json'],
  ['tiny-random-qwen3', 'score.json', 'lora-grad-all-r4.json'],
];

describe('a frozen base in 16, 8 and 4 bits', () => {
  beforeAll(() => switchBackend('wasm'));
  afterAll(() => {
    for (const dir of temporary) fs.rmSync(dir, { recursive: true, force: true });
  });

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
        // Quantizing moved the log-probs: the comparison above is not the float32 model's.
        expect(maxAbsDiff(torch, f32Logprobs)).toBeGreaterThan(1e-4);

        const like = reference<GradRef>(name, gradFile);
        const ref = referenceGrads(dir, like);
        const model = loaded.model;
        const adapter = own.adapter(
          model,
          attachLora(
            model,
            { rank: ref.rank, alpha: ref.alpha, dropout: 0, targets: ref.targets, useRslora: false },
            detLora,
          ),
        );
        const batchIds = Int32Array.from(ref.ids);
        const batch = {
          ids: batchIds,
          targetMask: new Float32Array(batchIds.length).fill(1),
          attentionMask: new Float32Array(batchIds.length).fill(1),
          batchSize: 1,
          seqLength: batchIds.length,
        };
        const { value, grads } = tf.variableGrads(
          () => tf.div(batchLossSum(model, batch, { recompute: true }), batchIds.length - 1) as tf.Scalar,
          adapter.variables(),
        );
        expect(Math.abs((await value.data())[0] - ref.loss)).toBeLessThan(1e-4 * Math.max(1, ref.loss));
        for (const [module, lora] of adapter.modules)
          for (const which of ['A', 'B'] as const) {
            const actual = await grads[(which === 'A' ? lora.A : lora.B).name].data();
            expect(
              relativeError(actual, ref.grads[`base_model.model.${module}.lora_${which}.weight`].flat()),
              `${module} lora_${which}`,
            ).toBeLessThan(1e-3);
          }
        tf.dispose([value, ...Object.values(grads)]);
        detachLora(model, adapter);
        disposeModel(model);
      });
    }

  it('16 bits from a bf16 file are its own values: scores exactly as the float32 widening, in half the bytes', async () => {
    const source = modelDir('stories260K');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-bf16-'));
    temporary.push(dir);
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json'])
      fs.copyFileSync(path.join(source, f), path.join(dir, f));
    const { tensors } = readSafetensors(
      new Uint8Array(fs.readFileSync(path.join(source, 'model.safetensors'))),
    );
    fs.writeFileSync(path.join(dir, 'model.safetensors'), bf16Safetensors([...tensors]));
    const { ids } = reference<{ ids: number[] }>('stories260K', 'score-lily.json');
    const wide = own(loadModel(readModelFolder(dir)));
    const half = own(loadModel(readModelFolder(dir), { weights: 'bf16' }));
    expect((await scoreTokens(half.model, ids)).logprobs).toEqual(
      (await scoreTokens(wide.model, ids)).logprobs,
    );
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
    temporary.push(dir);
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
