/**
 * Keys and values of earlier tokens, per layer, so generation feeds one new token at a time and gets
 * the same logits as a full-sequence pass. Owns its tensors: they outlive the tidy scope of a step.
 */
import { tf } from './tf';

export class KVCache {
  private keys: (tf.Tensor4D | null)[];
  private values: (tf.Tensor4D | null)[];
  /** Real-token mask over every cached position, per batch row (1 = token, 0 = padding). */
  keyMask: Float32Array[] = [];

  constructor(numLayers: number) {
    this.keys = new Array(numLayers).fill(null);
    this.values = new Array(numLayers).fill(null);
  }

  /** Number of positions already cached. */
  get length(): number {
    return this.keys[0]?.shape[2] ?? 0;
  }

  /** Appends this step's [B, KV, T, hd] keys and values; returns everything cached for the layer. */
  updateAndFetch(layer: number, k: tf.Tensor4D, v: tf.Tensor4D): [tf.Tensor4D, tf.Tensor4D] {
    const oldK = this.keys[layer];
    const oldV = this.values[layer];
    const newK = tf.keep(oldK ? tf.concat([oldK, k], 2) : k.clone());
    const newV = tf.keep(oldV ? tf.concat([oldV, v], 2) : v.clone());
    oldK?.dispose();
    oldV?.dispose();
    this.keys[layer] = newK;
    this.values[layer] = newV;
    return [newK, newV];
  }

  dispose(): void {
    for (const t of [...this.keys, ...this.values]) t?.dispose();
    this.keys.fill(null);
    this.values.fill(null);
    this.keyMask = [];
  }
}
