// The engine runs unchanged in a Web Worker in Chromium, on wasm and on WebGPU, and matches the reference.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { maxAbsDiff, reference } from '../helpers/shared';
import { externalRequests, openHarness, type Harness } from './browser';
import type { RunEngine } from './engine-page';

interface ScoreRef {
  ids: number[];
  logprobs: number[];
}
const LILY = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park.';

describe('engine in a browser worker', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await openHarness();
    await harness.page.goto(`${harness.baseUrl}/tests/e2e/engine-page.html`);
    await harness.page.waitForSelector('body[data-ready="true"]');
  });
  afterAll(async () => {
    expect(externalRequests(harness.requests)).toEqual([]);
    await harness.close();
  });

  for (const backend of ['wasm', 'webgpu'] as const) {
    it(`scores and generates like the reference on ${backend}`, async () => {
      const ref = reference<ScoreRef>('stories260K', 'score-lily.json');
      const greedy = reference<{ new: number[] }>('stories260K', 'greedy-once-upon-a-time.json');
      const steps = backend === 'webgpu' ? 8 : 40;
      const result = await harness.page.evaluate(
        ([b, text, n]) =>
          (window as unknown as { runEngine: RunEngine }).runEngine(b, text, 'Once upon a time', n),
        [backend, LILY, steps] as const,
      );
      expect(result.crossOriginIsolated).toBe(true);
      expect(result.choice.backend).toBe(backend);
      // The page is cross-origin isolated, so wasm runs its multi-threaded build.
      if (backend === 'wasm') expect(result.choice.threaded).toBe(true);
      if (backend === 'webgpu') expect(result.choice.adapter?.isFallbackAdapter).toBe(true);
      expect(result.model).toMatchObject({ modelType: 'llama', parameters: 260032, hasChatTemplate: false });
      expect(result.score.tokens).toEqual(ref.ids);
      expect(maxAbsDiff(result.score.logprobs, ref.logprobs)).toBeLessThan(1e-3);
      expect(result.generated.tokens).toEqual(greedy.new.slice(0, steps));
      expect(result.streamed).toHaveLength(steps);
      expect(result.streamed[steps - 1]).toBe(result.generated.text);
    });
  }

  it('runs the built page and worker when the suite runs on the production build', async () => {
    if (!inject('e2eBuild')) return; // WEBTUNE_E2E_SERVER=dev
    expect(harness.requests.some((url) => /\/assets\/engine\.worker-[\w-]+\.js$/.test(url))).toBe(true);
    expect(harness.requests.filter((url) => url.includes('/src/'))).toEqual([]);
  });

  it('picks wasm automatically when the only WebGPU adapter is a software fallback', async () => {
    const result = await harness.page.evaluate(() =>
      (window as unknown as { runEngine: RunEngine }).runEngine('auto', 'Hi there', 'Hi', 1),
    );
    expect(result.choice.backend).toBe('wasm');
    expect(result.choice.reason).toMatch(/software fallback/);
  });
});
