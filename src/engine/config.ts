/**
 * ModelArgs: everything the engine needs from a Hugging Face config.json, with every default and
 * derived value settled here, so the rest of the code never reads raw JSON.
 */

import {
  describe,
  familyOf,
  PROJECTION_PARENTS,
  PROJECTIONS,
  SUPPORTED_MODEL_TYPES,
  type Activation,
  type FamilyName,
  type LayerAttention,
  type NormKind,
  type NormPlacement,
  type ProjectionName,
} from './architecture';

export { SUPPORTED_MODEL_TYPES };
export type ModelType = string;

export interface ModelArgs {
  /** config.json's model_type, as given. */
  modelType: ModelType;
  /** The architecture family (architecture.ts) whose description the rest derives from. */
  family: FamilyName;
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
  /** Qwen3, Gemma 3: RMSNorm over each head's query and key before RoPE. */
  qkNorm: boolean;
  /** The family's recipe (architecture.ts): where the norms sit, how they weight, the MLP's gate. */
  normPlacement: NormPlacement;
  normKind: NormKind;
  activation: Activation;
  /**
   * Each layer's attention: its window (null: every earlier position) and RoPE base. Gemma 3 mixes
   * sliding-window layers with their own base and full-attention ones.
   */
  layerAttention: LayerAttention[];
  /** Scores are q·kᵀ times this: head_dim^-½, or Gemma's query_pre_attn_scalar^-½. */
  attentionScale: number;
  /** Embedding rows are multiplied by this: 1, or Gemma's √hidden_size rounded to float32. */
  embedScale: number;
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
  const description = familyOf(modelType);
  if (!description) {
    const gemma =
      modelType === 'gemma3'
        ? ' A Gemma 3 model of 4B or more is multimodal ("gemma3"); webtune reads the text-only ones ("gemma3_text": 270M, 1B).'
        : '';
    throw new ModelConfigError(
      `Model type "${modelType || '(missing)'}" is not supported. webtune supports ${SUPPORTED_MODEL_TYPES.join(', ')} (decoders such as SmolLM2, Qwen2.5, Qwen3 and Gemma 3).${gemma}`,
    );
  }
  const family = description.family;
  const rope = c.rope_scaling as { rope_type?: string; type?: string } | null | undefined;
  const ropeType = rope ? (rope.rope_type ?? rope.type) : undefined;
  if (rope && ropeType !== 'default') {
    throw new ModelConfigError(
      `RoPE scaling "${ropeType}" is not supported yet; webtune implements plain RoPE. Choose a model without rope_scaling.`,
    );
  }
  const act = c.hidden_activation ?? c.hidden_act ?? description.activationNames[0];
  if (!description.activationNames.includes(String(act)))
    throw new ModelConfigError(
      `Activation "${String(act)}" is not supported; ${modelType} models use ${description.activationNames.join(', ')}.`,
    );
  for (const key of ['final_logit_softcapping', 'attn_logit_softcapping', 'use_bidirectional_attention']) {
    if (c[key] != null && c[key] !== false)
      throw new ModelConfigError(
        `config.json sets ${key} to ${shown(c[key])}; webtune does not implement it. Choose a model without it.`,
      );
  }
  if (c.use_sliding_window === true)
    throw new ModelConfigError(
      `config.json sets use_sliding_window; webtune does not implement ${modelType}'s sliding window. Choose a model without it.`,
    );

  const hiddenSize = positiveInt(c, 'hidden_size');
  const numHeads = positiveInt(c, 'num_attention_heads');
  const numKvHeads = positiveInt(c, 'num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new ModelConfigError(
      `config.json: num_key_value_heads is ${numKvHeads}; it must divide num_attention_heads (${numHeads}). ${DAMAGED}`,
    );
  }
  // Gemma3TextConfig's head_dim defaults to 256; the others' to hidden_size / heads.
  const headDim =
    c.head_dim == null ? (family === 'gemma3' ? 256 : hiddenSize / numHeads) : positiveInt(c, 'head_dim');
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) {
    throw new ModelConfigError(
      `config.json: ${c.head_dim == null ? `head dimension (hidden_size ${hiddenSize} / num_attention_heads ${numHeads})` : 'head_dim'} is ${headDim}; it must be an even integer for rotary embeddings. ${DAMAGED}`,
    );
  }
  const numLayers = positiveInt(c, 'num_hidden_layers');
  const attentionBias = c.attention_bias === true;
  const gemma = family === 'gemma3';
  const ropeTheta = positiveNumber(c, 'rope_theta', gemma ? 1_000_000 : 10000);
  return {
    modelType,
    family,
    hiddenSize,
    intermediateSize: positiveInt(c, 'intermediate_size'),
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: positiveInt(c, 'vocab_size'),
    rmsNormEps: positiveNumber(c, 'rms_norm_eps', 1e-6),
    ropeTheta,
    maxPositions: positiveInt(c, 'max_position_embeddings', gemma ? 131072 : 2048),
    tieWordEmbeddings: (c.tie_word_embeddings ?? description.tiedByDefault) === true,
    qkvBias: family === 'qwen2' || attentionBias,
    oBias: family !== 'qwen2' && attentionBias,
    qkNorm: family === 'qwen3' || gemma,
    normPlacement: description.normPlacement,
    normKind: description.normKind,
    activation: description.activation,
    layerAttention: gemma
      ? gemmaLayers(c, numLayers, ropeTheta)
      : Array.from({ length: numLayers }, () => ({ window: mistralWindow(c), ropeTheta })),
    attentionScale: 1 / Math.sqrt(gemma ? positiveNumber(c, 'query_pre_attn_scalar', 256) : headDim),
    // transformers multiplies by √hidden_size held in the weights' dtype (float32 here).
    embedScale: gemma ? Math.fround(Math.sqrt(hiddenSize)) : 1,
    bosTokenId: typeof c.bos_token_id === 'number' ? c.bos_token_id : null,
    eosTokenIds: tokenIds(c.eos_token_id),
  };
}

/** Mistral attends within sliding_window positions (MistralConfig's default 4096; null: all). */
function mistralWindow(c: Record<string, unknown>): number | null {
  if (c.model_type !== 'mistral' || c.sliding_window === null) return null;
  return positiveInt(c, 'sliding_window', 4096);
}

/**
 * Gemma 3's layers: `layer_types` names each "sliding_attention" (window sliding_window, RoPE base
 * rope_local_base_freq) or "full_attention" (rope_theta); older configs say sliding_window_pattern
 * instead, every pattern-th layer full.
 */
function gemmaLayers(c: Record<string, unknown>, numLayers: number, ropeTheta: number): LayerAttention[] {
  const window = positiveInt(c, 'sliding_window', 4096);
  const localTheta = positiveNumber(c, 'rope_local_base_freq', 10000);
  const types = c.layer_types;
  let sliding: boolean[];
  if (types != null) {
    if (
      !Array.isArray(types) ||
      types.length !== numLayers ||
      types.some((t) => t !== 'sliding_attention' && t !== 'full_attention')
    )
      throw new ModelConfigError(
        `config.json: layer_types must list "sliding_attention" or "full_attention" for each of the ${numLayers} layers. ${DAMAGED}`,
      );
    sliding = types.map((t) => t === 'sliding_attention');
  } else {
    const pattern = positiveInt(c, 'sliding_window_pattern', 6);
    sliding = Array.from({ length: numLayers }, (_, i) => (i + 1) % pattern !== 0);
  }
  return sliding.map((s) => (s ? { window, ropeTheta: localTheta } : { window: null, ropeTheta }));
}

/**
 * What is wrong when a checkpoint cannot give `a` its output layer: an untied model reads lm_head.weight,
 * and nothing stands in for it (transformers would start it from random values). Null when it can.
 */
export function missingOutputLayer(a: ModelArgs, hasTensor: (name: string) => boolean): string | null {
  if (a.tieWordEmbeddings || hasTensor('lm_head.weight')) return null;
  return `The checkpoint has no tensor "lm_head.weight", and config.json does not set "tie_word_embeddings": true, so the model's output layer must be that tensor (transformers reads a missing tie_word_embeddings as false for ${a.modelType}). If the model shares its embedding with its output layer, add "tie_word_embeddings": true to config.json; otherwise use the complete checkpoint.`;
}

/**
 * Every tensor of the checkpoint, as Hugging Face names it, with its shape: the family's description
 * (architecture.ts) says which norms a layer holds; the flags which biases and q/k norms.
 */
export function checkpointShapes(a: ModelArgs): [string, number[]][] {
  const tensors: [string, number[]][] = [['model.embed_tokens.weight', [a.vocabSize, a.hiddenSize]]];
  const biases: Partial<Record<ProjectionName, boolean>> = {
    q_proj: a.qkvBias,
    k_proj: a.qkvBias,
    v_proj: a.qkvBias,
    o_proj: a.oBias,
  };
  for (let i = 0; i < a.numLayers; i++) {
    const p = `model.layers.${i}`;
    for (const norm of describe(a.family).layerNorms) tensors.push([`${p}.${norm}.weight`, [a.hiddenSize]]);
    for (const name of PROJECTIONS) {
      const { in: inF, out } = linearShape(a, name);
      const path = `${p}.${PROJECTION_PARENTS[name]}.${name}`;
      tensors.push([`${path}.weight`, [out, inF]]);
      if (biases[name]) tensors.push([`${path}.bias`, [out]]);
    }
    if (a.qkNorm)
      tensors.push(
        [`${p}.self_attn.q_norm.weight`, [a.headDim]],
        [`${p}.self_attn.k_norm.weight`, [a.headDim]],
      );
  }
  tensors.push(['model.norm.weight', [a.hiddenSize]]);
  if (!a.tieWordEmbeddings) tensors.push(['lm_head.weight', [a.vocabSize, a.hiddenSize]]);
  return tensors;
}

/** Parameter count of the base model: its checkpoint's tensors' sizes. */
export function parameterCount(a: ModelArgs): number {
  return checkpointShapes(a).reduce((n, [, shape]) => n + shape.reduce((x, y) => x * y, 1), 0);
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
