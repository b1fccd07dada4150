/**
 * How many floating-point operations the engine's matrix products do, so a speed reads as achieved
 * GFLOP/s on any device. Only products count (2 per multiply-add); norms, softmax and other
 * element-wise work are a few percent. LoRA's base weights are frozen: the backward pass computes input
 * gradients for every product but weight gradients only for A and B.
 */
import { PROJECTIONS } from './architecture';
import { linearShape, type ModelArgs } from './config';
import type { LoraTarget } from './adapter-weights';

export interface StepShape {
  /** Rows and positions of the forward pass (after the next-token shift). */
  batch: number;
  steps: number;
  /** Positions whose logits the loss needs (completion tokens). */
  lossRows: number;
  rank: number;
  targets: readonly LoraTarget[];
  /**
   * Recomputed layers: each decoder layer runs forward a second time in the backward pass (but for a
   * frozen down_proj).
   */
  recompute: boolean;
}

/** One optimizer step's product FLOPs: forward, backward, and the forward again for recomputed layers. */
export function trainingStepFlops(args: ModelArgs, s: StepShape): number {
  const shape = (name: string) => linearShape(args, name);
  const rows = s.batch * s.steps;
  const linear = PROJECTIONS.reduce((n, name) => n + 2 * rows * shape(name).in * shape(name).out, 0);
  // q·kᵀ and P·v: 2 products of [T, hd]·[hd, T] size per head.
  const attention = 2 * 2 * s.batch * args.numHeads * s.steps * s.steps * args.headDim;
  const lora = s.targets.reduce((n, t) => n + 2 * rows * s.rank * (shape(t).in + shape(t).out), 0);
  const layerForward = linear + attention + lora;
  // Backward: input gradients of every product (the forward's cost again), attention's weight-side
  // products (dk, dv: once more), and A's and B's gradients (LoRA's cost once more).
  const layerBackward = linear + 2 * attention + 2 * lora;
  // The recomputation skips a frozen down_proj's product: only its input gradient is needed then.
  const down = s.targets.includes('down_proj') ? 0 : 2 * rows * args.hiddenSize * args.intermediateSize;
  const layers = args.numLayers * (layerForward + (s.recompute ? layerForward - down : 0) + layerBackward);
  const lmHead = 2 * 2 * s.lossRows * args.hiddenSize * args.vocabSize;
  return layers + lmHead;
}

/**
 * Product FLOPs of one forward pass with the loss (a validation pass): every layer once, and the lm_head for
 * the loss rows only.
 */
export function forwardFlops(args: ModelArgs, s: Omit<StepShape, 'recompute'>): number {
  const shape = (name: string) => linearShape(args, name);
  const rows = s.batch * s.steps;
  const linear = PROJECTIONS.reduce((n, name) => n + 2 * rows * shape(name).in * shape(name).out, 0);
  const attention = 2 * 2 * s.batch * args.numHeads * s.steps * s.steps * args.headDim;
  const lora = s.targets.reduce((n, t) => n + 2 * rows * s.rank * (shape(t).in + shape(t).out), 0);
  return args.numLayers * (linear + attention + lora) + 2 * s.lossRows * args.hiddenSize * args.vocabSize;
}

/** Product FLOPs of decoding one token at a context of `context` positions. */
export function decodeTokenFlops(args: ModelArgs, context: number): number {
  const linear = PROJECTIONS.reduce(
    (n, name) => n + 2 * linearShape(args, name).in * linearShape(args, name).out,
    0,
  );
  const attention = 2 * 2 * args.numHeads * context * args.headDim;
  return args.numLayers * (linear + attention) + 2 * args.hiddenSize * args.vocabSize;
}
