/**
 * The bench's models in real shapes: each one's config.json as published, with random weights (nothing can
 * be downloaded here). The values are the Hub's config.json files (huggingface.co/<model>/blob/main/
 * config.json), checked against copies of them in public repositories; fields the engine does not read
 * (architectures, torch_dtype, sliding_window, …) are left out.
 */
import { parseModelConfig, type ModelArgs } from '../engine/config';
import type { LlamaModel } from '../engine/model';
import { createRng } from '../engine/random';
import { buildModel, type BuildOptions } from '../engine/weights';

/** HuggingFaceTB/SmolLM2-135M(-Instruct): 30 layers. */
const SMOLLM2_135M = {
  model_type: 'llama',
  hidden_size: 576,
  intermediate_size: 1536,
  num_hidden_layers: 30,
  num_attention_heads: 9,
  num_key_value_heads: 3,
  vocab_size: 49152,
  rms_norm_eps: 1e-5,
  rope_theta: 100000,
  max_position_embeddings: 8192,
  tie_word_embeddings: true,
  bos_token_id: 1,
  eos_token_id: 2,
};

/** Qwen/Qwen2.5-0.5B(-Instruct): 24 layers, q/k/v bias, a 151,936-token vocabulary tied to the embedding. */
const QWEN25_05B = {
  model_type: 'qwen2',
  hidden_size: 896,
  intermediate_size: 4864,
  num_hidden_layers: 24,
  num_attention_heads: 14,
  num_key_value_heads: 2,
  vocab_size: 151936,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000,
  max_position_embeddings: 32768,
  tie_word_embeddings: true,
  bos_token_id: 151643,
  eos_token_id: 151645,
};

/**
 * Qwen/Qwen2.5-1.5B-Instruct's config.json (transformers 4.43.1): 28 layers, hidden 1536, 12 heads of 128,
 * 2 KV heads, MLP 8960, q/k/v bias (qwen2), the vocabulary tied to the embedding.
 */
const QWEN25_15B = {
  model_type: 'qwen2',
  hidden_size: 1536,
  intermediate_size: 8960,
  num_hidden_layers: 28,
  num_attention_heads: 12,
  num_key_value_heads: 2,
  vocab_size: 151936,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000,
  max_position_embeddings: 32768,
  tie_word_embeddings: true,
  bos_token_id: 151643,
  eos_token_id: 151645,
};

/**
 * HuggingFaceTB/SmolLM2-1.7B-Instruct's config.json (transformers 4.42.3): a Llama of 24 layers, hidden 2048,
 * 32 heads and 32 KV heads (no grouping), MLP 8192, rope_theta 130000, the vocabulary tied.
 */
const SMOLLM2_17B = {
  model_type: 'llama',
  hidden_size: 2048,
  intermediate_size: 8192,
  num_hidden_layers: 24,
  num_attention_heads: 32,
  num_key_value_heads: 32,
  vocab_size: 49152,
  rms_norm_eps: 1e-5,
  rope_theta: 130000,
  max_position_embeddings: 8192,
  tie_word_embeddings: true,
  attention_bias: false,
  bos_token_id: 1,
  eos_token_id: 2,
};

/**
 * Qwen/Qwen3-1.7B's config.json (transformers 4.51.0): 28 layers, hidden 2048, 16 heads of head_dim 128
 * (wider than hidden / heads), 8 KV heads, MLP 6144, RMSNorm on q and k (qwen3), no bias, the vocabulary
 * tied.
 */
const QWEN3_17B = {
  model_type: 'qwen3',
  hidden_size: 2048,
  intermediate_size: 6144,
  num_hidden_layers: 28,
  num_attention_heads: 16,
  num_key_value_heads: 8,
  head_dim: 128,
  vocab_size: 151936,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000,
  max_position_embeddings: 40960,
  tie_word_embeddings: true,
  attention_bias: false,
  bos_token_id: 151643,
  eos_token_id: 151645,
};

/** Models in real shapes with random weights; the 4-layer SmolLM2 keeps earlier figures comparable. */
export const SHAPES: Record<string, object> = {
  'smollm2-135m-4l': { ...SMOLLM2_135M, num_hidden_layers: 4, max_position_embeddings: 2048 },
  'smollm2-135m': SMOLLM2_135M,
  'qwen2.5-0.5b': QWEN25_05B,
  // Qwen2.5-0.5B at batch 4 × 256 outgrows the 4 GiB wasm heap; 4 of its layers show the rest of its peak.
  'qwen2.5-0.5b-4l': { ...QWEN25_05B, num_hidden_layers: 4 },
  // The 1.5–1.7B models fit a wasm heap only with packed weights (`--weights q8_0` or `nf4`).
  'qwen2.5-1.5b': QWEN25_15B,
  'smollm2-1.7b': SMOLLM2_17B,
  'qwen3-1.7b': QWEN3_17B,
};

/**
 * A model of `args` with random weights, made one checkpoint tensor at a time: buildModel packs or uploads
 * each before asking for the next, so a 1.5B model never has a float32 copy of the whole on the host (the
 * largest array at once is the vocabulary matrix, 0.9 GB for Qwen's).
 */
export function randomModel(args: ModelArgs, seed: number, options: BuildOptions = {}): LlamaModel {
  const rng = createRng(seed);
  return buildModel(
    args,
    (name, shape) => {
      const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
      if (name.endsWith('norm.weight')) data.fill(1);
      else for (let i = 0; i < data.length; i++) data[i] = (rng.next() - 0.5) * 0.04;
      return { shape, data };
    },
    options,
  );
}

/** A model of one of SHAPES, with random weights. */
export function shapedModel(name: string, options: BuildOptions = {}): LlamaModel {
  const config = SHAPES[name];
  if (!config) throw new Error(`Unknown model shape "${name}"; known: ${Object.keys(SHAPES).join(', ')}.`);
  return randomModel(parseModelConfig(config), 1, options);
}
