/**
 * ModelArgs: everything the engine needs from a Hugging Face config.json, with every default and
 * derived value settled here, so the rest of the code never reads raw JSON.
 */

export const SUPPORTED_MODEL_TYPES = ['llama', 'mistral', 'qwen2', 'qwen3'] as const;
export type ModelType = (typeof SUPPORTED_MODEL_TYPES)[number];

export interface ModelArgs {
  modelType: ModelType;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  maxPositions: number;
  /**
   * lm_head shares the embedding matrix. Only when config.json says so: transformers' Llama, Mistral, Qwen2
   * and Qwen3 configs all default tie_word_embeddings to false, so a config without it has its own lm_head.
   */
  tieWordEmbeddings: boolean;
  /** Bias on q/k/v projections (Qwen2 always; Llama when attention_bias is set, which also covers o_proj). */
  qkvBias: boolean;
  oBias: boolean;
  /** Qwen3: RMSNorm over each head's query and key before RoPE. */
  qkNorm: boolean;
  bosTokenId: number | null;
  eosTokenIds: number[];
}

export class ModelConfigError extends Error {
  override name = 'ModelConfigError';
}

const DAMAGED = 'The file is damaged or not a Llama-family config.';

/** `12`, `0`, `-1`, `"abc"`, `null`: the value as config.json spells it, for messages. */
const shown = (value: unknown) =>
  typeof value === 'number' ? String(value) : (JSON.stringify(value) ?? 'missing');

function positiveInt(raw: Record<string, unknown>, key: string, fallback?: number): number {
  const value = raw[key] ?? fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new ModelConfigError(
      `config.json: ${key} is ${shown(raw[key])}; it must be a positive integer. ${DAMAGED}`,
    );
  }
  return value;
}

/**
 * A finite number > 0 (rope_theta, rms_norm_eps): 0, a negative value or NaN would turn every log-prob into
 * NaN.
 */
function positiveNumber(raw: Record<string, unknown>, key: string, fallback: number): number {
  const value = raw[key] ?? fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new ModelConfigError(
      `config.json: ${key} is ${shown(raw[key])}; it must be a positive number. ${DAMAGED}`,
    );
  }
  return value;
}

function tokenIds(value: unknown): number[] {
  if (typeof value === 'number') return [value];
  if (Array.isArray(value)) return value.filter((v): v is number => typeof v === 'number');
  return [];
}

export function parseModelConfig(raw: unknown): ModelArgs {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ModelConfigError(
      'config.json is not a JSON object. Use the config.json from the model folder.',
    );
  }
  const c = raw as Record<string, unknown>;
  const modelType = String(c.model_type ?? '');
  if (!(SUPPORTED_MODEL_TYPES as readonly string[]).includes(modelType)) {
    throw new ModelConfigError(
      `Model type "${modelType || '(missing)'}" is not supported. webtune supports ${SUPPORTED_MODEL_TYPES.join(', ')} (Llama-family decoders such as SmolLM2, Qwen2.5 and Qwen3).`,
    );
  }
  const rope = c.rope_scaling as { rope_type?: string; type?: string } | null | undefined;
  const ropeType = rope ? (rope.rope_type ?? rope.type) : undefined;
  if (rope && ropeType !== 'default') {
    throw new ModelConfigError(
      `RoPE scaling "${ropeType}" is not supported yet; webtune implements plain RoPE. Choose a model without rope_scaling.`,
    );
  }
  const act = c.hidden_act ?? 'silu';
  if (act !== 'silu')
    throw new ModelConfigError(`Activation "${String(act)}" is not supported; Llama-family models use silu.`);

  const hiddenSize = positiveInt(c, 'hidden_size');
  const numHeads = positiveInt(c, 'num_attention_heads');
  const numKvHeads = positiveInt(c, 'num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new ModelConfigError(
      `config.json: num_key_value_heads is ${numKvHeads}; it must divide num_attention_heads (${numHeads}). ${DAMAGED}`,
    );
  }
  const headDim = c.head_dim == null ? hiddenSize / numHeads : positiveInt(c, 'head_dim');
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) {
    throw new ModelConfigError(
      `config.json: ${c.head_dim == null ? `head dimension (hidden_size ${hiddenSize} / num_attention_heads ${numHeads})` : 'head_dim'} is ${headDim}; it must be an even integer for rotary embeddings. ${DAMAGED}`,
    );
  }
  const attentionBias = c.attention_bias === true;
  const modelTypeTyped = modelType as ModelType;
  return {
    modelType: modelTypeTyped,
    hiddenSize,
    intermediateSize: positiveInt(c, 'intermediate_size'),
    numLayers: positiveInt(c, 'num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: positiveInt(c, 'vocab_size'),
    rmsNormEps: positiveNumber(c, 'rms_norm_eps', 1e-6),
    ropeTheta: positiveNumber(c, 'rope_theta', 10000),
    maxPositions: positiveInt(c, 'max_position_embeddings', 2048),
    tieWordEmbeddings: c.tie_word_embeddings === true,
    qkvBias: modelTypeTyped === 'qwen2' || attentionBias,
    oBias: modelTypeTyped !== 'qwen2' && attentionBias,
    qkNorm: modelTypeTyped === 'qwen3',
    bosTokenId: typeof c.bos_token_id === 'number' ? c.bos_token_id : null,
    eosTokenIds: tokenIds(c.eos_token_id),
  };
}

/**
 * What is wrong when a checkpoint cannot give `a` its output layer: an untied model reads lm_head.weight,
 * and nothing stands in for it (transformers would start it from random values). Null when it can.
 */
export function missingOutputLayer(a: ModelArgs, hasTensor: (name: string) => boolean): string | null {
  if (a.tieWordEmbeddings || hasTensor('lm_head.weight')) return null;
  return `The checkpoint has no tensor "lm_head.weight", and config.json does not set "tie_word_embeddings": true, so the model's output layer must be that tensor (transformers reads a missing tie_word_embeddings as false for ${a.modelType}). If the model shares its embedding with its output layer, add "tie_word_embeddings": true to config.json; otherwise use the complete checkpoint.`;
}

/** Parameter count of the base model, from its shapes. */
export function parameterCount(a: ModelArgs): number {
  const attn = a.hiddenSize * a.headDim * (2 * a.numHeads + 2 * a.numKvHeads);
  const bias = (a.qkvBias ? a.headDim * (a.numHeads + 2 * a.numKvHeads) : 0) + (a.oBias ? a.hiddenSize : 0);
  const qkNorm = a.qkNorm ? 2 * a.headDim : 0;
  const mlp = 3 * a.hiddenSize * a.intermediateSize;
  const layer = attn + bias + qkNorm + mlp + 2 * a.hiddenSize;
  const embed = a.vocabSize * a.hiddenSize * (a.tieWordEmbeddings ? 1 : 2);
  return a.numLayers * layer + embed + a.hiddenSize;
}

/** Input and output sizes of each LoRA-able linear, as PEFT names them. */
export function linearShape(a: ModelArgs, target: string): { in: number; out: number } {
  const q = a.numHeads * a.headDim;
  const kv = a.numKvHeads * a.headDim;
  switch (target) {
    case 'q_proj':
      return { in: a.hiddenSize, out: q };
    case 'k_proj':
    case 'v_proj':
      return { in: a.hiddenSize, out: kv };
    case 'o_proj':
      return { in: q, out: a.hiddenSize };
    case 'gate_proj':
    case 'up_proj':
      return { in: a.hiddenSize, out: a.intermediateSize };
    case 'down_proj':
      return { in: a.intermediateSize, out: a.hiddenSize };
    default:
      throw new Error(`Unknown LoRA target "${target}".`);
  }
}
