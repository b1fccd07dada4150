// An uncaught error of a wasm helper thread, as the engine worker receives it (from a blob: script), fails a
// threaded start at once so wasm continues on one thread; otherwise it is not mistaken for the engine
// crashing, and the engine's own errors still reach the page.
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it, vi } from 'vitest';
import { tf } from '../src/engine/tf';
import { pickBestBackend } from '../src/engine/backend';
import { watchHelperThreadErrors } from '../src/worker/helper-errors';
import { WASM_PATHS } from './helpers/shared';

type Listener = (event: ErrorEvent) => void;

function workerScope(): { dispatch(init: { message: string; filename: string }): boolean } {
  let listener: Listener | null = null;
  watchHelperThreadErrors({ addEventListener: ((_type: string, l: Listener) => (listener = l)) as never });
  return {
    /** Returns whether the error still goes on to the page (not prevented). */
    dispatch({ message, filename }) {
      let prevented = false;
      listener!({
        message,
        filename,
        error: null,
        preventDefault: () => (prevented = true),
      } as unknown as ErrorEvent);
      return !prevented;
    },
  };
}

describe('wasm helper thread errors in the engine worker', () => {
  it('fail a threaded start at once, which falls back to one thread', async () => {
    const scope = workerScope();
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
    tf.registerBackend('threads-never-report', () => new Promise<never>(() => {}));
    let reachedPage: boolean | null = null;
    const started = performance.now();
    const choice = await pickBestBackend({
      wasmPaths: WASM_PATHS,
      startTimeoutMs: 60_000,
      starters: {
        'wasm-threads': async () => {
          // What the minified build did: every helper threw while the main thread waited for them.
          setTimeout(
            () =>
              (reachedPage = scope.dispatch({
                message: 'Uncaught ReferenceError: e is not defined',
                filename: 'blob:http://127.0.0.1/3e02dc4f',
              })),
            20,
          );
          await tf.setBackend('threads-never-report');
        },
      },
    });
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(reachedPage).toBe(false);
    expect(choice).toMatchObject({ backend: 'wasm', threads: 1, threaded: false });
    expect(choice.reason).toContain(
      'wasm with threads failed to start (a wasm helper thread failed: Uncaught ReferenceError: e is not defined), so it runs on one thread',
    );
  });

  it('are only logged when they come from an abandoned start, and the engine’s own errors reach the page', () => {
    const scope = workerScope();
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    // wasm runs on one thread now (previous test): a late helper error is left over from the abandoned start.
    expect(
      scope.dispatch({
        message: 'Uncaught ReferenceError: e is not defined',
        filename: 'blob:http://127.0.0.1/1efc21f8',
      }),
    ).toBe(false);
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('from a wasm start that was abandoned'));
    expect(
      scope.dispatch({
        message: 'Uncaught Error: injected by the test',
        filename: 'http://127.0.0.1/assets/engine.worker-abc.js',
      }),
    ).toBe(true);
    warn.mockRestore();
  });
});
