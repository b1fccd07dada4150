// The packed-weight kernels (x·Wᵀ, dy·W, gather) for bf16, f16, q8_0 and nf4 on WebGPU (Dawn + SwiftShader),
// against the CPU's widening (dequantizeRows) and a float32 matMul on the cpu backend.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { dequantizeRows, pack, type PackedMatrix } from '../src/engine/quant';
import { createRng } from '../src/engine/random';
import { tf } from '../src/engine/tf';
import { countGpuWork } from '../src/engine/webgpu/counters';
import {
  packedGatherRows,
  packedInputGradient,
  packedKernelLimits,
  packedProduct,
  toGpu,
  type GpuPackedMatrix,
} from '../src/engine/webgpu/packed-matmul';
import { switchBackend } from './helpers/shared';

const FORMATS = ['bf16', 'f16', 'q8_0', 'nf4'] as const;
type Format = (typeof FORMATS)[number];

/**
 * [rows, cols]: none a multiple of the tiles; odd cols and cols ≡ 2 (mod 4) run halves' rows mid-word; 2053
 * rows take the vector product's 8 rows per thread.
 */
const SHAPES: [number, number][] = [
  [5, 64],
  [33, 100],
  [130, 172],
  [1, 1],
  [64, 576],
  [7, 33],
  [9, 130],
  [2053, 40],
];
/** Rows of x: the vector programs (1, 2 and 3 → tiles of 1, 2 and 4 rows) and the tiled ones (37). */
const NS = [1, 2, 3, 37];

function randomArray(length: number, seed: number): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length }, () => rng.next() * 2 - 1);
}

/** W's values: rows of different sizes (so that blocks' scales differ), row 1 all zeros. */
function weights(rows: number, cols: number, seed: number): Float32Array {
  const values = randomArray(rows * cols, seed);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) values[r * cols + c] *= r === 1 ? 0 : 2 ** ((r % 5) - 2);
  return values;
}

function ids(n: number, rows: number, seed: number): Int32Array {
  const rng = createRng(seed);
  return Int32Array.from({ length: n }, (_, i) => (i === 0 ? rows - 1 : Math.floor(rng.next() * rows)));
}

/** Each value within 1e-4 of the reference, relative to it (absolute below 1). */
function expectClose(actual: Float32Array, expected: Float32Array, what: string): void {
  expect(actual.length, what).toBe(expected.length);
  let at = -1;
  for (let i = 0; i < expected.length && at < 0; i++)
    if (!(Math.abs(actual[i] - expected[i]) <= 1e-4 * Math.max(1, Math.abs(expected[i])))) at = i;
  expect(at, `${what}: value ${at} is ${actual[at]}, not ${expected[at]}`).toBe(-1);
}

function expectSame(actual: Float32Array, expected: Float32Array, what: string): void {
  expect(actual.length, what).toBe(expected.length);
  const at = expected.findIndex((v, i) => !Object.is(v, actual[i]));
  expect(at, `${what}: value ${at} is ${actual[at]}, not ${expected[at]}`).toBe(-1);
}

async function onCpu<T>(run: () => Promise<T>): Promise<T> {
  await switchBackend('cpu');
  try {
    return await run();
  } finally {
    await switchBackend('webgpu');
  }
}

interface Inputs {
  n: number;
  x: Float32Array;
  dy: Float32Array;
  ids: Int32Array;
}

/** dequantizeRows, then float32 matMuls on the cpu backend; the gather is rows of the widened matrix. */
async function reference(m: PackedMatrix, inputs: Inputs[]) {
  const widened = dequantizeRows(m);
  return onCpu(async () => {
    const w = tf.tensor2d(widened, [m.rows, m.cols]);
    const out = [];
    for (const { n, x, dy, ids } of inputs) {
      const product = tf.tidy(() => tf.matMul(tf.tensor2d(x, [n, m.cols]), w, false, true));
      const gradient = tf.tidy(() => tf.matMul(tf.tensor2d(dy, [n, m.rows]), w));
      out.push({
        product: (await product.data()) as Float32Array,
        gradient: (await gradient.data()) as Float32Array,
        gather: Float32Array.from(Array.from(ids).flatMap((id) => Array.from(dequantizeRows(m, id, 1)))),
      });
      tf.dispose([product, gradient]);
    }
    w.dispose();
    return out;
  });
}

/** The three kernels on `inputs`, each call checked to leave only its output behind. */
async function onGpu(w: GpuPackedMatrix, inputs: Inputs[]) {
  const out = [];
  for (const { n, x, dy, ids } of inputs) {
    const tensors = [
      tf.tensor2d(x, [n, w.cols]),
      tf.tensor2d(dy, [n, w.rows]),
      tf.tensor1d(ids, 'int32'),
    ] as const;
    // NaN in freed buffers of the outputs' sizes, which tfjs hands out again: every value must be written.
    for (const cols of [w.rows, w.cols]) tf.fill([n, cols], NaN).dispose();
    const before = tf.memory().numTensors;
    const read = async (result: tf.Tensor) => {
      expect(tf.memory().numTensors).toBe(before + 1);
      const values = (await result.data()) as Float32Array;
      result.dispose();
      expect(tf.memory().numTensors).toBe(before);
      return values;
    };
    out.push({
      product: await read(packedProduct(tensors[0], w)),
      gradient: await read(packedInputGradient(tensors[1], w)),
      gather: await read(packedGatherRows(w, tensors[2])),
    });
    tf.dispose([...tensors]);
  }
  return out;
}

function inputsFor(rows: number, cols: number, seed: number): Inputs[] {
  return NS.map((n, i) => ({
    n,
    x: randomArray(n * cols, seed + 10 * i),
    dy: randomArray(n * rows, seed + 10 * i + 1),
    ids: ids(n, rows, seed + 10 * i + 2),
  }));
}

async function compare(format: Format, rows: number, cols: number, seed: number): Promise<GpuPackedMatrix> {
  const m = pack(weights(rows, cols, seed), rows, cols, format);
  const inputs = inputsFor(rows, cols, seed + 1);
  const expected = await reference(m, inputs);
  const w = toGpu(m);
  const actual = await onGpu(w, inputs);
  inputs.forEach(({ n }, i) => {
    const what = `${format} [${rows}, ${cols}], N = ${n}`;
    expectClose(actual[i].product, expected[i].product, `${what}: x·Wᵀ`);
    expectClose(actual[i].gradient, expected[i].gradient, `${what}: dy·W`);
    expectSame(actual[i].gather, expected[i].gather, `${what}: gather`);
  });
  return w;
}

beforeAll(async () => {
  await switchBackend('webgpu');
});

afterEach(() => {
  packedKernelLimits.maxBindingBytes = 0;
  packedKernelLimits.maxWorkgroupsPerDimension = 0;
});

describe.each(FORMATS)('packed %s kernels', (format) => {
  it.each(SHAPES)(
    `give x·Wᵀ, dy·W and gathered rows of the widened matrix for W [%i, %i], N = ${NS.join(', ')}`,
    async (rows, cols) => {
      const w = await compare(format, rows, cols, rows * 1000 + cols);
      expect(w.parts).toHaveLength(1);
      w.dispose();
    },
  );
});

/** Bytes the GPU holds for W [rows, cols]: the packed arrays, each padded to whole words. */
function expectedBytes(format: Format, rows: number, cols: number): number {
  const words = (bytes: number) => Math.ceil(bytes / 4) * 4;
  if (format === 'bf16' || format === 'f16') return words(rows * cols * 2);
  const blocks = rows * Math.ceil(cols / (format === 'q8_0' ? 32 : 64));
  return format === 'q8_0' ? blocks * 32 + words(blocks * 2) : blocks * 32 + blocks * 4;
}

describe('a packed matrix on the GPU', () => {
  it.each(FORMATS)('holds %s as 32-bit words, and nothing else', async (format) => {
    const [rows, cols] = [64, 576];
    const m = pack(weights(rows, cols, 5), rows, cols, format);
    const before = tf.memory();
    const { result: w, counts } = await countGpuWork(() => toGpu(m));
    const after = tf.memory();
    expect(w.bytes).toBe(expectedBytes(format, rows, cols));
    expect(after.numBytes - before.numBytes).toBe(w.bytes);
    expect(w.blocksPerRow).toBe(format === 'q8_0' ? 18 : format === 'nf4' ? 9 : 0);
    for (const part of w.parts) {
      expect(part.words.dtype).toBe('int32');
      if (part.scales) expect(part.scales.size).toBe(format === 'q8_0' ? (rows * 18) / 2 : rows * 9);
    }
    console.log(
      `${format} [${rows}, ${cols}] on the GPU: ${w.bytes} bytes, ${(w.bytes / (rows * cols)).toFixed(4)} per ` +
        `weight; toGpu: ${counts.uploads} uploads, ${counts.dispatches} dispatches`,
    );
    expect(counts.dispatches).toBe(0);
    w.dispose();
    expect(tf.memory().numTensors).toBe(before.numTensors);
  });
});

describe('packed kernels', () => {
  it.each(FORMATS)('take one dispatch each for %s, and leave no tensor behind', async (format) => {
    const [rows, cols, n] = [64, 576, 37];
    const w = toGpu(pack(weights(rows, cols, 7), rows, cols, format));
    const x = tf.tensor2d(randomArray(n * cols, 8), [n, cols]);
    const dy = tf.tensor2d(randomArray(n * rows, 9), [n, rows]);
    const rowIds = tf.tensor1d(ids(n, rows, 10), 'int32');
    for (const t of [x, dy, rowIds]) await t.data(); // uploaded before counting
    const before = tf.memory().numTensors;
    const counted = {
      'x·Wᵀ': await countGpuWork(() => tf.tidy(() => packedProduct(x, w))),
      'dy·W': await countGpuWork(() => tf.tidy(() => packedInputGradient(dy, w))),
      gather: await countGpuWork(() => tf.tidy(() => packedGatherRows(w, rowIds))),
      'x·Wᵀ at N = 1': await countGpuWork(() => tf.tidy(() => packedProduct(tf.slice(x, 0, 1), w))),
    };
    const report = Object.entries(counted).map(([op, { counts }]) => `${op} ${counts.dispatches}`);
    console.log(`${format} [${rows}, ${cols}], N = ${n}: dispatches ${report.join(', ')}`);
    expect(counted['x·Wᵀ'].counts.dispatches).toBe(1);
    expect(counted['dy·W'].counts.dispatches).toBe(1);
    expect(counted.gather.counts.dispatches).toBe(1);
    expect(counted['x·Wᵀ at N = 1'].counts.dispatches).toBe(2); // the slice and the product
    expect(tf.memory().numTensors).toBe(before + 4);
    tf.dispose([x, dy, rowIds, ...Object.values(counted).map((c) => c.result)]);
    w.dispose();
  });

  it.each(FORMATS)('differentiate x·Wᵀ in x with dy·W (%s)', async (format) => {
    const [rows, cols, n] = [33, 100, 5];
    const w = toGpu(pack(weights(rows, cols, 11), rows, cols, format));
    const x = tf.tensor2d(randomArray(n * cols, 12), [n, cols]);
    const probe = tf.tensor2d(randomArray(n * rows, 13), [n, rows]);
    const dx = tf.grad((input: tf.Tensor) => tf.sum(tf.mul(packedProduct(input as tf.Tensor2D, w), probe)))(
      x,
    );
    const direct = packedInputGradient(probe, w);
    expectClose((await dx.data()) as Float32Array, (await direct.data()) as Float32Array, `${format} dx`);
    tf.dispose([x, probe, dx, direct]);
    w.dispose();
  });

  it('give zero rows for ids outside the matrix', async () => {
    const w = toGpu(pack(weights(5, 70, 14), 5, 70, 'q8_0'));
    // Rows of values first, in a buffer of the same size that tfjs reuses: the zeros must be written.
    const valid = tf.tensor1d([0, 2, 3, 4], 'int32');
    const before = packedGatherRows(w, valid);
    expect(((await before.data()) as Float32Array).every((v) => v !== 0)).toBe(true);
    tf.dispose([valid, before]);
    const rowIds = tf.tensor1d([-1, 5, 2, 1 << 30], 'int32');
    const out = packedGatherRows(w, rowIds);
    const rows = (await out.array()) as number[][];
    expect(
      rows[0].every((v) => v === 0) && rows[1].every((v) => v === 0) && rows[3].every((v) => v === 0),
    ).toBe(true);
    expect(rows[2].some((v) => v !== 0)).toBe(true);
    tf.dispose([rowIds, out]);
    w.dispose();
  });

  it('take no rows of x', async () => {
    const w = toGpu(pack(weights(5, 64, 16), 5, 64, 'q8_0'));
    const empty = tf.zeros([0, 64]) as tf.Tensor2D;
    const { result, counts } = await countGpuWork(() => packedProduct(empty, w));
    expect(result.shape).toEqual([0, 5]);
    expect(counts.dispatches).toBe(0);
    tf.dispose([empty, result]);
    w.dispose();
  });

  it('refuse the wrong shapes, dtypes and a disposed matrix', () => {
    const w = toGpu(pack(weights(5, 64, 15), 5, 64, 'nf4'));
    const x = tf.zeros([2, 63]) as tf.Tensor2D;
    const ids = tf.tensor1d([0, 1], 'float32');
    expect(() => packedProduct(x, w)).toThrow(/float32 \[N, 64\]/);
    expect(() => packedInputGradient(x, w)).toThrow(/float32 \[N, 5\]/);
    expect(() => packedGatherRows(w, ids)).toThrow(/int32 \[N\]/);
    w.dispose();
    expect(() => packedProduct(tf.zeros([2, 64]) as tf.Tensor2D, w)).toThrow(/disposed/);
    tf.dispose([x, ids]);
  });
});

describe('packed matrices larger than the device limits', () => {
  it.each(FORMATS)('are split into parts of whole rows that give the same results (%s)', async (format) => {
    // 1 KB bindings: 130 × 172 takes 13 to 65 parts; 100-byte ones cut 7 × 33 into rows or threes.
    for (const [rows, cols, bytes] of [
      [130, 172, 1024],
      [7, 33, 100],
    ]) {
      packedKernelLimits.maxBindingBytes = bytes;
      const w = await compare(format, rows, cols, 17);
      expect(w.parts.length).toBeGreaterThan(1);
      const x = tf.tensor2d(randomArray(cols, 18), [1, cols]);
      await x.data();
      const { result, counts } = await countGpuWork(() => packedProduct(x, w));
      expect(counts.dispatches).toBe(w.parts.length);
      console.log(`${format} [${rows}, ${cols}] in ${w.parts.length} parts: ${counts.dispatches} dispatches`);
      tf.dispose([x, result]);
      w.dispose();
    }
  });

  it.each(FORMATS)(
    'spread their workgroups over y and z past the per-dimension limit (%s)',
    async (format) => {
      packedKernelLimits.maxWorkgroupsPerDimension = 4; // 21 product tiles at N = 37 go [4, 4, 2]
      (await compare(format, 200, 172, 19)).dispose();
    },
  );
});
