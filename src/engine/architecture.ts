/**
 * One description per architecture family: what config.json says that the family reads its own way, the
 * per-layer recipe (norms, activation, attention), the checkpoint's tensor names and llama.cpp's names for
 * them. Parameter counts, FLOPs, memory, LoRA targets, PEFT names and the GGUF export derive from these, so
 * adding a family means adding one description here (and its tests).
 */

/** A decoder layer's norms, as the checkpoints name them. */
export type LayerNormName =
  'input_layernorm' | 'post_attention_layernorm' | 'pre_feedforward_layernorm' | 'post_feedforward_layernorm';

/** Where a layer's norms sit. */
export type NormPlacement =
  /** h = x + attn(input_layernorm(x)); out = h + mlp(post_attention_layernorm(h)). */
  | 'pre'
  /**
   * Gemma's sandwich: h = x + post_attention_layernorm(attn(input_layernorm(x)));
   * out = h + post_feedforward_layernorm(mlp(pre_feedforward_layernorm(h))).
   */
  | 'sandwich';

/** RMSNorm's weighting: x̂·w, or Gemma's x̂·(1 + w) (its checkpoints store w − 1). */
export type NormKind = 'weight' | 'one-plus-weight';

/** The gate of the gated MLP: SwiGLU's silu, or GeGLU's GELU with the tanh approximation. */
export type Activation = 'silu' | 'gelu_tanh';

/** One layer's attention: which keys a query sees and how positions rotate. */
export interface LayerAttention {
  /** A query sees the keys of at most this many latest positions, itself included (null: all before it). */
  window: number | null;
  ropeTheta: number;
}

/** The projections LoRA can adapt, with the module that holds each in a decoder layer (PEFT's names). */
export const PROJECTION_PARENTS = {
  q_proj: 'self_attn',
  k_proj: 'self_attn',
  v_proj: 'self_attn',
  o_proj: 'self_attn',
  gate_proj: 'mlp',
  up_proj: 'mlp',
  down_proj: 'mlp',
} as const;
export type ProjectionName = keyof typeof PROJECTION_PARENTS;
export const PROJECTIONS = Object.keys(PROJECTION_PARENTS) as ProjectionName[];

export type FamilyName = 'llama' | 'qwen2' | 'qwen3' | 'gemma3';

/** How a description's hooks read config.json: config.ts's checked readers. */
export interface ConfigReader {
  raw: Record<string, unknown>;
  positiveInt(key: string, fallback?: number): number;
  positiveNumber(key: string, fallback: number): number;
  /** Throws config.ts's error for a damaged config.json, starting with `message`. */
  damaged(message: string): never;
}

/** What the attention hook settles: each layer's kind, and the two scales. */
export interface AttentionSettings {
  layers: LayerAttention[];
  /** Scores are q·kᵀ times this. */
  scale: number;
  /** Embedding rows are multiplied by this. */
  embedScale: number;
}

/** The model's shape as the attention hook needs it. */
interface AttentionShape {
  numLayers: number;
  hiddenSize: number;
  headDim: number;
  ropeTheta: number;
}

export interface FamilyDescription {
  family: FamilyName;
  /** config.json's model_type values the family reads. */
  modelTypes: readonly string[];
  /** Models of the family people know, for messages. */
  examples: string;
  /** The layer's norms, in the order the forward pass applies them. */
  layerNorms: readonly LayerNormName[];
  normPlacement: NormPlacement;
  normKind: NormKind;
  activation: Activation;
  /** The activation names config.json may give for `activation` (hidden_act or hidden_activation). */
  activationNames: readonly string[];
  /** config.json's tie_word_embeddings when absent, as transformers' config class defaults it. */
  tiedByDefault: boolean;
  /** Defaults of transformers' config class: head_dim (null: hidden_size / heads), rope_theta, context. */
  defaults: { headDim: number | null; ropeTheta: number; maxPositions: number };
  /** Biases: on q/k/v always or when attention_bias is set; on o_proj never or then. */
  biases: { qkv: 'always' | 'attention_bias'; o: 'never' | 'attention_bias' };
  /** RMSNorm over each head's query and key before RoPE. */
  qkNorm: boolean;
  /** config.json keys webtune does not implement for the family: refused when set (not null or false). */
  refused: readonly string[];
  /** Each layer's window and RoPE base, the attention scale and the embedding scale. */
  attention(read: ConfigReader, shape: AttentionShape): AttentionSettings;
  /**
   * llama.cpp's architecture name and its names for a layer's tensors (keyed by Hugging Face's, after
   * model.layers.N.).
   */
  gguf: { architecture: string; layerTensors: Readonly<Record<string, string>> };
}

const GGUF_COMMON: Record<string, string> = {
  input_layernorm: 'attn_norm',
  'self_attn.q_proj': 'attn_q',
  'self_attn.k_proj': 'attn_k',
  'self_attn.v_proj': 'attn_v',
  'self_attn.o_proj': 'attn_output',
  'mlp.gate_proj': 'ffn_gate',
  'mlp.up_proj': 'ffn_up',
  'mlp.down_proj': 'ffn_down',
};
const QK_NORM_GGUF = { 'self_attn.q_norm': 'attn_q_norm', 'self_attn.k_norm': 'attn_k_norm' };

/**
 * Every layer attends to every earlier position (Mistral: within sliding_window, MistralConfig's default
 * 4096, null for none), at one RoPE base, scaled by head_dim^-½; no embedding scale.
 */
function causalAttention(read: ConfigReader, shape: AttentionShape): AttentionSettings {
  const mistral = read.raw.model_type === 'mistral' && read.raw.sliding_window !== null;
  const window = mistral ? read.positiveInt('sliding_window', 4096) : null;
  return {
    layers: Array.from({ length: shape.numLayers }, () => ({ window, ropeTheta: shape.ropeTheta })),
    scale: 1 / Math.sqrt(shape.headDim),
    embedScale: 1,
  };
}

/**
 * Gemma 3: `layer_types` names each layer "sliding_attention" (window sliding_window, RoPE base
 * rope_local_base_freq) or "full_attention" (rope_theta); older configs say sliding_window_pattern instead,
 * every pattern-th layer full. Scores scale by query_pre_attn_scalar^-½; embeddings by √hidden_size, which
 * transformers holds in the weights' dtype (float32 here).
 */
function gemma3Attention(read: ConfigReader, shape: AttentionShape): AttentionSettings {
  const window = read.positiveInt('sliding_window', 4096);
  const localTheta = read.positiveNumber('rope_local_base_freq', 10000);
  const types = read.raw.layer_types;
  let sliding: boolean[];
  if (types != null) {
    if (
      !Array.isArray(types) ||
      types.length !== shape.numLayers ||
      types.some((t) => t !== 'sliding_attention' && t !== 'full_attention')
    )
      read.damaged(
        `config.json: layer_types must list "sliding_attention" or "full_attention" for each of the ${shape.numLayers} layers.`,
      );
    sliding = types.map((t) => t === 'sliding_attention');
  } else {
    const pattern = read.positiveInt('sliding_window_pattern', 6);
    sliding = Array.from({ length: shape.numLayers }, (_, i) => (i + 1) % pattern !== 0);
  }
  return {
    layers: sliding.map((s) =>
      s ? { window, ropeTheta: localTheta } : { window: null, ropeTheta: shape.ropeTheta },
    ),
    scale: 1 / Math.sqrt(read.positiveNumber('query_pre_attn_scalar', 256)),
    embedScale: Math.fround(Math.sqrt(shape.hiddenSize)),
  };
}

const LLAMA_LIKE = {
  layerNorms: ['input_layernorm', 'post_attention_layernorm'],
  normPlacement: 'pre',
  normKind: 'weight',
  activation: 'silu',
  activationNames: ['silu'],
  tiedByDefault: false,
  defaults: { headDim: null, ropeTheta: 10000, maxPositions: 2048 },
  biases: { qkv: 'attention_bias', o: 'attention_bias' },
  qkNorm: false,
  refused: [],
  attention: causalAttention,
} as const;

export const FAMILIES: readonly FamilyDescription[] = [
  {
    family: 'llama',
    modelTypes: ['llama', 'mistral'],
    examples: 'SmolLM2, Llama, Mistral',
    ...LLAMA_LIKE,
    gguf: { architecture: 'llama', layerTensors: { ...GGUF_COMMON, post_attention_layernorm: 'ffn_norm' } },
  },
  {
    family: 'qwen2',
    modelTypes: ['qwen2'],
    examples: 'Qwen2.5',
    ...LLAMA_LIKE,
    // Qwen2's q/k/v always have biases and its o_proj never.
    biases: { qkv: 'always', o: 'never' },
    refused: ['use_sliding_window'],
    gguf: { architecture: 'qwen2', layerTensors: { ...GGUF_COMMON, post_attention_layernorm: 'ffn_norm' } },
  },
  {
    family: 'qwen3',
    modelTypes: ['qwen3'],
    examples: 'Qwen3',
    ...LLAMA_LIKE,
    qkNorm: true,
    refused: ['use_sliding_window'],
    gguf: {
      architecture: 'qwen3',
      layerTensors: { ...GGUF_COMMON, ...QK_NORM_GGUF, post_attention_layernorm: 'ffn_norm' },
    },
  },
  {
    family: 'gemma3',
    modelTypes: ['gemma3_text'],
    examples: 'Gemma 3 270M and 1B',
    layerNorms: [
      'input_layernorm',
      'post_attention_layernorm',
      'pre_feedforward_layernorm',
      'post_feedforward_layernorm',
    ],
    normPlacement: 'sandwich',
    normKind: 'one-plus-weight',
    activation: 'gelu_tanh',
    activationNames: ['gelu_pytorch_tanh'],
    tiedByDefault: true,
    defaults: { headDim: 256, ropeTheta: 1_000_000, maxPositions: 131072 },
    biases: { qkv: 'attention_bias', o: 'attention_bias' },
    qkNorm: true,
    refused: ['final_logit_softcapping', 'attn_logit_softcapping', 'use_bidirectional_attention'],
    attention: gemma3Attention,
    gguf: {
      architecture: 'gemma3',
      layerTensors: {
        ...GGUF_COMMON,
        ...QK_NORM_GGUF,
        post_attention_layernorm: 'post_attention_norm',
        pre_feedforward_layernorm: 'ffn_norm',
        post_feedforward_layernorm: 'post_ffw_norm',
      },
    },
  },
];

export const SUPPORTED_MODEL_TYPES = FAMILIES.flatMap((f) => f.modelTypes);

/** The family that reads a config.json of this model_type; undefined when none does. */
export function familyOf(modelType: string): FamilyDescription | undefined {
  return FAMILIES.find((f) => f.modelTypes.includes(modelType));
}

/** The description of a family by name (a parsed config's `family`). */
export function familyDescription(family: FamilyName): FamilyDescription {
  return FAMILIES.find((f) => f.family === family)!;
}
