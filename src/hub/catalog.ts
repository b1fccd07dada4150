/**
 * Known-good models to fine-tune: small instruct models of the supported families. Shapes are those of
 * each model's config.json, so sizes and memory can be shown before anything is downloaded; the license
 * shown after loading is the one the model card states.
 */
import { parameterCount, parseModelConfig, type ModelArgs } from '../engine/config';

export interface CatalogModel {
  id: string;
  summary: string;
  /** License in the model card's front matter. */
  license: string;
  args: ModelArgs;
  parameters: number;
  /** The weights are stored in bfloat16 on the Hub: two bytes per parameter. */
  downloadBytes: number;
  /** The fields of the model's config.json the engine reads, as published. */
  config: Readonly<Record<string, unknown>>;
  /**
   * The Hub serves the files only to a signed-in person who has accepted the model's licence (Gemma's):
   * the download needs their access token.
   */
  gated: boolean;
}

const entry = (
  id: string,
  summary: string,
  license: string,
  config: Record<string, unknown>,
  gated = false,
): CatalogModel => {
  const args = parseModelConfig(config);
  const parameters = parameterCount(args);
  return { id, summary, license, args, parameters, downloadBytes: parameters * 2, config, gated };
};

/** Gemma 3's text models: five sliding-window layers, then one full-attention layer. */
const gemma3Layers = (count: number) =>
  Array.from({ length: count }, (_, i) => ((i + 1) % 6 === 0 ? 'full_attention' : 'sliding_attention'));

export const DEFAULT_MODEL = 'HuggingFaceTB/SmolLM2-135M-Instruct';

export const CATALOG: CatalogModel[] = [
  entry(DEFAULT_MODEL, 'Small and quick: the best first try.', 'apache-2.0', {
    model_type: 'llama',
    hidden_size: 576,
    intermediate_size: 1536,
    num_hidden_layers: 30,
    num_attention_heads: 9,
    num_key_value_heads: 3,
    vocab_size: 49152,
    max_position_embeddings: 8192,
    rope_theta: 100000,
    tie_word_embeddings: true,
    rms_norm_eps: 1e-5,
  }),
  entry('HuggingFaceTB/SmolLM2-360M-Instruct', 'Better answers, about three times slower.', 'apache-2.0', {
    model_type: 'llama',
    hidden_size: 960,
    intermediate_size: 2560,
    num_hidden_layers: 32,
    num_attention_heads: 15,
    num_key_value_heads: 5,
    vocab_size: 49152,
    max_position_embeddings: 8192,
    rope_theta: 100000,
    tie_word_embeddings: true,
    rms_norm_eps: 1e-5,
  }),
  entry('Qwen/Qwen2.5-0.5B-Instruct', 'Multilingual, large vocabulary.', 'apache-2.0', {
    model_type: 'qwen2',
    hidden_size: 896,
    intermediate_size: 4864,
    num_hidden_layers: 24,
    num_attention_heads: 14,
    num_key_value_heads: 2,
    vocab_size: 151936,
    max_position_embeddings: 32768,
    rope_theta: 1000000,
    tie_word_embeddings: true,
    rms_norm_eps: 1e-6,
  }),
  entry('Qwen/Qwen3-0.6B', 'Newest of the small ones; needs the most memory of them.', 'apache-2.0', {
    model_type: 'qwen3',
    hidden_size: 1024,
    intermediate_size: 3072,
    num_hidden_layers: 28,
    num_attention_heads: 16,
    num_key_value_heads: 8,
    head_dim: 128,
    vocab_size: 151936,
    max_position_embeddings: 40960,
    rope_theta: 1000000,
    tie_word_embeddings: true,
    rms_norm_eps: 1e-6,
  }),
  // Gemma 3's small text models (Google's licence; gated: the Hub wants the person's token and their
  // acceptance of the licence).
  entry(
    'google/gemma-3-270m-it',
    'Made for small task-specific fine-tunes on the device; gated (Hub token, licence accepted).',
    'gemma',
    {
      model_type: 'gemma3_text',
      hidden_size: 640,
      intermediate_size: 2048,
      num_hidden_layers: 18,
      num_attention_heads: 4,
      num_key_value_heads: 1,
      head_dim: 256,
      vocab_size: 262144,
      max_position_embeddings: 32768,
      rope_theta: 1000000,
      rope_local_base_freq: 10000,
      sliding_window: 512,
      layer_types: gemma3Layers(18),
      query_pre_attn_scalar: 256,
      hidden_activation: 'gelu_pytorch_tanh',
      rms_norm_eps: 1e-6,
      tie_word_embeddings: true,
    },
    true,
  ),
  entry(
    'google/gemma-3-1b-it',
    "Gemma 3 270M's bigger sibling; gated (Hub token, licence accepted).",
    'gemma',
    {
      model_type: 'gemma3_text',
      hidden_size: 1152,
      intermediate_size: 6912,
      num_hidden_layers: 26,
      num_attention_heads: 4,
      num_key_value_heads: 1,
      head_dim: 256,
      vocab_size: 262144,
      max_position_embeddings: 32768,
      rope_theta: 1000000,
      rope_local_base_freq: 10000,
      sliding_window: 512,
      sliding_window_pattern: 6,
      query_pre_attn_scalar: 256,
      hidden_activation: 'gelu_pytorch_tanh',
      rms_norm_eps: 1e-6,
      tie_word_embeddings: true,
    },
    true,
  ),
  // The models people fine-tune for useful work start here. Their 32-bit weights alone (6–8 GB) are past
  // what a tab holds; they train with the base in 8 or 4 bits (Base weights, Automatic picks it).
  entry(
    'Qwen/Qwen2.5-1.5B-Instruct',
    'Useful answers in many languages; trains in 8 or 4 bits, slowly on a CPU.',
    'apache-2.0',
    {
      model_type: 'qwen2',
      hidden_size: 1536,
      intermediate_size: 8960,
      num_hidden_layers: 28,
      num_attention_heads: 12,
      num_key_value_heads: 2,
      vocab_size: 151936,
      max_position_embeddings: 32768,
      rope_theta: 1000000,
      tie_word_embeddings: true,
      rms_norm_eps: 1e-6,
    },
  ),
  entry(
    'HuggingFaceTB/SmolLM2-1.7B-Instruct',
    'The largest SmolLM2; trains in 8 or 4 bits, slowly on a CPU.',
    'apache-2.0',
    {
      model_type: 'llama',
      hidden_size: 2048,
      intermediate_size: 8192,
      num_hidden_layers: 24,
      num_attention_heads: 32,
      num_key_value_heads: 32,
      vocab_size: 49152,
      max_position_embeddings: 8192,
      rope_theta: 130000,
      tie_word_embeddings: true,
      rms_norm_eps: 1e-5,
    },
  ),
  entry('Qwen/Qwen3-1.7B', 'Qwen3 at 1.7B; trains in 8 or 4 bits, slowly on a CPU.', 'apache-2.0', {
    model_type: 'qwen3',
    hidden_size: 2048,
    intermediate_size: 6144,
    num_hidden_layers: 28,
    num_attention_heads: 16,
    num_key_value_heads: 8,
    head_dim: 128,
    vocab_size: 151936,
    max_position_embeddings: 40960,
    rope_theta: 1000000,
    tie_word_embeddings: true,
    rms_norm_eps: 1e-6,
  }),
];

/** A catalog model's config.json fields (the bench builds random models in these shapes). */
export function catalogConfig(id: string): Readonly<Record<string, unknown>> {
  const model = CATALOG.find((m) => m.id === id);
  if (!model) throw new Error(`No catalog model ${id}.`);
  return model.config;
}
