/**
 * The building blocks of a Llama-family decoder, as pure tensor functions.
 */
import { frozenProduct, type FrozenMatrix } from './frozen';
import type { KVCache } from './kv-cache';
import { tf } from './tf';
import { fusedKernelsApply } from './webgpu/program';
import { rmsNormOnGpu } from './webgpu/rms-norm';

export interface ForwardContext {
  /** Enables LoRA dropout; returns a fresh seed for each dropout mask so a run is reproducible. */
  dropoutSeed?: () => number;
}

/** Anything that maps [N, in] to [N, out]: a plain linear or one wrapped with LoRA. */
export interface Projection {
  readonly inFeatures: number;
  readonly outFeatures: number;
  apply(x: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D;
  /** The trainable tensors `apply` currently uses (none for a frozen linear). */
  trainable?(): tf.Variable[];
  /** An adapter's wrapper: the frozen projection underneath. */
  readonly base?: Projection;
  /** An adapter's wrapper: its output given the frozen projection's output `y` for the input `x`. */
  adapt?(y: tf.Tensor2D, x: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D;
  /**
   * A low-rank adapter's term, when it may share its first product with its neighbours' (see applyShared).
   */
  lowRank?(ctx: ForwardContext): LowRankTerm | null;
}

/** scale · (x · Aᵀ) · Bᵀ, with A [r, in] and B [out, r]: LoRA's term. */
export interface LowRankTerm {
  A: tf.Tensor2D;
  B: tf.Tensor2D;
  scale: number;
}

/** A frozen linear layer: its weight W [out, in] is a FrozenMatrix (frozen.ts), whatever holds it. */
export class Linear implements Projection {
  readonly inFeatures: number;
  readonly outFeatures: number;
  constructor(
    readonly matrix: FrozenMatrix,
    readonly bias: tf.Tensor1D | undefined,
  ) {
    this.inFeatures = matrix.cols;
    this.outFeatures = matrix.rows;
  }

  apply(x: tf.Tensor2D): tf.Tensor2D {
    const y = frozenProduct(this.matrix, x);
    return this.bias ? (tf.add(y, this.bias) as tf.Tensor2D) : y;
  }
}

/**
 * A frozen linear applied where only the gradient of its output is wanted (a recomputed layer's
 * recomputation): the value is zeros, never the product, and the gradient is the linear's input gradient.
 */
export function gradientOnlyLinear(linear: Linear, x: tf.Tensor2D): tf.Tensor2D {
  const op = tf.customGrad(((input: tf.Tensor2D, save: tf.GradSaveFunc) => {
    save([]);
    return {
      value: tf.zeros([input.shape[0], linear.outFeatures]),
      gradFunc: (dy: tf.Tensor2D) => tf.tidy(() => linear.matrix.inputGradient(dy)),
    };
  }) as unknown as CustomGradFn);
  return op(x) as tf.Tensor2D;
}

/**
 * One projection's share of a fused linear: projections that read the same input (q, k and v; gate and
 * up) are stored side by side as one weight and multiplied once (see applyShared). Alone, a part
 * computes the whole product and keeps its columns.
 */
export class LinearPart implements Projection {
  readonly inFeatures: number;
  constructor(
    readonly whole: Linear,
    readonly offset: number,
    readonly outFeatures: number,
  ) {
    this.inFeatures = whole.inFeatures;
  }

  apply(x: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => tf.slice(this.whole.apply(x), [0, this.offset], [-1, this.outFeatures]));
  }
}

/**
 * Projections of one input x: one product when they are parts of one fused linear (an adapter adds its
 * term to its part's output), else each on its own. Fewer, larger products keep a GPU busier.
 */
export function applyShared(projections: Projection[], x: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D[] {
  const frozen = projections.map((p) => p.base ?? p);
  const whole = fusedWhole(frozen);
  if (!whole) return projections.map((p) => p.apply(x, ctx));
  const outputs = tf.split(
    whole.apply(x),
    frozen.map((p) => p.outFeatures),
    1,
  ) as tf.Tensor2D[];
  const terms = projections.map((p) => p.lowRank?.(ctx) ?? null);
  const used = terms.flatMap((t) => (t ? [t] : []));
  if (used.length < 2 || used.length < projections.filter((p) => p.adapt).length) {
    return projections.map((p, i) => (p.adapt ? p.adapt(outputs[i], x, ctx) : outputs[i]));
  }
  // The adapters' A's stacked, [Σr, in]: one product x · A_allᵀ, then each rank's columns through its B.
  const low = tf.split(
    tf.matMul(x, tf.transpose(tf.concat(used.map((t) => t.A)))),
    used.map((t) => t.A.shape[0]),
    1,
  );
  let next = 0;
  return outputs.map((y, i) => {
    const t = terms[i];
    return t ? tf.add(y, tf.mul(tf.matMul(low[next++], tf.transpose(t.B)), t.scale)) : y;
  });
}

/** The fused linear whose columns `parts` are, all of them in order; else undefined. */
function fusedWhole(parts: Projection[]): Linear | undefined {
  const first = parts[0];
  if (!(first instanceof LinearPart)) return undefined;
  let next = 0;
  for (const p of parts) {
    if (!(p instanceof LinearPart) || p.whole !== first.whole || p.offset !== next) return undefined;
    next += p.outFeatures;
  }
  return next === first.whole.outFeatures ? first.whole : undefined;
}

/** The tensor-function type tf.customGrad takes, for functions written with their own gradient. */
type CustomGradFn = Parameters<typeof tf.customGrad>[0];

/**
 * RMSNorm over the last axis: x / sqrt(mean(x²) + eps) · weight, with a hand-written gradient that keeps
 * only x (the weight is frozen). With g = dy·weight and r = 1/sqrt(mean(x²) + eps):
 * dx = r·g − x·r³·mean(g·x).
 */
export function rmsNorm<T extends tf.Tensor>(x: T, weight: tf.Tensor1D, eps: number): T {
  // On webgpu one fused kernel each way (src/engine/webgpu/rms-norm.ts) replaces the ops below.
  if (fusedKernelsApply()) return rmsNormOnGpu(x, weight, eps);
  const invRms = (input: tf.Tensor) => tf.rsqrt(tf.add(tf.mean(tf.square(input), -1, true), eps));
  const op = tf.customGrad(((input: T, save: tf.GradSaveFunc) => {
    save([input]);
    return {
      value: tf.tidy(() => tf.mul(tf.mul(input, invRms(input)), weight)),
      gradFunc: (dy: T, [saved]: tf.Tensor[]) =>
        tf.tidy(() => {
          const r = invRms(saved);
          const g = tf.mul(dy, weight);
          const meanGx = tf.mean(tf.mul(g, saved), -1, true);
          return tf.sub(tf.mul(g, r), tf.mul(saved, tf.mul(tf.pow(r, 3), meanGx)));
        }),
    };
  }) as unknown as CustomGradFn);
  return op(x) as T;
}

/**
 * SwiGLU's gate: silu(gate) · up, keeping only its two inputs for the gradient:
 * d(up) = dy·silu(gate); d(gate) = dy·up·σ(gate)·(1 + gate·(1 − σ(gate))).
 */
export function swiGlu(gate: tf.Tensor2D, up: tf.Tensor2D): tf.Tensor2D {
  const op = tf.customGrad(((g: tf.Tensor2D, u: tf.Tensor2D, save: tf.GradSaveFunc) => {
    save([g, u]);
    return {
      value: tf.tidy(() => tf.mul(tf.mul(g, tf.sigmoid(g)), u)),
      gradFunc: (dy: tf.Tensor2D, [savedGate, savedUp]: tf.Tensor[]) =>
        tf.tidy(() => {
          const sig = tf.sigmoid(savedGate);
          const dUp = tf.mul(dy, tf.mul(savedGate, sig));
          const dSilu = tf.mul(sig, tf.add(1, tf.mul(savedGate, tf.sub(1, sig))));
          return [tf.mul(tf.mul(dy, savedUp), dSilu), dUp];
        }),
    };
  }) as unknown as CustomGradFn);
  return op(gate, up) as tf.Tensor2D;
}

/**
 * GeGLU's gate with GELU's tanh approximation (Gemma's gelu_pytorch_tanh): gelu(gate) · up, where
 * gelu(g) = ½g(1 + tanh(u)), u = √(2/π)(g + 0.044715g³). Keeps only its two inputs for the gradient:
 * d(up) = dy·gelu(gate); d(gate) = dy·up·(½(1 + tanh u) + ½g(1 − tanh²u)·√(2/π)(1 + 3·0.044715g²)).
 */
export function geGlu(gate: tf.Tensor2D, up: tf.Tensor2D): tf.Tensor2D {
  const c = Math.sqrt(2 / Math.PI);
  const tanhOf = (g: tf.Tensor) => tf.tanh(tf.mul(c, tf.add(g, tf.mul(0.044715, tf.pow(g, 3)))));
  const op = tf.customGrad(((g: tf.Tensor2D, u: tf.Tensor2D, save: tf.GradSaveFunc) => {
    save([g, u]);
    return {
      value: tf.tidy(() => tf.mul(tf.mul(tf.mul(0.5, g), tf.add(1, tanhOf(g))), u)),
      gradFunc: (dy: tf.Tensor2D, [savedGate, savedUp]: tf.Tensor[]) =>
        tf.tidy(() => {
          const t = tanhOf(savedGate);
          const gelu = tf.mul(tf.mul(0.5, savedGate), tf.add(1, t));
          const slope = tf.mul(c, tf.add(1, tf.mul(3 * 0.044715, tf.square(savedGate))));
          const dGelu = tf.add(
            tf.mul(0.5, tf.add(1, t)),
            tf.mul(tf.mul(tf.mul(0.5, savedGate), tf.sub(1, tf.square(t))), slope),
          );
          return [tf.mul(tf.mul(dy, savedUp), dGelu), tf.mul(dy, gelu)];
        }),
    };
  }) as unknown as CustomGradFn);
  return op(gate, up) as tf.Tensor2D;
}

/**
 * a · b over the last two axes of [..., M, K] and [..., K, N] tensors (either transposed first when
 * asked). tfjs-wasm runs a batched product in a plain loop (~2 GFLOP/s here) and only a 2-D one in
 * XNNPACK (~25), so on wasm the batch is cut into 2-D products (see wasm-slice.ts for why the cutting
 * is cheap); elsewhere it is one call.
 */
export function batchMatMul(a: tf.Tensor, b: tf.Tensor, transposeA = false, transposeB = false): tf.Tensor {
  if (tf.getBackend() !== 'wasm') return tf.matMul(a, b, transposeA, transposeB);
  return tf.tidy(() => {
    const swapLast = (x: tf.Tensor) =>
      tf.transpose(
        x,
        [...x.shape.keys()].map((i) => (i < x.rank - 2 ? i : 2 * x.rank - 3 - i)),
      );
    const left = transposeA ? swapLast(a) : a;
    const right = transposeB ? swapLast(b) : b;
    const lead = left.shape.slice(0, -2);
    const [m, k] = left.shape.slice(-2);
    const n = right.shape[right.rank - 1];
    const count = lead.reduce((x, y) => x * y, 1);
    const rights = tf.unstack(tf.reshape(right, [count, k, n]));
    const products = tf
      .unstack(tf.reshape(left, [count, m, k]))
      .map((l, i) => tf.matMul(l as tf.Tensor2D, rights[i] as tf.Tensor2D));
    return tf.reshape(tf.stack(products), [...lead, m, n]);
  });
}

/**
 * Scaled dot-product attention for grouped queries: q [B, kvHeads, groups·T, hd] (the query heads that
 * share a KV head stacked along time), k and v [B, kvHeads, S, hd], bias [B, 1, T, S]. Returns
 * softmax(q·kᵀ·scale + bias)·v in q's layout (scale: head_dim^-½ unless the family says otherwise).
 * Its gradient keeps q, k, v and the attention weights P only: dP = dO·vᵀ; dS = P·(dP − Σ(dP·P));
 * dq = dS·k·scale; dk = dSᵀ·q·scale; dv = Pᵀ·dO.
 */
export function attend(
  q: tf.Tensor4D,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  bias: tf.Tensor4D,
  heads: number,
  scale = 1 / Math.sqrt(q.shape[3]),
): tf.Tensor4D {
  const [batch, kvHeads, rows] = q.shape;
  const steps = rows / (heads / kvHeads);
  const keys = k.shape[2];
  const op = tf.customGrad(((qIn: tf.Tensor4D, kIn: tf.Tensor4D, vIn: tf.Tensor4D, save: tf.GradSaveFunc) => {
    // The bias broadcasts over heads in the [B, heads, T, S] view; the products run in the grouped view.
    const probs = tf.tidy(() => {
      const scores = tf.reshape(batchMatMul(qIn, kIn, false, true), [batch, heads, steps, keys]);
      return tf.reshape(tf.softmax(tf.add(tf.mul(scores, scale), bias)), [
        batch,
        kvHeads,
        rows,
        keys,
      ]) as tf.Tensor4D;
    });
    save([qIn, kIn, vIn, probs]);
    return {
      value: batchMatMul(probs, vIn) as tf.Tensor4D,
      gradFunc: (dy: tf.Tensor4D, [savedQ, savedK, savedV, savedP]: tf.Tensor[]) =>
        tf.tidy(() => {
          const dProbs = batchMatMul(dy, savedV, false, true);
          const dScores = tf.mul(
            tf.mul(savedP, tf.sub(dProbs, tf.sum(tf.mul(dProbs, savedP), -1, true))),
            scale,
          );
          return [
            batchMatMul(dScores, savedK),
            batchMatMul(dScores, savedQ, true, false),
            batchMatMul(savedP, dy, true, false),
          ];
        }),
    };
  }) as unknown as CustomGradFn);
  return op(q, k, v) as tf.Tensor4D;
}

/**
 * cos and sin tables for rotate-half RoPE at the given positions, shaped [B, 1, T, headDim] so they
 * broadcast over heads. Angles are computed in float64 (as the reference does) and rounded once.
 */
export function ropeTables(
  positions: Int32Array[],
  headDim: number,
  theta: number,
): { cos: tf.Tensor4D; sin: tf.Tensor4D } {
  const batch = positions.length;
  const steps = positions[0].length;
  const half = headDim / 2;
  const cos = new Float32Array(batch * steps * headDim);
  const sin = new Float32Array(batch * steps * headDim);
  const invFreq = Array.from({ length: half }, (_, i) => 1 / theta ** ((2 * i) / headDim));
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < steps; t++) {
      const base = (b * steps + t) * headDim;
      for (let i = 0; i < half; i++) {
        const angle = positions[b][t] * invFreq[i];
        cos[base + i] = cos[base + i + half] = Math.cos(angle);
        sin[base + i] = sin[base + i + half] = Math.sin(angle);
      }
    }
  }
  const shape: [number, number, number, number] = [batch, 1, steps, headDim];
  return { cos: tf.tensor4d(cos, shape), sin: tf.tensor4d(sin, shape) };
}

/** x·cos + rotate_half(x)·sin, where rotate_half([x1, x2]) = [-x2, x1] on the last axis. */
export function applyRope(x: tf.Tensor4D, cos: tf.Tensor4D, sin: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const half = x.shape[3] / 2;
    const [x1, x2] = tf.split(x, [half, half], 3);
    const rotated = tf.concat([tf.neg(x2), x1], 3);
    return tf.add(tf.mul(x, cos), tf.mul(rotated, sin));
  });
}

/**
 * Additive attention bias [B, 1, T, S] for T new queries over S = past + T keys: a query sees keys at
 * or before its own position (causal) that are real tokens (padding mask), and with a sliding `window`
 * only those less than `window` real tokens before it. -1e9 rather than -Infinity keeps fully masked rows
 * (left padding) finite instead of NaN.
 */
export function attentionBias(
  keyMask: Float32Array[],
  queries: number,
  window: number | null = null,
): tf.Tensor4D {
  const batch = keyMask.length;
  const keys = keyMask[0].length;
  const past = keys - queries;
  const bias = new Float32Array(batch * queries * keys);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < queries; t++) {
      const row = (b * queries + t) * keys;
      for (let s = 0; s < keys; s++) {
        if (s > past + t || keyMask[b][s] === 0) bias[row + s] = -1e9;
      }
      // Positions count real tokens only (positionsFromMask), so the window does too: walk back from the
      // query and hide every real key from the window-th on.
      if (window !== null) {
        let seen = 0;
        for (let s = Math.min(past + t, keys - 1); s >= 0; s--) {
          if (keyMask[b][s] === 0) continue;
          if (++seen > window) bias[row + s] = -1e9;
        }
      }
    }
  }
  return tf.tensor4d(bias, [batch, 1, queries, keys]);
}

/** Positions of the new tokens: the count of real tokens before each one, so left padding is skipped. */
export function positionsFromMask(keyMask: Float32Array[], queries: number): Int32Array[] {
  return keyMask.map((row) => {
    const positions = new Int32Array(queries);
    let seen = 0;
    const past = row.length - queries;
    for (let s = 0; s < row.length; s++) {
      if (s >= past) positions[s - past] = seen;
      if (row[s] > 0) seen++;
    }
    return positions;
  });
}

/**
 * What a layer of one forward pass gets: the batch's shape, and the RoPE tables and attention bias of its
 * kind of attention (shared by every layer of that kind).
 */
export interface LayerContext extends ForwardContext {
  batch: number;
  steps: number;
  /** RoPE cos and sin [B, 1, T, headDim], at the layer's RoPE base. */
  cos: tf.Tensor4D;
  sin: tf.Tensor4D;
  /** Additive causal + padding (+ sliding-window) mask [B, 1, T, S]. */
  bias: tf.Tensor4D;
  /**
   * Builds cos, sin and bias again from host arrays (a recomputed layer's backward pass needs them after
   * they are gone).
   */
  remakeTables: () => { cos: tf.Tensor4D; sin: tf.Tensor4D; bias: tf.Tensor4D };
  cached?: { cache: KVCache; layer: number };
  /** A recomputed layer's recomputation: only the gradient of the output is wanted, never its value. */
  gradientOnly?: boolean;
}
