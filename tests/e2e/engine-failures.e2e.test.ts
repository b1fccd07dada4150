// The built page when the engine has trouble: wasm threads that fail or hang fall back to one thread (said in
// the header), and a worker that dies is reported, fails what was waiting, and restarts with the same model.
// Failures are real: the network refuses or never answers, or the worker throws in its global scope.
import path from 'node:path';
import type { ConsoleMessage, Worker } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { dataFile } from '../helpers/shared';
import { checkpointSteps, SCREENSHOTS, useHarness } from './browser';

const THREADED_WASM = /tfjs-backend-wasm-threaded-simd[^/]*\.wasm$/;

describe('engine failures in the page', () => {
  const harness = useHarness({ fresh: true });
  const compute = () => harness.page.locator('header .status');

  it('runs the multi-threaded wasm build when nothing fails, its helper threads all started', async () => {
    const { page } = harness;
    const logged: string[] = [];
    const log = (message: ConsoleMessage) => logged.push(message.text());
    page.on('console', log);
    await page.goto(`${harness.baseUrl}/?model=/models/stories260K`);
    await page.getByText('260K parameters').waitFor({ timeout: 60_000 });
    const status = (await compute().textContent())!;
    // wasm computes on every logical core, up to the 8 helper threads tfjs has: on a 2-core machine, two.
    const cores = await page.evaluate(() => navigator.hardwareConcurrency);
    const threads = Math.min(8, Math.max(1, cores));
    expect(status).toContain(
      `Compute: wasm WebAssembly on the CPU, ${threads} thread${threads === 1 ? '' : 's'}`,
    );
    expect(status).not.toContain('logical cores');
    expect(status).not.toContain('failed');
    expect(harness.requests.some((url) => THREADED_WASM.test(url))).toBe(true);
    // The helper threads (pthread workers, started from blob: URLs) are up, and none reported an error.
    expect(page.workers().filter((w) => w.url().startsWith('blob:')).length).toBeGreaterThanOrEqual(threads);
    page.off('console', log);
    expect(logged.filter((text) => /worker sent an error|is not defined/.test(text))).toEqual([]);
  });

  it('falls back to one thread when the threaded binary cannot be fetched, and says why', async () => {
    const { page } = harness;
    await page.route(THREADED_WASM, (route) => route.abort('connectionrefused'));
    try {
      await page.goto(`${harness.baseUrl}/?model=/models/stories260K`);
      await page.getByText('260K parameters').waitFor({ timeout: 60_000 });
      await expect(compute().textContent()).resolves.toMatch(
        /Compute: wasm.*WebAssembly on the CPU, 1 thread; wasm with threads failed to start \(.+\), so it runs on one thread/,
      );
    } finally {
      await page.unroute(THREADED_WASM);
    }
  });

  it('falls back to one thread when the threaded start hangs, within the time bound', async () => {
    const { page } = harness;
    // The threaded binary never arrives: the start waits until its 20 s bound, then wasm starts on one
    // thread.
    await page.route(THREADED_WASM, () => {});
    try {
      const started = Date.now();
      await page.goto(`${harness.baseUrl}/?model=/models/stories260K`);
      await page.getByText('260K parameters').waitFor({ timeout: 90_000 });
      expect(Date.now() - started).toBeGreaterThanOrEqual(19_000);
      await expect(compute().textContent()).resolves.toContain(
        'WebAssembly on the CPU, 1 thread; wasm with threads failed to start (it did not start within 20 s)',
      );
      await page.screenshot({ path: path.join(SCREENSHOTS, '10-threads-fallback.png'), fullPage: true });
    } finally {
      await page.unroute(THREADED_WASM);
    }
  }, 150_000);

  it('reports a worker that crashes mid-training, fails the run with what to do, and restarts with the same model', async () => {
    const { page } = harness;
    await page.goto(`${harness.baseUrl}/?model=/models/stories260K`);
    await page.getByText('260K parameters').waitFor({ timeout: 60_000 });
    await page.getByLabel('Dataset file').setInputFiles(dataFile('best-friends.csv'));
    await page.getByText('What the model will see').waitFor();
    await page.getByLabel('Epochs').fill('30');
    await page.getByRole('button', { name: 'Start training' }).click();
    // Past the first checkpoint (every 5 steps), so there is a run to resume afterwards.
    await expect
      .poll(async () => (await checkpointSteps(page)).length, { timeout: 120_000 })
      .toBeGreaterThan(0);

    // An uncaught error in the engine worker's global scope, thrown from the test: no hook in the app.
    const worker = page.workers().find((w: Worker) => w.url().includes('engine.worker'));
    expect(
      worker,
      page
        .workers()
        .map((w) => w.url())
        .join(', '),
    ).toBeDefined();
    await worker!.evaluate(
      () =>
        void setTimeout(() => {
          throw new Error('injected by the test');
        }),
    );

    const banner = page.getByRole('alert', { name: 'The engine stopped' });
    await banner.waitFor({ timeout: 30_000 });
    await expect(banner.textContent()).resolves.toContain(
      'The engine stopped after an unexpected error (Error: injected by the test). Press "Restart engine" to start a fresh one; the model you had loads again.',
    );
    // The run that was waiting on the worker failed with the same words, and nothing spins.
    await page.locator('section').getByRole('alert').filter({ hasText: 'injected by the test' }).waitFor();
    await page.getByRole('button', { name: 'Start training' }).waitFor();
    await expect(page.getByText('260K parameters').count()).resolves.toBe(0);
    await page.screenshot({ path: path.join(SCREENSHOTS, '11-engine-crashed.png'), fullPage: true });

    await banner.getByRole('button', { name: 'Restart engine' }).click();
    await page.getByText('260K parameters').waitFor({ timeout: 60_000 });
    await expect(banner.count()).resolves.toBe(0);
    await expect(compute().textContent()).resolves.toMatch(
      /Compute: wasm WebAssembly on the CPU, \d+ threads?/,
    );
    await expect(compute().textContent()).resolves.not.toContain('failed');
    // The unfinished run is offered again, and the fresh engine trains the open dataset to the end.
    await page.getByRole('region', { name: 'Unfinished training run' }).waitFor();
    await page.getByLabel('Epochs').fill('1');
    await page.getByRole('button', { name: 'Start training' }).click();
    await page.getByRole('status').filter({ hasText: 'Training complete' }).waitFor({ timeout: 120_000 });
    // The crashed worker was terminated; the page reports a worker gone once it has closed.
    const engineWorkers = () => page.workers().filter((w) => w.url().includes('engine.worker'));
    await expect.poll(() => engineWorkers().length, { timeout: 30_000 }).toBe(1);
    expect(engineWorkers()[0]).not.toBe(worker);
  }, 300_000);
});
