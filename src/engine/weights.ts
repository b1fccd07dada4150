/**
 * Builds a LlamaModel from named checkpoint tensors. Names are looked up exactly as Hugging Face
 * writes them; a missing or misshapen tensor fails with the name and both shapes.
 */
import { missingOutputLayer, type ModelArgs } from './config';
import type { HostTensor } from './safetensors';
import { Linear, LinearPart, type Projection } from './layers';
import { compactWeightsByDefault } from './memory';
import type { DecoderLayer, LlamaModel } from './model';
import { tf } from './tf';

export type { HostTensor };

/** Looks a tensor up by checkpoint name (the shape config.json implies is given for generated weights). */
export type TensorSource = (name: string, expectedShape: number[]) => HostTensor | undefined;

export class ModelWeightsError extends Error {
  override name = 'ModelWeightsError';
}

function checkShape(name: string, actual: number[], expected: number[]): void {
  if (actual.length !== expected.length || actual.some((d, i) => d !== expected[i])) {
    throw new ModelWeightsError(
      `Tensor "${name}" has shape [${actual}] but config.json implies [${expected}]. The weights and config.json come from different models.`,
    );
  }
}

function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) {
    const row = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = data[row + c];
  }
  return out;
}

export interface BuildOptions {
  /**
   * The largest tensor the device takes (WebGPU: the adapter's maxStorageBufferBindingSize / maxBufferSize).
   * Vocabulary-sized matrices above it are stored in pieces; any other tensor above it is refused.
   */
  maxTensorBytes?: number;
  /**
   * Decoder weights multiplied from the left, so tfjs-wasm keeps one copy of each instead of two (decoding
   * is slower on wasm). Default: on wasm, for models whose doubled weights would crowd the heap.
   */
  compactWeights?: boolean;
  /**
   * q, k, v and gate, up each stored as one weight and multiplied once. Default: on WebGPU, where fewer,
   * larger products keep a GPU busier.
   */
  fuseProjections?: boolean;
}

/** {names[i]: values[i]}. */
function named<K extends string>(names: K[], values: Projection[]): Record<K, Projection> {
  return Object.fromEntries(names.map((n, i) => [n, values[i]])) as Record<K, Projection>;
}

export function buildModel(args: ModelArgs, source: TensorSource, options: BuildOptions = {}): LlamaModel {
  const owned: tf.Tensor[] = [];
  const limit = options.maxTensorBytes ?? Infinity;
  const mb = (bytes: number) =>
    bytes >= 2 ** 20
      ? `${(bytes / 2 ** 20).toFixed(0)} MB`
      : bytes >= 1024
        ? `${(bytes / 1024).toFixed(0)} KB`
        : `${bytes} bytes`;
  const checkFits = (name: string, shape: number[]) => {
    const bytes = shape.reduce((a, b) => a * b, 1) * 4;
    if (bytes > limit)
      throw new ModelWeightsError(
        `Tensor "${name}" needs ${mb(bytes)}, more than the ${mb(limit)} this device's GPU takes in one buffer. Choose a smaller model or the WebAssembly backend.`,
      );
  };
  const take = (name: string, shape: number[], optional = false): tf.Tensor | undefined => {
    const host = source(name, shape);
    if (!host) {
      if (optional) return undefined;
      throw new ModelWeightsError(
        `model.safetensors has no tensor "${name}". The weights do not match config.json (${args.modelType}, ${args.numLayers} layers); use the files of one model together.`,
      );
    }
    checkShape(name, host.shape, shape);
    checkFits(name, shape);
    const tensor = tf.tensor(host.data, shape, 'float32');
    owned.push(tensor);
    return tensor;
  };
  const need = (name: string, shape: number[]) => take(name, shape)!;
  /** A checkpoint tensor's values, checked like `take` does, for tensors built from several. */
  const hostOf = (name: string, shape: number[]): Float32Array => {
    const host = source(name, shape);
    if (!host) need(name, shape); // throws the missing-tensor message
    checkShape(name, host!.shape, shape);
    checkFits(name, shape);
    return host!.data;
  };
  /** A [rows, cols] checkpoint matrix uploaded as its transpose [cols, rows] (see Linear). */
  const needTransposed = (name: string, rows: number, cols: number): tf.Tensor2D => {
    const host = source(name, [rows, cols]);
    if (!host) return need(name, [rows, cols]) as tf.Tensor2D; // throws the missing-tensor message
    checkShape(name, host.shape, [rows, cols]);
    checkFits(name, [rows, cols]);
    const tensor = tf.tensor2d(transpose(host.data, rows, cols), [cols, rows]);
    owned.push(tensor);
    return tensor;
  };
  // Compact: the checkpoint's [out, in] as it is, multiplied from the left (one copy on wasm; see Linear).
  const compact = options.compactWeights ?? (tf.getBackend() === 'wasm' && compactWeightsByDefault(args));
  const linear = (prefix: string, out: number, inp: number, bias: boolean) =>
    new Linear(
      compact
        ? (need(`${prefix}.weight`, [out, inp]) as tf.Tensor2D)
        : needTransposed(`${prefix}.weight`, out, inp),
      bias ? (need(`${prefix}.bias`, [out]) as tf.Tensor1D) : undefined,
      compact,
    );

  /**
   * Linears that read the same input (q, k, v; gate, up) stored side by side as one weight, so one product
   * serves them all, and a part for each. Separate when fusing is off or the whole would pass the device's
   * limit.
   */
  const fuse = options.fuseProjections ?? tf.getBackend() === 'webgpu';
  const sharedInput = (prefixes: string[], outs: number[], inp: number, bias: boolean): Projection[] => {
    const total = outs.reduce((a, b) => a + b, 0);
    if (!fuse || total * inp * 4 > limit)
      return prefixes.map((prefix, i) => linear(prefix, outs[i], inp, bias));
    const hosts = prefixes.map((prefix, i) => hostOf(`${prefix}.weight`, [outs[i], inp]));
    const weight = new Float32Array(total * inp);
    let offset = 0;
    hosts.forEach((data, i) => {
      if (compact)
        weight.set(data, offset * inp); // [Σout, in]: the parts' rows one after another
      else
        for (let r = 0; r < outs[i]; r++)
          for (let c = 0; c < inp; c++) weight[c * total + offset + r] = data[r * inp + c]; // [in, Σout]
      offset += outs[i];
    });
    const biases = bias ? prefixes.map((prefix, i) => hostOf(`${prefix}.bias`, [outs[i]])) : [];
    const fusedBias = bias ? tf.tensor1d(Float32Array.from(biases.flatMap((b) => Array.from(b)))) : undefined;
    const tensor = tf.tensor2d(weight, compact ? [total, inp] : [inp, total]);
    owned.push(tensor, ...(fusedBias ? [fusedBias] : []));
    const whole = new Linear(tensor, fusedBias, compact);
    let start = 0;
    return outs.map((out) => new LinearPart(whole, (start += out) - out, out));
  };

  /**
   * A [vocab, hidden] checkpoint matrix in pieces of whole rows, each within the limit (one piece when it
   * fits).
   */
  const vocabPieces = (name: string, transposed: boolean): { pieces: tf.Tensor2D[]; starts: number[] } => {
    const { vocabSize: vocab, hiddenSize: hidden } = args;
    const host = source(name, [vocab, hidden]);
    if (!host) {
      const outputProblem = name === 'lm_head.weight' && missingOutputLayer(args, () => false);
      if (outputProblem) throw new ModelWeightsError(outputProblem);
      // need() throws the missing-tensor message.
      return { pieces: [need(name, [vocab, hidden]) as tf.Tensor2D], starts: [0] };
    }
    checkShape(name, host.shape, [vocab, hidden]);
    // Pieces are cut between rows, so one row is the smallest piece there is.
    if (hidden * 4 > limit)
      throw new ModelWeightsError(
        `One row of "${name}" needs ${mb(hidden * 4)}, more than the ${mb(limit)} this device's GPU takes in one buffer. Choose a smaller model or the WebAssembly backend.`,
      );
    const rowsPerPiece = Math.min(vocab, Math.floor(limit / (hidden * 4)));
    const pieces: tf.Tensor2D[] = [];
    const starts: number[] = [];
    for (let start = 0; start < vocab; start += rowsPerPiece) {
      const rows = Math.min(rowsPerPiece, vocab - start);
      const data = host.data.subarray(start * hidden, (start + rows) * hidden);
      const piece = transposed
        ? tf.tensor2d(transpose(data, rows, hidden), [hidden, rows])
        : tf.tensor2d(data, [rows, hidden]);
      owned.push(piece);
      pieces.push(piece);
      starts.push(start);
    }
    return { pieces, starts };
  };

  const { hiddenSize: d, intermediateSize: ff, headDim: hd } = args;
  const qOut = args.numHeads * hd;
  const kvOut = args.numKvHeads * hd;
  try {
    // Tied: one [hidden, vocab] matrix serves as lm_head and, read by column, as the embedding.
    const lmHead = vocabPieces(args.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight', true);
    const embed = args.tieWordEmbeddings ? undefined : vocabPieces('model.embed_tokens.weight', false).pieces;
    const layers: DecoderLayer[] = [];
    for (let i = 0; i < args.numLayers; i++) {
      const p = `model.layers.${i}`;
      layers.push({
        input_layernorm: need(`${p}.input_layernorm.weight`, [d]) as tf.Tensor1D,
        self_attn: {
          ...named(
            ['q_proj', 'k_proj', 'v_proj'],
            sharedInput(
              ['q_proj', 'k_proj', 'v_proj'].map((n) => `${p}.self_attn.${n}`),
              [qOut, kvOut, kvOut],
              d,
              args.qkvBias,
            ),
          ),
          o_proj: linear(`${p}.self_attn.o_proj`, d, qOut, args.oBias),
          ...(args.qkNorm
            ? {
                q_norm: need(`${p}.self_attn.q_norm.weight`, [hd]) as tf.Tensor1D,
                k_norm: need(`${p}.self_attn.k_norm.weight`, [hd]) as tf.Tensor1D,
              }
            : {}),
        },
        post_attention_layernorm: need(`${p}.post_attention_layernorm.weight`, [d]) as tf.Tensor1D,
        mlp: {
          ...named(
            ['gate_proj', 'up_proj'],
            sharedInput([`${p}.mlp.gate_proj`, `${p}.mlp.up_proj`], [ff, ff], d, false),
          ),
          down_proj: linear(`${p}.mlp.down_proj`, d, ff, false),
        },
      });
    }
    const norm = need('model.norm.weight', [d]) as tf.Tensor1D;
    return {
      args,
      embed_tokens: embed,
      layers,
      norm,
      lm_head_t: lmHead.pieces,
      vocabStarts: lmHead.starts,
      maxTensorBytes: options.maxTensorBytes,
      owned,
    };
  } catch (error) {
    for (const t of owned) t.dispose();
    throw error;
  }
}
