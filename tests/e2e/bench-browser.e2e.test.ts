// `npm run bench -- --browser`: the benchmark in headless Chromium's Web Worker, wasm on every logical core.
// It serves the suite's build (which has the bench page) rather than building its own.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, inject, it } from 'vitest';

const ROOT = path.resolve(__dirname, '..', '..');

describe('npm run bench -- --browser', () => {
  it('measures stories260K on wasm in the browser, with a thread per logical core', async () => {
    const build = inject('e2eBuild');
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      [
        'bin/bench.mjs',
        '--browser',
        '--json',
        '--backends',
        'wasm',
        '--models',
        'stories260K',
        '--steps',
        '1',
        '--decode-tokens',
        '4',
        '--seq',
        '32',
        '--batch',
        '2',
      ],
      {
        cwd: ROOT,
        env: { ...process.env, ...(build ? { WEBTUNE_BENCH_BUILD: build } : {}) },
        timeout: 90_000,
      },
    );
    const { machine, results } = JSON.parse(stdout);
    expect(machine).toMatchObject({
      browser: expect.stringMatching(/^Chromium \d+\.\d+\.\d+\.\d+/),
      hardware_concurrency: expect.any(Number),
    });
    const threads = Math.min(8, machine.hardware_concurrency);
    expect(results).toEqual([
      expect.objectContaining({
        model: 'stories260K',
        backend: 'wasm',
        where: 'browser',
        threads,
        seq: 32,
        batch: 2,
        params: 260032,
      }),
    ]);
    const [result] = results;
    for (const figure of [
      'train_tokens_per_s',
      'train_seconds_per_step',
      'decode_tokens_per_s',
      'peak_bytes',
      'train_gflops',
      'decode_gflops',
      'matmul_peak_gflops',
    ]) {
      expect(result[figure], figure).toBeGreaterThan(0);
    }
    // The same line as in Node, saying where it ran and on how many threads.
    expect(stderr).toContain(
      `stories260K on wasm (browser, ${threads} thread${threads === 1 ? '' : 's'}), weights f32, 2×32, recompute on, dropout 0.05: train `,
    );
  }, 120_000);
});
