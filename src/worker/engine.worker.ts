/// <reference lib="webworker" />
/**
 * The engine in a Web Worker: the page never runs tensor math, so it stays responsive while a model
 * loads, trains or generates. Every request goes to the host (host.ts), which owns the model.
 */
import { watchHelperThreadErrors } from './helper-errors';
import { EngineHost } from './host';
import type { WorkerRequest, WorkerResponse } from './protocol';
import { WASM_PATHS } from './wasm-paths';

// A wasm helper thread that fails while threads start means: fall back to one thread (not: the engine
// crashed).
watchHelperThreadErrors(self);

const scope = self as unknown as DedicatedWorkerGlobalScope;
const host = new EngineHost((message: WorkerResponse) => scope.postMessage(message), {
  wasmPaths: WASM_PATHS,
});

scope.onmessage = (event: MessageEvent<WorkerRequest>) => void host.handle(event.data);
