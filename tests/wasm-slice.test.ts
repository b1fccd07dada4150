/**
 * The in-place Slice, SplitV and Unpack registered for tfjs-wasm give what tfjs's cpu backend gives,
 * for every rank the engine uses, float32 and int32, and parts at the start, middle and end.
 */
import { describe, expect, it } from 'vitest';
import { createRng } from '../src/engine/random';
import { tf } from '../src/engine/tf';
import { switchBackend } from './helpers/shared';

type Case = { shape: number[]; dtype: 'float32' | 'int32'; run: (x: tf.Tensor) => tf.Tensor | tf.Tensor[] };

const CASES: Record<string, Case> = {
  'a middle block of a matrix': { shape: [7, 9], dtype: 'float32', run: (x) => tf.slice(x, [2, 3], [4, 5]) },
  'whole rows of a matrix': { shape: [7, 9], dtype: 'int32', run: (x) => tf.slice(x, [5, 0], [-1, -1]) },
  'one element of a vector': { shape: [11], dtype: 'float32', run: (x) => tf.slice(x, [10], [1]) },
  'a 3-D block': { shape: [4, 5, 6], dtype: 'float32', run: (x) => tf.slice(x, [1, 2, 3], [2, 3, 2]) },
  'a 4-D block with whole trailing axes': {
    shape: [2, 3, 4, 5],
    dtype: 'float32',
    run: (x) => tf.slice(x, [1, 1, 0, 0], [1, 2, -1, -1]),
  },
  'a 4-D block cut on every axis': {
    shape: [3, 4, 5, 6],
    dtype: 'int32',
    run: (x) => tf.slice(x, [1, 2, 1, 4], [2, 1, 3, 2]),
  },
  'split of the last axis (RoPE halves)': {
    shape: [2, 3, 5, 8],
    dtype: 'float32',
    run: (x) => tf.split(x, [4, 4], 3),
  },
  'uneven split with a -1 size': { shape: [6, 10], dtype: 'float32', run: (x) => tf.split(x, [3, -1, 2], 1) },
  'even split of the first axis': { shape: [6, 4], dtype: 'int32', run: (x) => tf.split(x, 3, 0) },
  'unstack of the first axis (per-head products)': {
    shape: [6, 5, 7],
    dtype: 'float32',
    run: (x) => tf.unstack(x),
  },
  'unstack of a middle axis': { shape: [3, 4, 5], dtype: 'int32', run: (x) => tf.unstack(x, 1) },
};

async function outputs(
  backend: 'cpu' | 'wasm',
  c: Case,
  values: Float32Array,
): Promise<{ shape: number[]; values: number[] }[]> {
  await switchBackend(backend);
  const x = tf.tensor(c.dtype === 'int32' ? Int32Array.from(values, Math.round) : values, c.shape, c.dtype);
  const result = c.run(x);
  const parts = Array.isArray(result) ? result : [result];
  const read = await Promise.all(
    parts.map(async (p) => ({ shape: p.shape, values: Array.from(await p.data()) })),
  );
  tf.dispose([x, ...parts]);
  return read;
}

describe('in-place slices on wasm', () => {
  for (const [name, c] of Object.entries(CASES)) {
    it(`${name} equals the cpu backend's`, async () => {
      const rng = createRng(name.length);
      const values = Float32Array.from(
        { length: c.shape.reduce((a, b) => a * b, 1) },
        () => (rng.next() - 0.5) * 1000,
      );
      const expected = await outputs('cpu', c, values);
      const before = tf.memory().numTensors;
      const actual = await outputs('wasm', c, values);
      expect(tf.memory().numTensors).toBe(before);
      expect(actual).toEqual(expected);
    });
  }
});
