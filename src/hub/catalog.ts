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
}

const entry = (
  id: string,
  summary: string,
  license: string,
  config: Record<string, unknown>,
): CatalogModel => {
  const args = parseModelConfig(config);
  const parameters = parameterCount(args);
  return { id, summary, license, args, parameters, downloadBytes: parameters * 2, config };
};

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
