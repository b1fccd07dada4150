// The bench times the run a person starts: the settings the CLI gives `webtune train --preset quick` (LoRA
// dropout included), over one epoch without warm-up; `dropout: 0` is the labelled run without dropout that
// scripts/bench_torch.py compares with.
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../src/bench/main';
import { benchRun, BENCH_PRESET, measure, wasmHeapBytes, type BenchResult } from '../src/bench/run';
import { loraSettings, trainSettings } from '../src/cli/run-settings';
import { RUN_DEFAULTS } from '../src/data/defaults';
import { loraSettingsOf, trainSettingsOf } from '../src/data/trainer-setup';
import { parameterCount } from '../src/engine/config';
import { disposeModel } from '../src/engine/model';
import { tf } from '../src/engine/tf';
import { loadFixture, switchBackend } from './helpers/shared';

const OPTIONS = { seq: 16, batch: 2, steps: 1, decode: 2, recompute: true };

describe('the bench run', () => {
  beforeAll(() => switchBackend('wasm'));

  it("is the CLI's run with the Quick try preset, dropout included, over one epoch without warm-up", () => {
    const { model } = loadFixture('stories260K');
    const known = { trainExamples: null, tokens: null, parameters: parameterCount(model.args) };
    const flags = { preset: BENCH_PRESET };
    const run = benchRun(model.args, OPTIONS);
    expect(loraSettingsOf(run)).toEqual(loraSettings(flags, known));
    expect(loraSettingsOf(run).dropout).toBe(RUN_DEFAULTS.dropout);
    expect(RUN_DEFAULTS.dropout).toBeGreaterThan(0);
    expect(trainSettingsOf(run, true)).toEqual({
      ...trainSettings(flags, known),
      epochs: 1,
      warmupSteps: 0,
      recompute: true,
    });
    expect(run.batchSize).toBe(OPTIONS.batch);
    expect(loraSettingsOf(benchRun(model.args, { ...OPTIONS, dropout: 0 })).dropout).toBe(0);
    disposeModel(model);
  });

  it('reports the dropout it trained with, and the run without it when asked', async () => {
    const before = tf.memory().numTensors;
    const withDropout = await measure('stories260K', loadFixture('stories260K').model, OPTIONS);
    expect(withDropout).toMatchObject({ preset: 'quick', dropout: RUN_DEFAULTS.dropout });
    const without = await measure('stories260K', loadFixture('stories260K').model, {
      ...OPTIONS,
      dropout: 0,
    });
    expect(without).toMatchObject({ preset: 'quick', dropout: 0 });
    for (const r of [withDropout, without]) expect(r.train_tokens_per_s).toBeGreaterThan(0);
    expect(tf.memory().numTensors).toBe(before);
  });
});

/** `npm run bench -- …args --json`: its results, from the JSON it prints. */
async function bench(args: string[]): Promise<BenchResult[]> {
  const out: string[] = [];
  const stdout = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    out.push(String(chunk));
    return true;
  });
  const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    expect(await main([...args, '--json'])).toBe(0);
  } finally {
    stdout.mockRestore();
    stderr.mockRestore();
  }
  return (JSON.parse(out.join('')) as { results: BenchResult[] }).results;
}

describe('npm run bench -- --weights', () => {
  const SMALL = [
    '--models',
    'stories260K',
    '--steps',
    '1',
    '--seq',
    '16',
    '--batch',
    '2',
    '--decode-tokens',
    '2',
  ];

  it('builds the model with its frozen weights in that format, and says so', async () => {
    const [f32] = await bench([...SMALL, '--backends', 'wasm']);
    const [q8] = await bench([...SMALL, '--backends', 'wasm', '--weights', 'q8_0']);
    const [nf4] = await bench([...SMALL, '--backends', 'wasm', '--weights', 'nf4']);
    expect([f32.weights, q8.weights, nf4.weights]).toEqual(['f32', 'q8_0', 'nf4']);
    // stories260K's 260K parameters: float32 is 4 bytes each; q8_0's blocks of 32 are 34 bytes, and its
    // norms stay float32; nf4's layers are about half a byte, its vocabulary matrix q8_0.
    expect(f32.frozen_bytes_per_weight).toBe(4);
    expect(q8.frozen_bytes_per_weight).toBeGreaterThan(34 / 32);
    expect(q8.frozen_bytes_per_weight).toBeLessThan(1.2);
    expect(nf4.frozen_bytes_per_weight).toBeLessThan(q8.frozen_bytes_per_weight);
    for (const r of [f32, q8, nf4]) expect(r.train_tokens_per_s).toBeGreaterThan(0);
    // A wrong format is refused before anything runs (the help test below checks its one line).
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await main([...SMALL, '--backends', 'wasm', '--weights', 'q4'])).toBe(2);
      expect(String(err.mock.calls[0]?.[0])).toMatch(/--weights must be one of f32, bf16, f16, q8_0, nf4/);
    } finally {
      err.mockRestore();
    }
  });

  it('reports the wasm heap on wasm, and none on other backends', async () => {
    const [wasm] = await bench([...SMALL, '--backends', 'wasm', '--weights', 'q8_0']);
    expect(wasm.backend).toBe('wasm');
    // The heap held the step's tensors at their peak and never shrinks; it grows by 64 KiB pages.
    expect(wasm.heap_bytes).toBeGreaterThanOrEqual(wasm.peak_bytes);
    expect(wasm.heap_bytes! % 65536).toBe(0);
    const now = (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.length;
    expect(wasm.heap_bytes).toBeLessThanOrEqual(now);
    expect(wasmHeapBytes()).toBe(now);
    await switchBackend('cpu');
    try {
      expect(wasmHeapBytes()).toBeNull();
    } finally {
      await switchBackend('wasm');
    }
  });
});

describe('npm run bench -- --help', () => {
  it('names every option and real shape, and a wrong flag gets one line pointing at it, not a stack', async () => {
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await main(['--help'])).toBe(0);
      const help = out.mock.calls.map((c) => String(c[0])).join('');
      for (const flag of ['--models', '--backends', '--weights', '--batch', '--seq', '--steps', '--json'])
        expect(help).toContain(flag);
      for (const shape of ['qwen2.5-1.5b', 'smollm2-1.7b', 'qwen3-1.7b', 'smollm2-135m'])
        expect(help).toContain(shape);
      expect(await main(['--weight', 'nf4'])).toBe(2);
      expect(await main(['--weights', 'q4'])).toBe(2);
      const lines = err.mock.calls.map((c) => String(c[0]));
      expect(lines).toEqual([
        "bench: Unknown option '--weight' (see npm run bench -- --help)\n",
        expect.stringMatching(
          /^bench: --weights must be one of f32, bf16, f16, q8_0, nf4 \(got "q4"\) \(see/,
        ),
      ]);
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
  });
});
