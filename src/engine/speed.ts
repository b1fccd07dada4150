/**
 * How fast this device multiplies matrices on the current backend: the best of a few runs of one product,
 * in GFLOP/s. The bench reads its steps against it; the training estimate turns a run's FLOPs into a first
 * time from it before a real step has been measured.
 */
import { tf } from './tf';

/** The best GFLOP/s of `rounds` products [m, k]·[k, n] (the first one, which may pack or compile, too). */
export async function matMulGflops(m = 512, k = 576, n = 1536, rounds = 10): Promise<number> {
  const a = tf.randomNormal([m, k]) as tf.Tensor2D;
  const b = tf.randomNormal([k, n]) as tf.Tensor2D;
  let best = Infinity;
  try {
    for (let i = 0; i < rounds; i++) {
      const started = performance.now();
      const product = tf.matMul(a, b);
      // Asynchronously: webgpu's synchronous read needs OffscreenCanvas, which Node does not have.
      await product.data();
      best = Math.min(best, performance.now() - started);
      product.dispose();
    }
  } finally {
    tf.dispose([a, b]);
  }
  return (2 * m * k * n) / (Math.max(best, 1e-3) / 1000) / 1e9;
}

/**
 * Seconds one small op costs on the current backend, whatever its size: the dispatch overhead that makes a
 * tiny model's step far slower than its FLOPs say. The mean of a chain of `count` additions of 64 floats.
 */
export async function smallOpSeconds(count = 100): Promise<number> {
  let x = tf.zeros([64]);
  const one = tf.ones([64]);
  try {
    // The first op may compile or allocate.
    const warm = tf.add(x, one);
    await warm.data();
    warm.dispose();
    const started = performance.now();
    for (let i = 0; i < count; i++) {
      const next = tf.add(x, one);
      x.dispose();
      x = next;
    }
    await x.data();
    return (performance.now() - started) / 1000 / count;
  } finally {
    tf.dispose([x, one]);
  }
}
