/// <reference lib="webworker" />
/**
 * Errors of wasm's helper threads, as the engine worker sees them. Emscripten rethrows an error of a helper
 * (a pthread worker) in this worker as that helper's ErrorEvent, where it would reach the page as an uncaught
 * error of the engine — which the page reports as a crash (see client.ts).
 *
 * - While wasm with threads is starting, such an error fails that start at once, and the engine falls back
 *   to wasm on one thread (backend.ts) instead of waiting for the start's time bound.
 * - When no threaded wasm is in use, the error comes from a start that was abandoned: it is only logged.
 * - While threaded wasm computes, it is a real failure and goes on to the page as a crash.
 *
 * Every other uncaught error goes on to the page unchanged.
 */
import { failBackendStart, wasmThreadsInUse } from '../engine/backend';

/**
 * Emscripten's rethrow carries the helper's ErrorEvent; the helper's own error, passed up uncancelled, comes
 * from the helper's script, a blob: URL (the engine's own code never runs from one).
 */
export function isHelperThreadError(event: ErrorEvent): boolean {
  return isErrorEvent(event.error) || /^blob:/.test(event.filename ?? '');
}

const isErrorEvent = (value: unknown): value is ErrorEvent =>
  typeof ErrorEvent !== 'undefined' && value instanceof ErrorEvent;

export function watchHelperThreadErrors(scope: Pick<WorkerGlobalScope, 'addEventListener'>): void {
  scope.addEventListener('error', (event) => {
    if (!isHelperThreadError(event)) return;
    const detail = (isErrorEvent(event.error) ? event.error.message : event.message) || 'unknown error';
    const message = `a wasm helper thread failed: ${detail}`;
    if (failBackendStart(message, 'wasm-threads')) {
      event.preventDefault();
    } else if (!wasmThreadsInUse()) {
      event.preventDefault();
      console.warn(`Ignored: ${message} (from a wasm start that was abandoned)`);
    }
  });
}
