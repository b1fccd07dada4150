// webtune's own WGSL kernels against the plain tfjs ops they replace, on WebGPU (Dawn + SwiftShader) and
// against the cpu backend; and the GPU counters the bench reports.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmsNorm } from '../src/engine/layers';
import { disposeModel, type LlamaModel } from '../src/engine/model';
import { F32Matrix } from '../src/engine/frozen';
import { lmHeadChunkLossOnGpu } from '../src/engine/webgpu/cross-entropy';
import { createRng } from '../src/engine/random';
import { tf } from '../src/engine/tf';
import { countGpuWork } from '../src/engine/webgpu/counters';
import { fusedKernels } from '../src/engine/webgpu/program';
import { switchBackend } from './helpers/shared';
import { crossEntropySum } from './helpers/cross-entropy';

function randomArray(length: number, seed: number, scale = 1): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length }, () => (rng.next() * 2 - 1) * scale);
}

/** Each value within 1e-4 of the reference, absolute or relative to it. */
function expectClose(actual: Float32Array, expected: Float32Array): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < expected.length; i++) {
    const excess = Math.abs(actual[i] - expected[i]) - 1e-4 * Math.max(1, Math.abs(expected[i]));
    if (excess > worst) [worst, at] = [excess, i];
  }
  expect(at, `value ${at}: ${actual[at]} instead of ${expected[at]}`).toBe(-1);
}

interface Case {
  shape: number[];
  /** How big the values are: RMSNorm must not care, a sum of squares without care would. */
  scale: number;
}

/** RMSNorm's value and d(Σ y·probe)/dx for host data, on whatever backend and path is current. */
async function rmsNormRun(
  { shape, scale }: Case,
  seed: number,
): Promise<{ value: Float32Array; dx: Float32Array }> {
  const hidden = shape[shape.length - 1];
  const size = shape.reduce((a, b) => a * b, 1);
  const x = tf.tensor(randomArray(size, seed, scale), shape);
  const weight = tf.tensor1d(randomArray(hidden, seed + 1));
  const probe = tf.tensor(randomArray(size, seed + 2), shape);
  const value = rmsNorm(x, weight, 1e-5);
  const [dx] = tf.grads((input: tf.Tensor) => rmsNorm(input, weight, 1e-5))([x], probe);
  const result = { value: (await value.data()) as Float32Array, dx: (await dx.data()) as Float32Array };
  tf.dispose([x, weight, probe, value, dx]);
  return result;
}

async function onCpu<T>(run: () => Promise<T>): Promise<T> {
  await switchBackend('cpu');
  try {
    return await run();
  } finally {
    await switchBackend('webgpu');
  }
}

async function plain<T>(run: () => Promise<T>): Promise<T> {
  fusedKernels.enabled = false;
  try {
    return await run();
  } finally {
    fusedKernels.enabled = true;
  }
}

beforeAll(async () => {
  await switchBackend('webgpu');
});

afterAll(() => {
  fusedKernels.enabled = true;
});

describe('RMSNorm kernel', () => {
  const cases: Case[] = [
    { shape: [37, 576], scale: 1 }, // SmolLM2's hidden size; 37 rows, a prime
    { shape: [130, 64], scale: 3 }, // a head's size (Qwen3's q/k norm); 130 rows, two past a multiple of 64
    { shape: [2, 3, 5, 64], scale: 0.01 }, // q/k norm's 4-D input
    { shape: [7, 48], scale: 1 }, // a row shorter than the workgroup
    { shape: [3, 1000], scale: 50 }, // a row longer than the workgroup, not a multiple of it
  ];

  it.each(cases)(
    'gives the values and gradient of the plain ops, on webgpu and on cpu, for $shape',
    async (c) => {
      const fused = await rmsNormRun(c, 11);
      const plainGpu = await plain(() => rmsNormRun(c, 11));
      const plainCpu = await onCpu(() => rmsNormRun(c, 11));
      expectClose(fused.value, plainGpu.value);
      expectClose(fused.dx, plainGpu.dx);
      expectClose(fused.value, plainCpu.value);
      expectClose(fused.dx, plainCpu.dx);
    },
  );

  it('is one dispatch each way and leaves no tensor behind', async () => {
    const c = { shape: [37, 576], scale: 1 };
    await rmsNormRun(c, 3); // compiles the shaders
    const before = tf.memory().numTensors;
    const x = tf.tensor(randomArray(37 * 576, 1), [37, 576]);
    const weight = tf.tensor1d(randomArray(576, 2));
    const probe = tf.tensor(randomArray(37 * 576, 3), [37, 576]);
    const forward = await countGpuWork(() => tf.tidy(() => rmsNorm(x, weight, 1e-5)));
    const both = await countGpuWork(() =>
      tf.grads((input: tf.Tensor) => rmsNorm(input, weight, 1e-5))([x], probe),
    );
    expect(forward.counts.dispatches).toBe(1);
    expect(both.counts.dispatches).toBe(2);
    tf.dispose([x, weight, probe, forward.result, ...both.result]);
    expect(tf.memory().numTensors).toBe(before);
    await rmsNormRun(c, 4);
    expect(tf.memory().numTensors).toBe(before);
  });
});

interface LossCase {
  rows: number;
  hidden: number;
  /** The lm_head's pieces (one unless the vocabulary is split). */
  pieces: number[];
}

/** Just what the lm_head's loss reads of a model: its lm_head in pieces, stored transposed as models do. */
function headOnly(c: LossCase, seed: number): LlamaModel {
  const vocabSize = c.pieces.reduce((a, b) => a + b, 0);
  const lm_head = c.pieces.map(
    (size, i) =>
      new F32Matrix(tf.tensor2d(randomArray(c.hidden * size, seed + i, 0.5), [c.hidden, size]), true, true),
  );
  const vocabStarts = c.pieces.map((_, i) => c.pieces.slice(0, i).reduce((a, b) => a + b, 0));
  return { args: { vocabSize }, lm_head, vocabStarts, owned: lm_head } as unknown as LlamaModel;
}

function lossInputs(c: LossCase, seed: number) {
  const vocab = c.pieces.reduce((a, b) => a + b, 0);
  const rng = createRng(seed);
  const targets = Int32Array.from({ length: c.rows }, (_, i) =>
    i === 0 ? vocab - 1 : Math.floor(rng.next() * vocab),
  );
  const weights = Float32Array.from({ length: c.rows }, (_, i) => (i % 5 === 2 ? 0 : 0.25 + rng.next()));
  return { targets, weights, hidden: randomArray(c.rows * c.hidden, seed + 1, 2) };
}

/** The plain chunked loss (lm-head-loss.ts) and its d/d(hidden). */
async function plainLoss(c: LossCase, seed: number): Promise<Float32Array[]> {
  const model = headOnly(c, seed);
  const { targets, weights, hidden } = lossInputs(c, seed);
  const x = tf.tensor2d(hidden, [c.rows, c.hidden]);
  const { value, grads } = tf.valueAndGrads((h: tf.Tensor) =>
    crossEntropySum(model, h as tf.Tensor2D, targets, weights),
  )([x]);
  const out = [(await value.data()) as Float32Array, (await grads[0].data()) as Float32Array];
  tf.dispose([x, value, ...grads]);
  disposeModel(model);
  return out;
}

async function kernelLoss(c: LossCase, seed: number): Promise<Float32Array[]> {
  const model = headOnly(c, seed);
  const { targets, weights, hidden } = lossInputs(c, seed);
  const x = tf.tensor2d(hidden, [c.rows, c.hidden]);
  const { rowLosses, dHidden } = lmHeadChunkLossOnGpu(model, x, targets, weights, true);
  const loss = tf.sum(rowLosses);
  const out = [(await loss.data()) as Float32Array, (await dHidden!.data()) as Float32Array];
  tf.dispose([x, rowLosses, loss, dHidden!]);
  disposeModel(model);
  return out;
}

describe('cross-entropy kernels for a chunk of lm_head rows', () => {
  const cases: LossCase[] = [
    { rows: 37, hidden: 64, pieces: [1000] }, // a vocabulary that is no multiple of the workgroup
    { rows: 5, hidden: 576, pieces: [8191] }, // SmolLM2's hidden size; a prime vocabulary
    { rows: 19, hidden: 48, pieces: [300, 213] }, // a split vocabulary
  ];

  it.each(cases)(
    'give the loss and d(hidden) of the plain ops, on webgpu and on cpu, for $rows rows × $hidden → $pieces',
    async (c) => {
      const fused = await kernelLoss(c, 31);
      const plainGpu = await plainLoss(c, 31);
      const plainCpu = await onCpu(() => plainLoss(c, 31));
      fused.forEach((values, i) => {
        expectClose(values, plainGpu[i]);
        expectClose(values, plainCpu[i]);
      });
    },
  );

  it('give the loss alone without a gradient, and leave no tensor behind', async () => {
    const c = { rows: 37, hidden: 64, pieces: [1000] };
    await kernelLoss(c, 1);
    const before = tf.memory().numTensors;
    const model = headOnly(c, 2);
    const { targets, weights, hidden } = lossInputs(c, 2);
    const x = tf.tensor2d(hidden, [c.rows, c.hidden]);
    const { rowLosses, dHidden } = lmHeadChunkLossOnGpu(model, x, targets, weights, false);
    const loss = tf.sum(rowLosses);
    rowLosses.dispose();
    expect(dHidden).toBeUndefined();
    const plainValue = crossEntropySum(model, x, targets, weights);
    expectClose((await loss.data()) as Float32Array, (await plainValue.data()) as Float32Array);
    tf.dispose([x, loss, plainValue]);
    disposeModel(model);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('take fewer dispatches than the plain ops', async () => {
    const c = { rows: 37, hidden: 64, pieces: [1000] };
    const fused = await countGpuWork(() => kernelLoss(c, 3));
    const plainOps = await countGpuWork(() => plainLoss(c, 3));
    expect(fused.counts.dispatches).toBeLessThan(plainOps.counts.dispatches);
  });
});

describe('GPU counters', () => {
  it('count dispatches, uploads and readbacks, and put the backend back as it was', async () => {
    const a = tf.tensor1d(randomArray(2000, 5));
    const b = tf.tensor1d(randomArray(2000, 6));
    const { counts } = await countGpuWork(async () => {
      const sum = tf.add(a, b);
      await sum.data();
      sum.dispose();
    });
    expect(counts.dispatches).toBe(1);
    expect(counts.uploads).toBe(2);
    expect(counts.uploadedBytes).toBeGreaterThanOrEqual(2 * 2000 * 4);
    expect(counts.readbacks).toBe(1);
    expect(counts.readbackBytes).toBe(2000 * 4);
    const backend = tf.backend() as unknown as Record<string, unknown>;
    expect(Object.keys(backend)).not.toContain('recordAndSubmit');
    tf.dispose([a, b]);
  });
});
