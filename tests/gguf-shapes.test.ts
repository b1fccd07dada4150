/**
 * Layouts the fixtures do not cover, on small random checkpoints built here (stories260K's tokenizer):
 * a Llama with attention biases (q/k biases permuted like their rows, o_proj's bias), an untied output
 * layer and a head_dim other than hidden/heads; a Qwen3 with a wide head_dim; a Mistral (llama.cpp's
 * `llama`). llama.cpp's logits and greedy tokens must equal webtune's.
 */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readModelFolder } from '../src/node/model-folder';
import { parseModelConfig } from '../src/engine/config';
import { generate } from '../src/engine/generate';
import { loadModel } from '../src/engine/load';
import { disposeModel } from '../src/engine/model';
import { writeSafetensors, type HostTensor } from '../src/engine/safetensors';
import { tf } from '../src/engine/tf';
import { checkpointTensors } from '../src/formats/checkpoint-tensors';
import { writeModelGguf } from '../src/formats/gguf-model';
import { tempDir, writeFile } from './helpers/gguf-files';
import { metadataValues, readGguf } from './helpers/gguf-reader';
import { getLlama, openGguf } from './helpers/llama-cpp';
import { maxAbsDiff, modelDir, switchBackend } from './helpers/shared';
import { webtuneLogits } from './helpers/webtune-logits';

const stories = readModelFolder(modelDir('stories260K'));
const dir = tempDir('webtune-gguf-shapes-');

/** A checkpoint of `config`'s shapes with seeded random weights, named as Hugging Face names them. */
function randomCheckpoint(config: Record<string, unknown>, seed: number): Uint8Array {
  const a = parseModelConfig(config);
  let state = seed >>> 0;
  const random = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32 - 0.5;
  };
  const tensor = (shape: number[], scale: number, offset = 0): HostTensor => ({
    shape,
    data: Float32Array.from({ length: shape.reduce((x, y) => x * y, 1) }, () => offset + scale * random()),
  });
  const tensors: [string, HostTensor][] = [
    ['model.embed_tokens.weight', tensor([a.vocabSize, a.hiddenSize], 0.5)],
  ];
  const q = a.numHeads * a.headDim;
  const kv = a.numKvHeads * a.headDim;
  for (let l = 0; l < a.numLayers; l++) {
    const p = `model.layers.${l}.`;
    tensors.push([`${p}input_layernorm.weight`, tensor([a.hiddenSize], 0.2, 1)]);
    tensors.push([`${p}self_attn.q_proj.weight`, tensor([q, a.hiddenSize], 0.5)]);
    tensors.push([`${p}self_attn.k_proj.weight`, tensor([kv, a.hiddenSize], 0.5)]);
    tensors.push([`${p}self_attn.v_proj.weight`, tensor([kv, a.hiddenSize], 0.5)]);
    if (a.qkvBias) {
      tensors.push([`${p}self_attn.q_proj.bias`, tensor([q], 0.5)]);
      tensors.push([`${p}self_attn.k_proj.bias`, tensor([kv], 0.5)]);
      tensors.push([`${p}self_attn.v_proj.bias`, tensor([kv], 0.5)]);
    }
    tensors.push([`${p}self_attn.o_proj.weight`, tensor([a.hiddenSize, q], 0.3)]);
    if (a.oBias) tensors.push([`${p}self_attn.o_proj.bias`, tensor([a.hiddenSize], 0.3)]);
    if (a.qkNorm) {
      tensors.push([`${p}self_attn.q_norm.weight`, tensor([a.headDim], 0.2, 1)]);
      tensors.push([`${p}self_attn.k_norm.weight`, tensor([a.headDim], 0.2, 1)]);
    }
    tensors.push([`${p}post_attention_layernorm.weight`, tensor([a.hiddenSize], 0.2, 1)]);
    tensors.push([`${p}mlp.gate_proj.weight`, tensor([a.intermediateSize, a.hiddenSize], 0.5)]);
    tensors.push([`${p}mlp.up_proj.weight`, tensor([a.intermediateSize, a.hiddenSize], 0.5)]);
    tensors.push([`${p}mlp.down_proj.weight`, tensor([a.hiddenSize, a.intermediateSize], 0.3)]);
  }
  tensors.push(['model.norm.weight', tensor([a.hiddenSize], 0.2, 1)]);
  if (!a.tieWordEmbeddings) tensors.push(['lm_head.weight', tensor([a.vocabSize, a.hiddenSize], 0.5)]);
  return writeSafetensors(tensors);
}

const common = {
  hidden_size: 64,
  intermediate_size: 96,
  num_hidden_layers: 2,
  vocab_size: 512,
  max_position_embeddings: 256,
  rms_norm_eps: 1e-5,
  bos_token_id: 1,
  eos_token_id: 2,
  hidden_act: 'silu',
};
const CASES = [
  {
    label: 'llama with attention biases, untied output and head_dim 16 ≠ 64/8',
    arch: 'llama',
    config: {
      ...common,
      model_type: 'llama',
      num_attention_heads: 8,
      num_key_value_heads: 2,
      head_dim: 16,
      attention_bias: true,
      tie_word_embeddings: false,
      rope_theta: 10000,
    },
  },
  {
    label: 'qwen3 with head_dim 32 ≠ 64/4',
    arch: 'qwen3',
    config: {
      ...common,
      model_type: 'qwen3',
      num_attention_heads: 4,
      num_key_value_heads: 2,
      head_dim: 32,
      tie_word_embeddings: true,
      rope_theta: 1e6,
    },
  },
  {
    label: 'mistral (llama.cpp runs it as llama), untied',
    arch: 'llama',
    config: {
      ...common,
      model_type: 'mistral',
      num_attention_heads: 4,
      num_key_value_heads: 1,
      tie_word_embeddings: false,
      rope_theta: 1e6,
    },
  },
];

beforeAll(async () => {
  await switchBackend('cpu');
  await getLlama();
});

describe.each(CASES)('$label', ({ arch, config }) => {
  it("is written with its hyperparameters, and llama.cpp gives webtune's logits and tokens", async () => {
    const files = {
      ...stories,
      name: `random-${config.model_type}`,
      config: JSON.stringify(config),
      weights: randomCheckpoint(config, 7),
    };
    const args = parseModelConfig(config);
    const before = tf.memory().numTensors;
    const loaded = loadModel(files);
    const file = await writeFile(path.join(dir, `${files.name}.gguf`), (sink) =>
      writeModelGguf(sink, { name: files.name, files, tensors: checkpointTensors(files) }, { dtype: 'f32' }),
    );
    const parsed = readGguf(new Uint8Array(fs.readFileSync(file)));
    const meta = metadataValues(parsed);
    expect(meta['general.architecture']).toBe(arch);
    expect(meta[`${arch}.attention.head_count`]).toBe(args.numHeads);
    expect(meta[`${arch}.attention.head_count_kv`]).toBe(args.numKvHeads);
    expect(meta[`${arch}.embedding_length`]).toBe(64);
    expect(meta[`${arch}.rope.dimension_count`]).toBe(args.headDim);
    expect(meta[`${arch}.attention.key_length`]).toBe(
      args.headDim * args.numHeads === 64 ? undefined : args.headDim,
    );
    expect(parsed.tensors.some((t) => t.name === 'output.weight')).toBe(!args.tieWordEmbeddings);
    const run = await openGguf(file);
    try {
      for (const text of ['Once upon a time', 'Lily and Tom went to the park. They']) {
        const ids = loaded.tokenizer.encode(text);
        const ours = await webtuneLogits(loaded.model, ids);
        const scale = Math.max(...ours.map(Math.abs));
        expect(maxAbsDiff(await run.logits(ids, ours.length), ours) / scale, text).toBeLessThan(1e-5);
        const continuation = await generate(loaded.model, ids, { maxNewTokens: 16, eosTokenIds: [] });
        expect(await run.greedy(ids, 16), text).toEqual(continuation.tokens);
      }
    } finally {
      await run.dispose();
      disposeModel(loaded.model);
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
