/**
 * How much memory training will take, estimated from the model's shapes and the run's settings, so the
 * page can warn before a download that the model will not fit. Counts float32 tensors: frozen weights,
 * LoRA weights with their gradients and AdamW moments, and the activations alive at the peak of one
 * step. The factors were fitted to tf.profile's peak (wasm) on stories260K, the tiny Qwen fixtures and
 * SmolLM2-shaped models across batch sizes and lengths; tests/memory.test.ts keeps the estimate between
 * 1× and 3× the measured peak, with and without recomputed layers.
 */
import { PROJECTIONS } from './architecture';
import { linearShape, parameterCount, type ModelArgs } from './config';
import { bytesPerWeight, type WeightFormat } from './quant';

export interface TrainingSettingsForMemory {
  rank: number;
  targets: string[];
  batchSize: number;
  maxLength: number;
  /** Recompute each layer in the backward pass (recompute.ts); absent: what `defaultRecompute` chooses. */
  recompute?: boolean;
  /** How the frozen weights are held (weights.ts; default f32). */
  weights?: WeightFormat;
}

export interface MemoryEstimate {
  weights: number;
  adapter: number;
  activations: number;
  total: number;
  /** Whether the estimate assumes recomputed layers. */
  recompute: boolean;
  /**
   * What the wasm backend adds outside tensors: XNNPACK's packed copies of the weights (see
   * compactWeightsByDefault).
   */
  wasmPacked: number;
  /**
   * Of `weights`, the packed matrices the CPU backends keep outside the wasm heap (in JavaScript's), widening
   * one at a time for its product (0 for float32 weights, which are tensors).
   */
  hostWeights: number;
}

const FLOAT = 4;

/**
 * Bytes of logits held at once while computing a loss or scores: rows pass through the lm_head in
 * chunks of this size, so memory does not grow with the number of rows (each chunk briefly holds a few
 * same-sized tensors: logits, probabilities, their gradient).
 */
export const LOGITS_CHUNK_BYTES = 32 * 2 ** 20;

/** Above this, a wasm run cannot allocate (32-bit WebAssembly memory). */
export const WASM_MEMORY_LIMIT = 4 * 2 ** 30;

/**
 * A run keeps every activation (no recomputation, about a quarter faster) only when that fits in this
 * much: most laptops give a tab a few GB, and the weights and the page need their share.
 */
export const KEEP_ACTIVATIONS_BUDGET = 2 ** 30;

/**
 * tfjs-wasm (XNNPACK) keeps a packed copy of every matrix it multiplies from the right. Models whose
 * weights, counted twice, would pass this keep their decoder weights on the left instead (compact).
 */
export const PACKED_WEIGHTS_BUDGET = 1.5 * 2 ** 30;

export function compactWeightsByDefault(args: ModelArgs): boolean {
  return 2 * parameterCount(args) * FLOAT > PACKED_WEIGHTS_BUDGET;
}

/**
 * Bytes of the frozen weights held as `format` (weights.ts): the decoder's projections in it, the vocabulary
 * matrices in it but never below q8_0, norms and biases in float32. Also the largest matrix widened at once
 * on the CPU backends, in float32 bytes (a vocabulary piece widens to at most 64 MB).
 */
export function frozenWeightBytes(
  args: ModelArgs,
  format: WeightFormat = 'f32',
): { total: number; packed: number; largestWidened: number } {
  const vocabFormat: WeightFormat = format === 'nf4' ? 'q8_0' : format;
  const projections = PROJECTIONS.map((name) => linearShape(args, name));
  const layerWeights = projections.reduce((n, p) => n + p.in * p.out * bytesPerWeight(format, p.in), 0);
  const vocabMatrices = args.tieWordEmbeddings ? 1 : 2;
  const vocab =
    vocabMatrices * args.vocabSize * args.hiddenSize * bytesPerWeight(vocabFormat, args.hiddenSize);
  const projectionParams = projections.reduce((n, p) => n + p.in * p.out, 0);
  const rest =
    parameterCount(args) -
    args.numLayers * projectionParams -
    vocabMatrices * args.vocabSize * args.hiddenSize;
  const packed = format === 'f32' ? 0 : args.numLayers * layerWeights + vocab;
  const largestProjection = Math.max(...projections.map((p) => p.in * p.out)) * FLOAT;
  const largestWidened = Math.max(
    largestProjection,
    Math.min(args.vocabSize * args.hiddenSize * FLOAT, 64 * 2 ** 20),
  );
  return {
    total: format === 'f32' ? parameterCount(args) * FLOAT : packed + rest * FLOAT,
    packed,
    largestWidened,
  };
}

export function estimateTrainingMemory(args: ModelArgs, s: TrainingSettingsForMemory): MemoryEstimate {
  const recompute = s.recompute ?? defaultRecompute(args, s);
  const frozen = frozenWeightBytes(args, s.weights);
  const weights = frozen.total;
  const loraParams =
    s.targets.reduce((sum, t) => {
      const { in: inF, out } = linearShape(args, t);
      return sum + s.rank * (inF + out);
    }, 0) * args.numLayers;
  // Weights, gradients and two AdamW moments.
  const adapter = loraParams * FLOAT * 4;
  const activations = (recompute ? recomputedActivations(args, s) : keptActivations(args, s)) * FLOAT;
  // Packed weights widen one matrix at a time for its product: the largest is a tensor at the peak.
  const widened = frozen.packed > 0 ? frozen.largestWidened : 0;
  // On wasm the lm_head is always packed; the decoder weights too unless the model is compact; a widened
  // matrix once more.
  const wasmPacked =
    frozen.packed > 0
      ? frozen.largestWidened
      : compactWeightsByDefault(args)
        ? args.vocabSize * args.hiddenSize * FLOAT
        : weights;
  return {
    weights,
    adapter,
    activations,
    total: weights + adapter + activations + widened,
    recompute,
    wasmPacked,
    hostWeights: frozen.packed,
  };
}

/** Floats of one layer's activations for a gradient, and of its attention maps (B·heads·T² each). */
function layerFloats(
  args: ModelArgs,
  s: TrainingSettingsForMemory,
  perToken: { hidden: number; mlp: number },
  maps: number,
): number {
  const tokens = s.batchSize * s.maxLength;
  const lora = s.targets.reduce((sum, t) => sum + 4 * linearShape(args, t).out + 4 * s.rank, 0);
  const attentionMaps = maps * s.batchSize * args.numHeads * s.maxLength * s.maxLength;
  // Gemma's layer holds more per token: attention as wide as its heads (wider than hidden) and four norms
  // instead of two, counted as a wider stream (fitted on tiny-random-gemma3 like the rest).
  const width =
    args.normPlacement === 'sandwich'
      ? Math.max(args.hiddenSize, args.numHeads * args.headDim) + 4 * args.hiddenSize
      : args.hiddenSize;
  return tokens * (perToken.hidden * width + perToken.mlp * args.intermediateSize + lora) + attentionMaps;
}

/**
 * The loss: logits pass the lm_head a chunk at a time, and a chunk holds at most three
 * [rows, vocab] tensors at once; plus the rows' hidden states and their gradient.
 */
function lossFloats(args: ModelArgs, s: TrainingSettingsForMemory): number {
  const tokens = s.batchSize * s.maxLength;
  const chunkRows = Math.min(tokens, Math.max(1, Math.floor(LOGITS_CHUNK_BYTES / (args.vocabSize * FLOAT))));
  return 3 * chunkRows * args.vocabSize + 4 * tokens * args.hiddenSize;
}

/** Each layer keeps its input (and the step's RoPE tables and mask); one layer at a time is recomputed. */
function recomputedActivations(args: ModelArgs, s: TrainingSettingsForMemory): number {
  const tokens = s.batchSize * s.maxLength;
  const kept = args.numLayers * (4 * tokens * args.hiddenSize + s.batchSize * s.maxLength * s.maxLength);
  const recomputed = layerFloats(args, s, { hidden: 16, mlp: 20 }, 6);
  // The peak is in the loss or in a recomputed layer, whichever is larger; counting both keeps small
  // models, where neither dominates, covered.
  return kept + recomputed + lossFloats(args, s);
}

/** Every layer's activations stay alive until the backward pass reaches it. */
function keptActivations(args: ModelArgs, s: TrainingSettingsForMemory): number {
  return args.numLayers * layerFloats(args, s, { hidden: 40, mlp: 20 }, 6) + lossFloats(args, s);
}

/** Recomputing is on unless keeping every activation fits comfortably (see KEEP_ACTIVATIONS_BUDGET). */
export function defaultRecompute(args: ModelArgs, s: TrainingSettingsForMemory): boolean {
  return estimateTrainingMemory(args, { ...s, recompute: false }).total > KEEP_ACTIVATIONS_BUDGET;
}

export type RecomputeChoice = 'auto' | 'on' | 'off';

/** The user's choice made concrete: 'auto' asks the estimate (`defaultRecompute`). */
export function resolveRecompute(
  choice: RecomputeChoice,
  args: ModelArgs,
  s: TrainingSettingsForMemory,
): boolean {
  return choice === 'auto' ? defaultRecompute(args, s) : choice === 'on';
}

/**
 * Bytes a training run needs in the wasm heap: its tensors and XNNPACK's packed weights (packed frozen
 * weights stay outside it).
 */
export function wasmHeapNeed(estimate: MemoryEstimate): number {
  return estimate.total - estimate.hostWeights + estimate.wasmPacked;
}

/**
 * A plain warning when the run will not fit a wasm heap of `limit` bytes, saying what to change; null when it
 * fits.
 */
export function memoryWarning(
  estimate: MemoryEstimate,
  limit: number,
  s: TrainingSettingsForMemory,
): string | null {
  const needed = wasmHeapNeed(estimate);
  if (needed <= limit) return null;
  const gb = (n: number) => `${(n / 2 ** 30).toFixed(1)} GB`;
  const advice = !estimate.recompute
    ? 'Turn on Recompute activations, or lower the max length or the batch size.'
    : estimate.activations > estimate.weights
      ? `Lower the max length (now ${s.maxLength} tokens) or the batch size (now ${s.batchSize}).`
      : 'Choose a smaller model.';
  return `Training needs about ${gb(needed)}, more than the ${gb(limit)} a browser gives WebAssembly. ${advice}`;
}
