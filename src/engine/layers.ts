/**
 * The building blocks of a Llama-family decoder, as pure tensor functions.
 */
import { tf } from './tf';

export interface ForwardContext {
  /** Enables LoRA dropout; returns a fresh seed for each dropout mask so a run is reproducible. */
  dropoutSeed?: () => number;
}

/** Anything that maps [N, in] to [N, out]: a plain linear or one wrapped with LoRA. */
export interface Projection {
  readonly inFeatures: number;
  readonly outFeatures: number;
  apply(x: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D;
}

/**
 * A frozen linear layer. The checkpoint's [out, in] weight is stored transposed, [in, out], because
 * tfjs-wasm multiplies by a transposed operand 4–10× slower than by a plain one.
 */
export class Linear implements Projection {
  readonly inFeatures: number;
  readonly outFeatures: number;
  constructor(
    readonly weightT: tf.Tensor2D,
    readonly bias?: tf.Tensor1D,
  ) {
    [this.inFeatures, this.outFeatures] = weightT.shape;
  }

  apply(x: tf.Tensor2D): tf.Tensor2D {
    const y = frozenMatMul(x, this.weightT);
    return this.bias ? (tf.add(y, this.bias) as tf.Tensor2D) : y;
  }
}

/**
 * x · W for a frozen W [in, out]. The generic gradient, dy · Wᵀ, would multiply by a transposed operand
 * (tfjs-wasm's slow path); transposing W explicitly first is a cheap copy next to the product.
 */
export function frozenMatMul(x: tf.Tensor2D, weight: tf.Tensor2D): tf.Tensor2D {
  const product = tf.customGrad(((input: tf.Tensor2D, save: tf.GradSaveFunc) => {
    save([]);
    return {
      value: tf.matMul(input, weight),
      gradFunc: (dy: tf.Tensor2D) => tf.matMul(dy, tf.transpose(weight)),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return product(x) as tf.Tensor2D;
}

/** RMSNorm over the last axis: x / sqrt(mean(x²) + eps) · weight. */
export function rmsNorm<T extends tf.Tensor>(x: T, weight: tf.Tensor1D, eps: number): T {
  return tf.tidy(() => {
    const meanSquare = tf.mean(tf.square(x), -1, true);
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(meanSquare, eps))), weight) as T;
  });
}

/**
 * cos and sin tables for rotate-half RoPE at the given positions, shaped [B, 1, T, headDim] so they
 * broadcast over heads. Angles are computed in float64 (as the reference does) and rounded once.
 */
export function ropeTables(positions: Int32Array[], headDim: number, theta: number): { cos: tf.Tensor4D; sin: tf.Tensor4D } {
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
 * or before its own position (causal) that are real tokens (padding mask). -1e9 rather than -Infinity
 * keeps fully masked rows (left padding) finite instead of NaN.
 */
export function attentionBias(keyMask: Float32Array[], queries: number): tf.Tensor4D {
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
