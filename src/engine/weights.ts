/**
 * Builds a LlamaModel from named checkpoint tensors. Names are looked up exactly as Hugging Face
 * writes them; a missing or misshapen tensor fails with the name and both shapes.
 */
import { familyDescription } from './architecture';
import { missingOutputLayer, type ModelArgs } from './config';
import { F32Matrix, transpose, PackedFrozenMatrix, type FrozenMatrix } from './frozen';
import type { HostTensor } from './safetensors';
import { Linear, LinearPart, type Projection } from './layers';
import { pack, type HalfFormat, type WeightFormat } from './quant';
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
  /**
   * How the frozen decoder projections are held (default f32; see quant.ts). 'bf16' keeps a checkpoint's
   * own 16-bit values (f16 ones as f16), and rounds float32 ones to bf16. The vocabulary matrix (lm_head,
   * embedding) is held as wide as the layers, but never narrower than q8_0: a 4-bit base keeps it in 8 bits.
   */
  weights?: WeightFormat;
}

/** Vocabulary rows in one piece of a packed vocabulary matrix: at most this many bytes once widened. */
const WIDENED_PIECE_BYTES = 64 * 2 ** 20;

/** {names[i]: values[i]}. */
function named<K extends string>(names: K[], values: Projection[]): Record<K, Projection> {
  return Object.fromEntries(names.map((n, i) => [n, values[i]])) as Record<K, Projection>;
}

export function buildModel(args: ModelArgs, source: TensorSource, options: BuildOptions = {}): LlamaModel {
  const owned: { dispose(): void }[] = [];
  const limit = options.maxTensorBytes ?? Infinity;
  const format = options.weights ?? 'f32';
  const vocabularyFormat: WeightFormat = format === 'nf4' ? 'q8_0' : format;
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
  /** A norm's weight as the product takes it: Gemma's checkpoints store w for x̂·(1 + w), held as 1 + w. */
  const normWeight = (name: string, size: number): tf.Tensor1D => {
    if (args.normKind === 'weight') return need(name, [size]) as tf.Tensor1D;
    const host = hostOf(name, [size]);
    const tensor = tf.tensor1d(host.data.map((w) => 1 + w));
    owned.push(tensor);
    return tensor;
  };
  /** A checkpoint tensor, checked like `take` does, for matrices built from host values. */
  const hostOf = (name: string, shape: number[]): HostTensor => {
    const host = source(name, shape);
    if (!host) need(name, shape); // throws the missing-tensor message
    checkShape(name, host!.shape, shape);
    checkFits(name, shape);
    return host!;
  };
  // Compact: the checkpoint's [out, in] as it is, multiplied from the left (one copy on wasm; see F32Matrix).
  const compact = options.compactWeights ?? (tf.getBackend() === 'wasm' && compactWeightsByDefault(args));
  /** The 16-bit format of 'bf16': the checkpoint's own halves when it has them. */
  const halfOf = (host: HostTensor): HalfFormat => (host.dtype === 'F16' ? 'f16' : 'bf16');
  /**
   * W [rows, cols] from row-major host values, held as `as` says; `layout` overrides the decoder's layout
   * (vocabulary matrices choose their own).
   */
  const frozen = (
    values: Float32Array,
    rows: number,
    cols: number,
    as: WeightFormat,
    half: HalfFormat,
    transposed = !compact,
    vocabulary = false,
  ): FrozenMatrix => {
    const matrix =
      as === 'f32'
        ? new F32Matrix(
            transposed
              ? tf.tensor2d(transpose(values, rows, cols), [cols, rows])
              : tf.tensor2d(values, [rows, cols]),
            transposed,
            vocabulary,
          )
        : new PackedFrozenMatrix(pack(values, rows, cols, as === 'bf16' ? half : as));
    owned.push(matrix);
    return matrix;
  };
  const linear = (prefix: string, out: number, inp: number, bias: boolean) => {
    const host = hostOf(`${prefix}.weight`, [out, inp]);
    return new Linear(
      frozen(host.data, out, inp, format, halfOf(host)),
      bias ? (need(`${prefix}.bias`, [out]) as tf.Tensor1D) : undefined,
    );
  };

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
    // [Σout, in]: the parts' rows one after another.
    const weight = new Float32Array(total * inp);
    let offset = 0;
    hosts.forEach((host, i) => {
      weight.set(host.data, offset * inp);
      offset += outs[i];
    });
    const biases = bias ? prefixes.map((prefix, i) => hostOf(`${prefix}.bias`, [outs[i]]).data) : [];
    const fusedBias = bias ? tf.tensor1d(Float32Array.from(biases.flatMap((b) => Array.from(b)))) : undefined;
    if (fusedBias) owned.push(fusedBias);
    const whole = new Linear(frozen(weight, total, inp, format, halfOf(hosts[0])), fusedBias);
    let start = 0;
    return outs.map((out) => new LinearPart(whole, (start += out) - out, out));
  };

  /**
   * A [vocab, hidden] checkpoint matrix in pieces of whole rows, each within the limit (one piece when it
   * fits; a packed one in pieces that widen to at most WIDENED_PIECE_BYTES).
   */
  const vocabPieces = (name: string, transposed: boolean): { pieces: FrozenMatrix[]; starts: number[] } => {
    const { vocabSize: vocab, hiddenSize: hidden } = args;
    const host = source(name, [vocab, hidden]);
    if (!host) {
      const outputProblem = name === 'lm_head.weight' && missingOutputLayer(args, () => false);
      if (outputProblem) throw new ModelWeightsError(outputProblem);
      need(name, [vocab, hidden]); // throws the missing-tensor message
    }
    checkShape(name, host!.shape, [vocab, hidden]);
    // Pieces are cut between rows, so one row is the smallest piece there is.
    if (hidden * 4 > limit)
      throw new ModelWeightsError(
        `One row of "${name}" needs ${mb(hidden * 4)}, more than the ${mb(limit)} this device's GPU takes in one buffer. Choose a smaller model or the WebAssembly backend.`,
      );
    const pieceBytes = vocabularyFormat === 'f32' ? limit : Math.min(limit, WIDENED_PIECE_BYTES);
    const rowsPerPiece = Math.min(vocab, Math.floor(pieceBytes / (hidden * 4)));
    const pieces: FrozenMatrix[] = [];
    const starts: number[] = [];
    for (let start = 0; start < vocab; start += rowsPerPiece) {
      const rows = Math.min(rowsPerPiece, vocab - start);
      const data = host!.data.subarray(start * hidden, (start + rows) * hidden);
      pieces.push(frozen(data, rows, hidden, vocabularyFormat, halfOf(host!), transposed, true));
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
      const norms = Object.fromEntries(
        familyDescription(args.family).layerNorms.map((n) => [n, normWeight(`${p}.${n}.weight`, d)]),
      ) as Pick<DecoderLayer, 'input_layernorm' | 'post_attention_layernorm'>;
      layers.push({
        ...norms,
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
                q_norm: normWeight(`${p}.self_attn.q_norm.weight`, hd),
                k_norm: normWeight(`${p}.self_attn.k_norm.weight`, hd),
              }
            : {}),
        },
        mlp: {
          ...named(
            ['gate_proj', 'up_proj'],
            sharedInput([`${p}.mlp.gate_proj`, `${p}.mlp.up_proj`], [ff, ff], d, false),
          ),
          down_proj: linear(`${p}.mlp.down_proj`, d, ff, false),
        },
      });
    }
    const norm = normWeight('model.norm.weight', d);
    return {
      args,
      embed_tokens: embed,
      layers,
      norm,
      lm_head: lmHead.pieces,
      vocabStarts: lmHead.starts,
      maxTensorBytes: options.maxTensorBytes,
      owned,
    };
  } catch (error) {
    for (const t of owned) t.dispose();
    throw error;
  }
}
