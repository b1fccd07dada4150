/// <reference lib="webworker" />
/**
 * `npm run bench -- --browser`, inside the browser: the benchmark of src/bench/run.ts on the page's own
 * engine code, in a Web Worker as the app trains, with the backend started as the app's worker starts it.
 */
import { tensorByteLimit, useBackend, type BackendChoice, type BackendName } from '../engine/backend';
import { loadModel } from '../engine/load';
import { closeWeights } from '../engine/weights-source';
import type { LlamaModel } from '../engine/model';
import { fetchModelFiles } from '../worker/fetch-model';
import { watchHelperThreadErrors } from '../worker/helper-errors';
import { WASM_PATHS } from '../worker/wasm-paths';
import type { BenchReport, BenchRequest } from './browser-protocol';
import {
  buildOptionsFor,
  describeAdapter,
  measure,
  SHAPES,
  shapedModel,
  type BenchOptions,
  type BenchResult,
} from './run';

watchHelperThreadErrors(self);

const post = (report: BenchReport) => (self as unknown as DedicatedWorkerGlobalScope).postMessage(report);

/** A model of SHAPES (random weights), or a model folder the server has under /models/. */
async function openModel(name: string, choice: BackendChoice, options: BenchOptions): Promise<LlamaModel> {
  if (SHAPES[name]) return shapedModel(name, buildOptionsFor(options));
  const files = await fetchModelFiles(`/models/${name}`);
  try {
    return loadModel(files, { maxTensorBytes: tensorByteLimit(choice), ...buildOptionsFor(options) }).model;
  } finally {
    closeWeights(files.weights);
  }
}

async function benchOne(model: string, backend: string, request: BenchRequest): Promise<BenchResult> {
  if (!['wasm', 'cpu', 'webgpu'].includes(backend))
    throw new Error(`unknown backend "${backend}"; use wasm, cpu or webgpu`);
  const choice = await useBackend(backend as BackendName, {
    wasmPaths: WASM_PATHS,
    wasmThreads: request.wasmThreads,
  });
  const measured = await measure(model, await openModel(model, choice, request.options), request.options);
  const adapter = describeAdapter(choice);
  return {
    ...measured,
    backend: choice.backend,
    where: 'browser',
    threads: choice.threads ?? 1,
    ...(adapter ? { adapter } : {}),
  };
}

self.onmessage = async (event: MessageEvent<BenchRequest>) => {
  const request = event.data;
  try {
    for (const model of request.models) {
      for (const backend of request.backends) {
        try {
          post({ type: 'result', result: await benchOne(model, backend, request) });
        } catch (error) {
          post({ type: 'skipped', model, backend, message: (error as Error).message });
        }
      }
    }
    post({ type: 'done' });
  } catch (error) {
    post({ type: 'failed', message: (error as Error).message });
  }
};
