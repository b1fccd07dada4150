/**
 * A model, or a LoRA adapter, as the GGUF file llama.cpp's convert_hf_to_gguf.py / convert_lora_to_gguf.py
 * would write for it: the same metadata keys, tensor names, tokenizer description and, for the `llama`
 * architecture, the same reordering of q/k rows (llama.cpp's RoPE rotates adjacent pairs of a head's
 * dimensions, Hugging Face's rotates the two halves; permuting the rows makes one equal the other).
 */
import type { ModelArgs } from '../engine/config';
import type { ModelFiles } from '../engine/model-files';
import type { CheckpointTensor } from './checkpoint-tensors';
import { modelArgsOf } from './checkpoint-tensors';
import { arr, bool, f32, str, u32, writeGguf, type GgmlType, type GgufTensor, type GgufValue } from './gguf';
import { loraScale, parseModulePath, type AdapterWeights, type LoraTarget } from './peft';
import type { ByteSink } from './sink';

export type GgufDtype = 'f32' | 'f16';
export interface GgufOptions {
  /** Type of the matrices; 1-D tensors (norms, biases) stay f32 either way, as llama.cpp's converter keeps them. */
  dtype: GgufDtype;
}

export class GgufExportError extends Error {
  override name = 'GgufExportError';
}

/** llama.cpp's name for the architecture: Mistral runs as `llama`. */
export function ggufArchitecture(args: Pick<ModelArgs, 'modelType'>): 'llama' | 'qwen2' | 'qwen3' {
  return args.modelType === 'mistral' ? 'llama' : args.modelType;
}

/** llama_ftype: 0 all f32, 1 mostly f16. */
const FILE_TYPE: Record<GgufDtype, number> = { f32: 0, f16: 1 };

// ---- tensors -------------------------------------------------------------------------------------

const LAYER_TENSORS: Record<string, string> = {
  'input_layernorm': 'attn_norm',
  'post_attention_layernorm': 'ffn_norm',
  'self_attn.q_proj': 'attn_q',
  'self_attn.k_proj': 'attn_k',
  'self_attn.v_proj': 'attn_v',
  'self_attn.o_proj': 'attn_output',
  'self_attn.q_norm': 'attn_q_norm',
  'self_attn.k_norm': 'attn_k_norm',
  'mlp.gate_proj': 'ffn_gate',
  'mlp.up_proj': 'ffn_up',
  'mlp.down_proj': 'ffn_down',
};

/** The GGUF name of a Hugging Face tensor; null for what llama.cpp recomputes (rotary inv_freq). */
export function ggufTensorName(hfName: string): string | null {
  if (hfName === 'model.embed_tokens.weight') return 'token_embd.weight';
  if (hfName === 'model.norm.weight') return 'output_norm.weight';
  if (hfName === 'lm_head.weight') return 'output.weight';
  if (/\.rotary_emb\.inv_freq$/.test(hfName)) return null;
  const match = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(hfName);
  const mapped = match && LAYER_TENSORS[match[2]];
  if (!match || !mapped) {
    throw new GgufExportError(`The checkpoint tensor "${hfName}" has no GGUF name webtune knows. Export a Llama, Mistral, Qwen2 or Qwen3 checkpoint as Hugging Face saves it.`);
  }
  return `blk.${match[1]}.${mapped}.${match[3]}`;
}

/**
 * Reorders the rows of a q or k projection (weight, bias or LoRA B) from Hugging Face's rotate-half
 * layout to llama.cpp's interleaved one: within each head, row j·(d/2)+i moves to 2i+j.
 */
export function permuteRowsForRope(values: Float32Array, rows: number, heads: number): Float32Array {
  const width = values.length / rows;
  const headDim = rows / heads;
  if (!Number.isInteger(width) || !Number.isInteger(headDim) || headDim % 2 !== 0) {
    throw new GgufExportError(`Cannot split ${rows} rows into ${heads} heads of even size for llama.cpp's RoPE layout; the config does not match the weights.`);
  }
  const half = headDim / 2;
  const out = new Float32Array(values.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const from = (h * headDim + j * half + i) * width;
        const to = (h * headDim + 2 * i + j) * width;
        out.set(values.subarray(from, from + width), to);
      }
    }
  }
  return out;
}

/** How many heads a q/k tensor's rows are permuted over under `llama`; undefined when it is not permuted. */
function ropeHeads(args: ModelArgs, hfName: string): number | undefined {
  if (ggufArchitecture(args) !== 'llama') return undefined;
  if (/\.self_attn\.q_proj(\.(weight|bias))?$/.test(hfName)) return args.numHeads;
  if (/\.self_attn\.k_proj(\.(weight|bias))?$/.test(hfName)) return args.numKvHeads;
  return undefined;
}

function modelTensors(args: ModelArgs, tensors: CheckpointTensor[], dtype: GgufDtype): GgufTensor[] {
  const names = new Set(tensors.map((t) => t.name));
  if (!args.tieWordEmbeddings && !names.has('lm_head.weight')) {
    throw new GgufExportError('config.json says the output layer is separate (tie_word_embeddings is false), but the checkpoint has no lm_head.weight. Use the complete checkpoint.');
  }
  const out: GgufTensor[] = [];
  for (const t of tensors) {
    const name = ggufTensorName(t.name);
    // Tied embeddings: llama.cpp reuses token_embd when there is no `output`, as the converter leaves it.
    if (name === null || (name === 'output.weight' && args.tieWordEmbeddings)) continue;
    if (t.shape.length < 1 || t.shape.length > 2) throw new GgufExportError(`The checkpoint tensor "${t.name}" has ${t.shape.length} dimensions; a Llama-family model has only vectors and matrices.`);
    const heads = ropeHeads(args, t.name);
    const type: GgmlType = t.shape.length === 1 ? 'f32' : dtype;
    out.push({
      name,
      dims: [...t.shape].reverse(),
      type,
      read: heads === undefined ? () => t.read() : () => permuteRowsForRope(t.read(), t.shape[0], heads),
    });
  }
  return out;
}

function hyperparameters(args: ModelArgs): [string, GgufValue][] {
  const arch = ggufArchitecture(args);
  const meta: [string, GgufValue][] = [
    [`${arch}.context_length`, u32(args.maxPositions)],
    [`${arch}.embedding_length`, u32(args.hiddenSize)],
    [`${arch}.block_count`, u32(args.numLayers)],
    [`${arch}.feed_forward_length`, u32(args.intermediateSize)],
    [`${arch}.attention.head_count`, u32(args.numHeads)],
    [`${arch}.attention.head_count_kv`, u32(args.numKvHeads)],
    [`${arch}.rope.freq_base`, f32(args.ropeTheta)],
    [`${arch}.attention.layer_norm_rms_epsilon`, f32(args.rmsNormEps)],
    [`${arch}.rope.dimension_count`, u32(args.headDim)],
    [`${arch}.vocab_size`, u32(args.vocabSize)],
  ];
  // llama.cpp assumes hidden / heads unless told (Qwen3 and some Llamas have a wider head).
  if (args.headDim * args.numHeads !== args.hiddenSize) {
    meta.push([`${arch}.attention.key_length`, u32(args.headDim)], [`${arch}.attention.value_length`, u32(args.headDim)]);
  }
  return meta;
}

// ---- tokenizer -----------------------------------------------------------------------------------

/** llama.cpp's token types. */
export const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => !!v && typeof v === 'object' && !Array.isArray(v);
const UNSUPPORTED = 'webtune exports SentencePiece-style vocabularies (Llama 2, Mistral, stories260K) and GPT-2 byte-level BPE (SmolLM2, Qwen); export this model with llama.cpp\'s convert_hf_to_gguf.py instead.';

function refuse(what: string): never {
  throw new GgufExportError(`Cannot describe this tokenizer to llama.cpp: ${what}. ${UNSUPPORTED}`);
}

/** tokenizer_config.json's special token text: a string or an AddedToken's content. */
function specialText(config: Json, key: string): string | null {
  const v = config[key];
  if (typeof v === 'string' && v) return v;
  if (isObject(v) && typeof v.content === 'string') return v.content;
  return null;
}

/** The pre-tokenizer steps, flattened out of any Sequence. */
function steps(section: unknown): Json[] {
  if (!isObject(section)) return [];
  if (section.type === 'Sequence') {
    const inner = (section.pretokenizers ?? section.normalizers) as unknown;
    return Array.isArray(inner) ? inner.flatMap(steps) : [];
  }
  return [section];
}

const QWEN2_PATTERN = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const LLAMA3_PATTERN = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/**
 * llama.cpp's `tokenizer.ggml.pre` for a byte-level BPE pre-tokenizer: which regular expressions split
 * the text before merging. Chosen from what the pre-tokenizer does, not from the model's name:
 * `gpt-2` is ByteLevel's own regex, `smollm` splits digits one by one first (SmolLM2), `qwen2` and
 * `llama3` are the Split patterns of those families followed by a ByteLevel without its regex.
 */
function bytePreTokenizer(json: Json): string {
  const list = steps(json.pre_tokenizer);
  const byteLevel = list.at(-1);
  if (!byteLevel || byteLevel.type !== 'ByteLevel') refuse('the pre-tokenizer does not end with ByteLevel');
  if (byteLevel.add_prefix_space === true) refuse('its ByteLevel pre-tokenizer adds a prefix space, which llama.cpp does not do');
  const before = list.slice(0, -1);
  const usesRegex = byteLevel.use_regex !== false;
  if (usesRegex && before.length === 0) return 'gpt-2';
  if (usesRegex && before.length === 1 && before[0].type === 'Digits' && before[0].individual_digits === true) return 'smollm';
  if (!usesRegex && before.length === 1 && before[0].type === 'Split') {
    const pattern = isObject(before[0].pattern) ? before[0].pattern.Regex : undefined;
    if (pattern === QWEN2_PATTERN) return 'qwen2';
    if (pattern === LLAMA3_PATTERN) return 'llama-bpe';
  }
  refuse(`its pre-tokenizer (${list.map((s) => String(s.type)).join(' → ') || 'none'}) matches none of llama.cpp's GPT-2, SmolLM, Qwen2 or Llama 3 splitters`);
}

/** Whether llama.cpp must put "▁" in front of the text, from how tokenizer.json turns spaces into "▁". */
function sentencePieceSpacePrefix(json: Json): boolean {
  const normalizers = steps(json.normalizer);
  const pre = steps(json.pre_tokenizer);
  const isReplaceSpace = (n: Json) => n.type === 'Replace' && isObject(n.pattern) && n.pattern.String === ' ' && n.content === '▁';
  if (pre.length === 0) {
    if (normalizers.length === 2 && normalizers[0].type === 'Prepend' && normalizers[0].prepend === '▁' && isReplaceSpace(normalizers[1])) return true;
    if (normalizers.length === 1 && isReplaceSpace(normalizers[0])) return false;
  } else if (normalizers.length === 0 && pre.length === 1 && pre[0].type === 'Metaspace' && (pre[0].replacement ?? '▁') === '▁') {
    const scheme = pre[0].prepend_scheme ?? (pre[0].add_prefix_space === false ? 'never' : 'always');
    if (pre[0].split !== true && (scheme === 'always' || scheme === 'first')) return true;
    if (pre[0].split !== true && scheme === 'never') return false;
  }
  refuse('its normalizer and pre-tokenizer do not turn spaces into "▁" the way SentencePiece does');
}

interface Vocabulary {
  tokens: string[];
  types: number[];
  idOf: Map<string, number>;
}

/** tokenizer.json's vocabulary and added tokens by id, padded to the model's vocab_size as the converter pads it. */
function vocabulary(json: Json, model: Json, vocabSize: number, unknown: string | null): Vocabulary {
  const vocab = model.vocab;
  if (!isObject(vocab)) refuse('tokenizer.json has no vocabulary');
  const byId = new Map<number, string>();
  for (const [token, id] of Object.entries(vocab)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) refuse(`the vocabulary gives "${token}" the id ${JSON.stringify(id)}`);
    byId.set(id, token);
  }
  const added = new Map<number, { content: string; special: boolean }>();
  for (const t of Array.isArray(json.added_tokens) ? json.added_tokens : []) {
    if (isObject(t) && typeof t.id === 'number' && typeof t.content === 'string') {
      added.set(t.id, { content: t.content, special: t.special === true });
      byId.set(t.id, t.content);
    }
  }
  let largest = -1;
  for (const id of byId.keys()) largest = Math.max(largest, id);
  if (largest >= vocabSize) refuse(`the tokenizer has ids up to ${largest} but config.json's vocab_size is ${vocabSize}`);
  const tokens: string[] = [];
  const types: number[] = [];
  const idOf = new Map<string, number>();
  for (let id = 0; id < vocabSize; id++) {
    const token = byId.get(id);
    const extra = added.get(id);
    if (token === undefined) {
      tokens.push(`[PAD${id}]`);
      types.push(TOKEN_TYPE.UNUSED);
      continue;
    }
    if (idOf.has(token)) refuse(`the token ${JSON.stringify(token)} appears twice`);
    idOf.set(token, id);
    tokens.push(token);
    // The unknown token is UNKNOWN even when tokenizer.json also lists it among the added special tokens.
    types.push(token === unknown ? TOKEN_TYPE.UNKNOWN
      : extra ? (extra.special ? TOKEN_TYPE.CONTROL : TOKEN_TYPE.USER_DEFINED)
      : TOKEN_TYPE.NORMAL);
  }
  return { tokens, types, idOf };
}

/** Merges as pairs, whether tokenizer.json stores them as "a b" strings or ["a", "b"] arrays. */
function mergePairs(model: Json): [string, string][] {
  const merges = Array.isArray(model.merges) ? model.merges : [];
  return merges.map((m): [string, string] => {
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') return [m[0], m[1]];
    if (typeof m === 'string') {
      const parts = m.split(' ');
      if (parts.length === 2) return [parts[0], parts[1]];
    }
    return refuse(`the merge ${JSON.stringify(m)} is not a pair of tokens`);
  });
}

function tokenizerMetadata(files: Pick<ModelFiles, 'tokenizerJson' | 'tokenizerConfig'>, args: ModelArgs): [string, GgufValue][] {
  let json: Json;
  let config: Json;
  try {
    json = JSON.parse(files.tokenizerJson) as Json;
    config = JSON.parse(files.tokenizerConfig || '{}') as Json;
  } catch (error) {
    throw new GgufExportError(`tokenizer.json or tokenizer_config.json is not valid JSON (${(error as Error).message}). Use the files exactly as the model repository has them.`);
  }
  if (!isObject(json) || !isObject(json.model)) refuse('tokenizer.json has no "model" section');
  if (!isObject(config)) config = {};
  const model = json.model;
  if ((model.type ?? (Array.isArray(model.merges) ? 'BPE' : undefined)) !== 'BPE') refuse(`its model is ${JSON.stringify(model.type ?? null)}, not BPE`);
  const unknown = typeof model.unk_token === 'string' ? model.unk_token : null;
  const { tokens, types, idOf } = vocabulary(json, model, args.vocabSize, unknown);
  const merges = mergePairs(model);
  const byteLevel = steps(json.pre_tokenizer).some((s) => s.type === 'ByteLevel');
  const meta: [string, GgufValue][] = [];

  if (byteLevel) {
    // llama.cpp normalizes nothing: NFC (Qwen's) leaves already-composed text as it is; anything else would differ.
    const normalizers = steps(json.normalizer);
    if (normalizers.some((n) => n.type !== 'NFC')) refuse(`its normalizer (${normalizers.map((n) => String(n.type)).join(' → ')}) changes text before byte-level BPE, which llama.cpp does not do`);
    for (const [a, b] of merges) if (a.includes(' ') || b.includes(' ')) refuse(`the merge ${JSON.stringify([a, b])} holds a space, which GGUF's "a b" merges cannot express`);
    meta.push(['tokenizer.ggml.model', str('gpt2')], ['tokenizer.ggml.pre', str(bytePreTokenizer(json))]);
    meta.push(['tokenizer.ggml.tokens', arr('string', tokens)], ['tokenizer.ggml.token_type', arr('int32', types)]);
    meta.push(['tokenizer.ggml.merges', arr('string', merges.map(([a, b]) => `${a} ${b}`))]);
  } else {
    // SentencePiece-style BPE: llama.cpp rebuilds the merges from scores, always joining the adjacent
    // pair whose result scores highest (leftmost first). A token's score is minus the rank of the first
    // merge that makes it, so llama.cpp merges in the order of tokenizer.json's merges.
    if (model.byte_fallback !== true) refuse('it has no byte fallback, and llama.cpp\'s SentencePiece tokenizer needs a <0xNN> token for every byte');
    const addSpacePrefix = sentencePieceSpacePrefix(json);
    for (let byte = 0; byte < 256; byte++) {
      const name = `<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`;
      const id = idOf.get(name);
      if (id === undefined) refuse(`the byte token ${name} is missing`);
      if (types[id] === TOKEN_TYPE.NORMAL) types[id] = TOKEN_TYPE.BYTE;
    }
    const scores = new Array<number>(tokens.length).fill(0);
    const ranked = new Set<number>();
    merges.forEach(([a, b], rank) => {
      const id = idOf.get(a + b);
      if (id === undefined) refuse(`the merge ${JSON.stringify([a, b])} makes a token that is not in the vocabulary`);
      if (!ranked.has(id)) {
        ranked.add(id);
        scores[id] = -rank;
      }
    });
    // Longer tokens no merge makes (llama.cpp would still join them) go after every ranked merge.
    tokens.forEach((token, id) => {
      if (!ranked.has(id) && types[id] === TOKEN_TYPE.NORMAL && [...token].length > 1) scores[id] = -(merges.length + id);
      if (types[id] === TOKEN_TYPE.UNUSED) scores[id] = -1000;
    });
    meta.push(['tokenizer.ggml.model', str('llama')], ['tokenizer.ggml.pre', str('default')]);
    meta.push(['tokenizer.ggml.tokens', arr('string', tokens)], ['tokenizer.ggml.scores', arr('float32', scores)], ['tokenizer.ggml.token_type', arr('int32', types)]);
    meta.push(['tokenizer.ggml.add_space_prefix', bool(addSpacePrefix)]);
  }

  // Special tokens: tokenizer_config.json's text, else config.json's id.
  const idFor = (key: string, fallback: number | null): number | null => {
    const text = specialText(config, key);
    if (text !== null) {
      const id = idOf.get(text);
      if (id === undefined) refuse(`tokenizer_config.json's ${key} ${JSON.stringify(text)} is not in the vocabulary`);
      return id;
    }
    return fallback;
  };
  const bos = idFor('bos_token', args.bosTokenId);
  const eos = idFor('eos_token', args.eosTokenIds[0] ?? null);
  const unk = unknown !== null ? idOf.get(unknown) ?? null : idFor('unk_token', null);
  const pad = idFor('pad_token', null);
  if (bos !== null) meta.push(['tokenizer.ggml.bos_token_id', u32(bos)]);
  if (eos !== null) meta.push(['tokenizer.ggml.eos_token_id', u32(eos)]);
  if (unk !== null) meta.push(['tokenizer.ggml.unknown_token_id', u32(unk)]);
  if (pad !== null) meta.push(['tokenizer.ggml.padding_token_id', u32(pad)]);

  // BOS/EOS as the tokenizer really adds them: its post-processor's template, else tokenizer_config's flags.
  const post = steps(json.post_processor).find((p) => p.type === 'TemplateProcessing');
  const single = post && Array.isArray(post.single) ? (post.single as Json[]) : null;
  const specialAt = (item: Json | undefined) => (item && isObject(item.SpecialToken) ? String(item.SpecialToken.id) : null);
  const bosText = bos !== null ? tokens[bos] : null;
  const eosText = eos !== null ? tokens[eos] : null;
  const addBos = single ? specialAt(single[0]) !== null && specialAt(single[0]) === bosText : config.add_bos_token === true;
  const addEos = single ? specialAt(single.at(-1)) !== null && specialAt(single.at(-1)) === eosText : config.add_eos_token === true;
  if (single && single.some((item, i) => specialAt(item) !== null && !((i === 0 && addBos) || (i === single.length - 1 && addEos)))) {
    refuse('its post-processor adds special tokens other than a leading BOS and a trailing EOS');
  }
  if (addBos && bos === null) refuse('it adds a BOS token that it does not name');
  meta.push(['tokenizer.ggml.add_bos_token', bool(addBos)], ['tokenizer.ggml.add_eos_token', bool(addEos)]);

  const template = config.chat_template;
  if (typeof template === 'string') meta.push(['tokenizer.chat_template', str(template)]);
  else if (Array.isArray(template)) {
    // Named templates: llama.cpp takes the default one as tokenizer.chat_template, others by name.
    for (const t of template) {
      if (!isObject(t) || typeof t.name !== 'string' || typeof t.template !== 'string') continue;
      meta.push([t.name === 'default' ? 'tokenizer.chat_template' : `tokenizer.chat_template.${t.name}`, str(t.template)]);
    }
  }
  return meta;
}

// ---- files ---------------------------------------------------------------------------------------

export interface ModelGgufInput {
  name: string;
  files: Pick<ModelFiles, 'config' | 'tokenizerJson' | 'tokenizerConfig'>;
  /** The checkpoint's tensors (checkpointTensors(), with an adapter merged in or not). */
  tensors: CheckpointTensor[];
}

/** Writes a whole model (weights, hyperparameters, tokenizer) as one GGUF file llama.cpp and Ollama load. */
export async function writeModelGguf(sink: ByteSink, input: ModelGgufInput, options: GgufOptions): Promise<void> {
  const args = modelArgsOf(input.files);
  const arch = ggufArchitecture(args);
  const metadata: [string, GgufValue][] = [
    ['general.architecture', str(arch)],
    ['general.type', str('model')],
    ['general.name', str(input.name)],
    ['general.file_type', u32(FILE_TYPE[options.dtype])],
    ...hyperparameters(args),
    ...tokenizerMetadata(input.files, args),
  ];
  await writeGguf(sink, metadata, modelTensors(args, input.tensors, options.dtype));
}

export interface LoraGgufInput {
  name: string;
  files: Pick<ModelFiles, 'config'>;
  adapter: AdapterWeights;
}

const GGUF_TARGET: Record<LoraTarget, string> = {
  q_proj: 'attn_q', k_proj: 'attn_k', v_proj: 'attn_v', o_proj: 'attn_output',
  gate_proj: 'ffn_gate', up_proj: 'ffn_up', down_proj: 'ffn_down',
};

/**
 * llama.cpp scales a LoRA by alpha / rank; PEFT by lora_alpha / r, or lora_alpha / √r with rsLoRA. The
 * alpha written is the one that gives PEFT's scale.
 */
export function ggufLoraAlpha(config: AdapterWeights['config']): number {
  return loraScale(config) * config.r;
}

/** Writes a LoRA adapter as llama.cpp's convert_lora_to_gguf.py does, for use on top of the base model's GGUF. */
export async function writeLoraGguf(sink: ByteSink, input: LoraGgufInput, options: GgufOptions): Promise<void> {
  const args = modelArgsOf(input.files);
  const { adapter } = input;
  const metadata: [string, GgufValue][] = [
    ['general.architecture', str(ggufArchitecture(args))],
    ['general.type', str('adapter')],
    ['general.name', str(input.name)],
    ['general.file_type', u32(FILE_TYPE[options.dtype])],
    ['adapter.type', str('lora')],
    ['adapter.lora.alpha', f32(ggufLoraAlpha(adapter.config))],
  ];
  const tensors: GgufTensor[] = [];
  for (const [path, { A, B }] of adapter.modules) {
    const where = parseModulePath(path);
    if (!where) throw new GgufExportError(`The adapter's module "${path}" is not one llama.cpp can adapt. Export an adapter trained by webtune or PEFT on q/k/v/o/gate/up/down projections.`);
    if (where.layer >= args.numLayers) throw new GgufExportError(`The adapter adapts layer ${where.layer}, but the model has ${args.numLayers} layers. Export it with the model it was trained on.`);
    const [rank, inFeatures] = A.shape;
    const [outFeatures, rankB] = B.shape;
    if (rank !== rankB || A.data.length !== rank * inFeatures || B.data.length !== outFeatures * rank) {
      throw new GgufExportError(`The adapter's ${path} has lora_A ${A.shape.join('×')} and lora_B ${B.shape.join('×')}, which do not fit together. Export the adapter again.`);
    }
    const base = `blk.${where.layer}.${GGUF_TARGET[where.target]}.weight`;
    const heads = ropeHeads(args, path);
    tensors.push({ name: `${base}.lora_a`, dims: [inFeatures, rank], type: options.dtype, read: () => A.data.slice() });
    tensors.push({
      name: `${base}.lora_b`,
      dims: [rank, outFeatures],
      type: options.dtype,
      read: heads === undefined ? () => B.data.slice() : () => permuteRowsForRope(B.data, outFeatures, heads),
    });
  }
  await writeGguf(sink, metadata, tensors);
}
