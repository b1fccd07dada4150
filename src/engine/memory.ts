/**
 * How much memory training will take, estimated from the model's shapes and the run's settings, so the
 * page can warn before a download that the model will not fit. Counts float32 tensors: frozen weights,
 * LoRA weights with their gradients and AdamW moments, and the activations alive at the peak of one
 * step (per layer: projections, MLP and attention maps; then the completion rows' logits).
 */
import { linearShape, parameterCount, type ModelArgs } from './config';

export interface TrainingSettingsForMemory {
  rank: number;
  targets: string[];
  batchSize: number;
  maxLength: number;
}

export interface MemoryEstimate {
  weights: number;
  adapter: number;
  activations: number;
  total: number;
}

const FLOAT = 4;

export function estimateTrainingMemory(args: ModelArgs, s: TrainingSettingsForMemory): MemoryEstimate {
  const weights = parameterCount(args) * FLOAT;
  const loraParams = s.targets.reduce((sum, t) => {
    const { in: inF, out } = linearShape(args, t);
    return sum + s.rank * (inF + out);
  }, 0) * args.numLayers;
  // Weights, gradients and two AdamW moments.
  const adapter = loraParams * FLOAT * 4;
  const tokens = s.batchSize * s.maxLength;
  const q = args.numHeads * args.headDim;
  const kv = args.numKvHeads * args.headDim;
  // Floats alive at the peak of one step (forward tensors kept for backward, plus the gradients being
  // formed), per token and layer. The factors were measured with tf.profile on stories260K and a SmolLM2-shaped
  // model (wasm) across batch sizes, lengths and targets; tests/memory.test.ts keeps the estimate
  // between 1× and 3× the measured peak.
  const base = 4.5 * (6 * args.hiddenSize + 3 * q + 4 * kv + 4 * args.intermediateSize);
  const lora = s.targets.reduce((sum, t) => sum + 7 * linearShape(args, t).out + 8 * s.rank, 0);
  // Attention scores, mask, softmax and their gradients: about 14 [T, T] maps per head.
  const attention = 14 * s.batchSize * args.numHeads * s.maxLength * s.maxLength;
  // Logits, softmax, one-hot targets and their gradients for the completion rows (at most every token):
  // up to 17 [tokens, vocab] tensors at once, measured on SmolLM2's 49152-token vocabulary.
  const logits = 17 * tokens * args.vocabSize;
  const activations = (tokens * (base + lora) * args.numLayers + attention * args.numLayers + logits) * FLOAT;
  return { weights, adapter, activations, total: weights + adapter + activations };
}

/** Above this, a wasm run cannot allocate (32-bit WebAssembly memory). */
export const WASM_MEMORY_LIMIT = 4 * 2 ** 30;

/** A plain warning when the estimate will not fit in `limit` bytes, saying what to change; null when it fits. */
export function memoryWarning(estimate: MemoryEstimate, limit: number, s: TrainingSettingsForMemory): string | null {
  if (estimate.total <= limit) return null;
  const gb = (n: number) => `${(n / 2 ** 30).toFixed(1)} GB`;
  const advice = estimate.activations > estimate.weights
    ? `Lower the max length (now ${s.maxLength} tokens) or the batch size (now ${s.batchSize}).`
    : 'Choose a smaller model.';
  return `Training needs about ${gb(estimate.total)}, more than the ${gb(limit)} a browser gives WebAssembly. ${advice}`;
}
