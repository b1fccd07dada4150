/**
 * ModelArgs: everything the engine needs from a Hugging Face config.json, with every default and
 * derived value settled here, so the rest of the code never reads raw JSON.
 */

import {
  familyDescription,
  familyOf,
  PROJECTION_PARENTS,
  PROJECTIONS,
  SUPPORTED_MODEL_TYPES,
  type Activation,
  type FamilyName,
  type ConfigReader,
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
  for (const key of description.refused) {
    if (c[key] != null && c[key] !== false)
      throw new ModelConfigError(
        `config.json sets ${key} to ${shown(c[key])}; webtune does not implement it for ${modelType}. Choose a model without it.`,
      );
  }

  const hiddenSize = positiveInt(c, 'hidden_size');
  const numHeads = positiveInt(c, 'num_attention_heads');
  const numKvHeads = positiveInt(c, 'num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new ModelConfigError(
      `config.json: num_key_value_heads is ${numKvHeads}; it must divide num_attention_heads (${numHeads}). ${DAMAGED}`,
    );
  }
  const { defaults } = description;
  const headDim =
    c.head_dim == null ? (defaults.headDim ?? hiddenSize / numHeads) : positiveInt(c, 'head_dim');
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) {
    throw new ModelConfigError(
      `config.json: ${c.head_dim == null ? `head dimension (hidden_size ${hiddenSize} / num_attention_heads ${numHeads})` : 'head_dim'} is ${headDim}; it must be an even integer for rotary embeddings. ${DAMAGED}`,
    );
  }
  const numLayers = positiveInt(c, 'num_hidden_layers');
  const attentionBias = c.attention_bias === true;
  const ropeTheta = positiveNumber(c, 'rope_theta', defaults.ropeTheta);
  const reader: ConfigReader = {
    raw: c,
    positiveInt: (key, fallback) => positiveInt(c, key, fallback),
    positiveNumber: (key, fallback) => positiveNumber(c, key, fallback),
    damaged: (message) => {
      throw new ModelConfigError(`${message} ${DAMAGED}`);
    },
  };
  const attention = description.attention(reader, { numLayers, hiddenSize, headDim, ropeTheta });
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
    maxPositions: positiveInt(c, 'max_position_embeddings', defaults.maxPositions),
    tieWordEmbeddings: (c.tie_word_embeddings ?? description.tiedByDefault) === true,
    qkvBias: description.biases.qkv === 'always' || attentionBias,
    oBias: description.biases.o === 'attention_bias' && attentionBias,
    qkNorm: description.qkNorm,
    normPlacement: description.normPlacement,
    normKind: description.normKind,
    activation: description.activation,
    layerAttention: attention.layers,
    attentionScale: attention.scale,
    embedScale: attention.embedScale,
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
    for (const norm of familyDescription(a.family).layerNorms)
      tensors.push([`${p}.${norm}.weight`, [a.hiddenSize]]);
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
