/**
 * A model, or a LoRA adapter, as the GGUF file llama.cpp's convert_hf_to_gguf.py / convert_lora_to_gguf.py
 * would write for it: the same metadata keys, tensor names, tokenizer description and, for the `llama`
 * architecture, the same reordering of q/k rows (llama.cpp's RoPE rotates adjacent pairs of a head's
 * dimensions, Hugging Face's rotates the two halves; permuting the rows makes one equal the other).
 */
import { familyDescription } from '../engine/architecture';
import { missingOutputLayer, type ModelArgs } from '../engine/config';
import { Q8_0_BLOCK } from '../engine/quant';
import type { ModelFiles } from '../engine/model-files';
import type { CheckpointTensor } from './checkpoint-tensors';
import { modelArgsOf } from './checkpoint-tensors';
import {
  arr,
  f32,
  GgufExportError,
  str,
  u32,
  writeGguf,
  type GgmlType,
  type GgufTensor,
  type GgufValue,
} from './gguf';
import { tokenizerMetadata } from './gguf-tokenizer';

export { GgufExportError } from './gguf';
export { TOKEN_TYPE } from './gguf-tokenizer';
import { loraScale, parseModulePath, type AdapterWeights } from './peft';
import type { ByteSink } from './sink';

export type GgufDtype = 'f32' | 'f16' | 'q8_0';
export interface GgufOptions {
  /**
   * Type of the matrices (see ggufTensorType); 1-D tensors (norms, biases) stay f32 whatever it is, as
   * llama.cpp's converter keeps them.
   */
  dtype: GgufDtype;
}

/** llama.cpp's name for the architecture, from the family's description: Mistral runs as `llama`. */
export function ggufArchitecture(args: Pick<ModelArgs, 'family'>): string {
  return familyDescription(args.family).gguf.architecture;
}

/** llama_ftype (llama.h): 0 all f32, 1 mostly f16, 7 mostly Q8_0. */
const FILE_TYPE: Record<GgufDtype, number> = { f32: 0, f16: 1, q8_0: 7 };

/**
 * The GGML type of a model tensor of Hugging Face `shape` in a `dtype` file, by llama.cpp's rules for that
 * file type. Vectors (norms, biases) are f32 whatever the file type, as convert_hf_to_gguf.py writes them
 * and llama_model_quantize leaves them (it quantizes 2-D `*.weight` tensors only, never `*_norm.weight`).
 * Every matrix of a Llama/Qwen checkpoint is a weight the quantizer takes, the token embedding and the
 * output included (for a Q8_0 file both stay Q8_0: llama_tensor_get_type_impl turns the output / tied
 * embedding to Q6_K only for other quantized types). A matrix whose rows are not whole Q8_0 blocks of 32
 * (stories260K's ffn_down: rows of 172) is F16: llama.cpp's tensor_type_fallback has no smaller block to
 * demote Q8_0 to and ends at F16 ("must use F16 due to unusual shape"; some earlier llama-quantize builds
 * refused such a tensor outright), and convert_hf_to_gguf.py --outtype q8_0 falls back to F16 when gguf-py
 * cannot quantize the shape (QuantError). Sources: src/llama-quant.cpp (tensor_allows_quantization,
 * llama_tensor_get_type_impl, tensor_type_fallback) and conversion/base.py (prepare_tensors) of the
 * llama.cpp node-llama-cpp 3.22.1 ships; tests/gguf-q8_0.test.ts checks it against that build's
 * llama_model_quantize.
 */
export function ggufTensorType(shape: readonly number[], dtype: GgufDtype): GgmlType {
  if (shape.length < 2) return 'f32';
  if (dtype === 'q8_0') return shape[shape.length - 1] % Q8_0_BLOCK === 0 ? 'q8_0' : 'f16';
  return dtype;
}

// ---- tensors -------------------------------------------------------------------------------------

/** The GGUF name of a Hugging Face tensor; null for what llama.cpp recomputes (rotary inv_freq). */
export function ggufTensorName(args: Pick<ModelArgs, 'family'>, hfName: string): string | null {
  if (hfName === 'model.embed_tokens.weight') return 'token_embd.weight';
  if (hfName === 'model.norm.weight') return 'output_norm.weight';
  if (hfName === 'lm_head.weight') return 'output.weight';
  if (/\.rotary_emb\.inv_freq$/.test(hfName)) return null;
  const match = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(hfName);
  const mapped = match && familyDescription(args.family).gguf.layerTensors[match[2]];
  if (!match || !mapped) {
    throw new GgufExportError(
      `The checkpoint tensor "${hfName}" has no GGUF name webtune knows. Export a Llama, Mistral, Qwen2, Qwen3 or Gemma 3 checkpoint as Hugging Face saves it.`,
    );
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
    throw new GgufExportError(
      `Cannot split ${rows} rows into ${heads} heads of even size for llama.cpp's RoPE layout; the config does not match the weights.`,
    );
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
  const outputProblem = missingOutputLayer(args, (name) => names.has(name));
  if (outputProblem) throw new GgufExportError(outputProblem);
  const out: GgufTensor[] = [];
  for (const t of tensors) {
    const name = ggufTensorName(args, t.name);
    // Tied embeddings: llama.cpp reuses token_embd when there is no `output`, as the converter leaves it.
    if (name === null || (name === 'output.weight' && args.tieWordEmbeddings)) continue;
    if (t.shape.length < 1 || t.shape.length > 2)
      throw new GgufExportError(
        `The checkpoint tensor "${t.name}" has ${t.shape.length} dimensions; a Llama-family model has only vectors and matrices.`,
      );
    const heads = ropeHeads(args, t.name);
    // Gemma's norms weight by 1 + w and llama.cpp's by w: the converter stores 1 + w (norm_shift).
    const shift = args.normKind === 'one-plus-weight' && t.name.endsWith('norm.weight');
    out.push({
      name,
      dims: [...t.shape].reverse(),
      type: ggufTensorType(t.shape, dtype),
      read:
        heads !== undefined
          ? () => permuteRowsForRope(t.read(), t.shape[0], heads)
          : shift
            ? () => t.read().map((w) => w + 1)
            : () => t.read(),
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
  // llama.cpp assumes hidden / heads unless told (Qwen3, Gemma and some Llamas have a wider head).
  if (args.headDim * args.numHeads !== args.hiddenSize) {
    meta.push(
      [`${arch}.attention.key_length`, u32(args.headDim)],
      [`${arch}.attention.value_length`, u32(args.headDim)],
    );
  }
  if (args.family === 'gemma3') meta.push(...gemma3Windows(args));
  return meta;
}

/**
 * Gemma 3's sliding windows as llama.cpp's gemma3 reads them: one window and one RoPE base for every
 * sliding layer, and which layers slide (a per-layer array; without it llama.cpp makes every sixth layer
 * full). What llama.cpp cannot reproduce is refused by name.
 */
function gemma3Windows(args: ModelArgs): [string, GgufValue][] {
  // llama.cpp scales queries by head_dim^-½ (hidden / heads for the 62-layer 27B), whatever
  // query_pre_attn_scalar says.
  const headForScale = args.numLayers === 62 ? args.hiddenSize / args.numHeads : args.headDim;
  if (Math.abs(args.attentionScale * Math.sqrt(headForScale) - 1) > 1e-6)
    throw new GgufExportError(
      `config.json's query_pre_attn_scalar (${(1 / args.attentionScale ** 2).toFixed(0)}) differs from the ${headForScale} llama.cpp's gemma3 scales attention by, so llama.cpp would compute another model. Export it as a merged Hugging Face folder instead.`,
    );
  const sliding = args.layerAttention.filter((l) => l.window !== null);
  if (sliding.length === 0) return [];
  const { window, ropeTheta } = sliding[0];
  if (sliding.some((l) => l.window !== window || l.ropeTheta !== ropeTheta))
    throw new GgufExportError(
      "The model's sliding layers differ in window or RoPE base; llama.cpp's gemma3 has one of each. Export it as a merged Hugging Face folder instead.",
    );
  return [
    ['gemma3.attention.sliding_window', u32(window!)],
    ['gemma3.rope.freq_base_swa', f32(ropeTheta)],
    [
      'gemma3.attention.sliding_window_pattern',
      arr(
        'bool',
        args.layerAttention.map((l) => l.window !== null),
      ),
    ],
  ];
}

// ---- files ---------------------------------------------------------------------------------------

export interface ModelGgufInput {
  name: string;
  files: Pick<ModelFiles, 'config' | 'tokenizerJson' | 'tokenizerConfig'>;
  /** The checkpoint's tensors (checkpointTensors(), with an adapter merged in or not). */
  tensors: CheckpointTensor[];
}

/** Writes a whole model (weights, hyperparameters, tokenizer) as one GGUF file llama.cpp and Ollama load. */
export async function writeModelGguf(
  sink: ByteSink,
  input: ModelGgufInput,
  options: GgufOptions,
): Promise<void> {
  const args = modelArgsOf(input.files);
  const arch = ggufArchitecture(args);
  const metadata: [string, GgufValue][] = [
    ['general.architecture', str(arch)],
    ['general.type', str('model')],
    ['general.name', str(input.name)],
    ['general.file_type', u32(FILE_TYPE[options.dtype])],
    // Which version of ggml's block formats a quantized file holds (GGML_QNT_VERSION), as llama-quantize
    // and convert_hf_to_gguf.py write it.
    ...(options.dtype === 'q8_0' ? [['general.quantization_version', u32(2)] as [string, GgufValue]] : []),
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

/**
 * llama.cpp scales a LoRA by alpha / rank; PEFT by lora_alpha / r, or lora_alpha / √r with rsLoRA. The
 * alpha written is the one that gives PEFT's scale.
 */
export function ggufLoraAlpha(config: AdapterWeights['config']): number {
  return loraScale(config) * config.r;
}

/**
 * Writes a LoRA adapter as llama.cpp's convert_lora_to_gguf.py does, for use on top of the base model's GGUF.
 */
export async function writeLoraGguf(
  sink: ByteSink,
  input: LoraGgufInput,
  options: GgufOptions,
): Promise<void> {
  const args = modelArgsOf(input.files);
  // The adapter runs on the base model's GGUF: a model llama.cpp cannot reproduce is refused here too.
  hyperparameters(args);
  const { adapter } = input;
  // A q8_0 export's adapter is f16: quantizing the small A and B factors saves next to nothing, and
  // lora_b's rows are the rank (8, 16: never whole blocks of 32), which llama.cpp would write as f16 anyway.
  const dtype: GgmlType = options.dtype === 'q8_0' ? 'f16' : options.dtype;
  const metadata: [string, GgufValue][] = [
    ['general.architecture', str(ggufArchitecture(args))],
    ['general.type', str('adapter')],
    ['general.name', str(input.name)],
    ['general.file_type', u32(FILE_TYPE[dtype])],
    ['adapter.type', str('lora')],
    ['adapter.lora.alpha', f32(ggufLoraAlpha(adapter.config))],
  ];
  const tensors: GgufTensor[] = [];
  for (const [path, { A, B }] of adapter.modules) {
    const where = parseModulePath(path);
    if (!where)
      throw new GgufExportError(
        `The adapter's module "${path}" is not one llama.cpp can adapt. Export an adapter trained by webtune or PEFT on q/k/v/o/gate/up/down projections.`,
      );
    if (where.layer >= args.numLayers)
      throw new GgufExportError(
        `The adapter adapts layer ${where.layer}, but the model has ${args.numLayers} layers. Export it with the model it was trained on.`,
      );
    const [rank, inFeatures] = A.shape;
    const [outFeatures, rankB] = B.shape;
    if (rank !== rankB || A.data.length !== rank * inFeatures || B.data.length !== outFeatures * rank) {
      throw new GgufExportError(
        `The adapter's ${path} has lora_A ${A.shape.join('×')} and lora_B ${B.shape.join('×')}, which do not fit together. Export the adapter again.`,
      );
    }
    const base = ggufTensorName(args, `${path}.weight`)!;
    const heads = ropeHeads(args, path);
    tensors.push({
      name: `${base}.lora_a`,
      dims: [inFeatures, rank],
      type: dtype,
      read: () => A.data.slice(),
    });
    tensors.push({
      name: `${base}.lora_b`,
      dims: [rank, outFeatures],
      type: dtype,
      read: heads === undefined ? () => B.data.slice() : () => permuteRowsForRope(B.data, outFeatures, heads),
    });
  }
  await writeGguf(sink, metadata, tensors);
}
