/**
 * The bench page: starts the bench worker and passes its reports on to whoever drives the page
 * (src/bench/browser.ts, through the `webtuneBenchReport` function it exposes).
 */
import type { BenchReport, BenchRequest } from './browser-protocol';

type Reporter = (report: BenchReport) => Promise<void> | void;

/** Runs the benchmark; resolves once every model and backend is measured or skipped. */
function runBench(request: BenchRequest): Promise<void> {
  const report = (window as unknown as { webtuneBenchReport?: Reporter }).webtuneBenchReport ?? (() => {});
  const worker = new Worker(new URL('./bench.worker.ts', import.meta.url), { type: 'module' });
  return new Promise<void>((resolve, reject) => {
    worker.onmessage = (event: MessageEvent<BenchReport>) => {
      const message = event.data;
      if (message.type === 'done') resolve();
      else if (message.type === 'failed') reject(new Error(message.message));
      else void report(message);
    };
    // An uncaught error or running out of memory ends the benchmark, saying so.
    worker.onerror = (event) =>
      reject(new Error(`the bench worker failed: ${event.message || 'unknown error (out of memory?)'}`));
    worker.postMessage(request);
  }).finally(() => worker.terminate());
}

Object.assign(window, { runBench });
document.body.dataset.ready = 'true';
