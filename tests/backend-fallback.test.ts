// Backend start never hangs: wasm with threads → wasm on one thread → cpu, each start time-bounded, with the
// reason saying what failed. Failing starts are injected; the backends they fall back to are the real ones.
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { tf } from '../src/engine/tf';
import { failBackendStart, pickBestBackend, useBackend, type Starter } from '../src/engine/backend';
import { WASM_PATHS } from './helpers/shared';

/** A tfjs backend whose initialisation never finishes, as wasm's did when its helper threads died. */
function hangingBackend(name: string): Starter {
  tf.registerBackend(name, () => new Promise<never>(() => {}));
  return async () => {
    await tf.setBackend(name);
  };
}

/** tfjs computes on whatever backend is running now, and gets it right. */
async function computes(): Promise<number[]> {
  const sum = tf.add(tf.tensor1d([1, 2, 3]), tf.tensor1d([10, 20, 30]));
  const values = Array.from(await sum.data());
  sum.dispose();
  return values;
}

describe('backend start with fallbacks', () => {
  it('starts wasm on one thread in Node, where tfjs has no wasm threads, and says so', async () => {
    const choice = await pickBestBackend({ wasmPaths: WASM_PATHS });
    expect(choice).toMatchObject({ backend: 'wasm', threads: 1, threaded: false });
    expect(choice.reason).toBe('WebAssembly on the CPU, 1 thread (no WebGPU here)');
    expect(await computes()).toEqual([11, 22, 33]);
  });

  it('falls back from threads that never start to one thread, within the time bound', async () => {
    await tf.setBackend('cpu');
    // As if the page could have threads: the threaded start is tried first.
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
    const started = performance.now();
    const choice = await pickBestBackend({
      wasmPaths: WASM_PATHS,
      startTimeoutMs: 300,
      starters: { 'wasm-threads': hangingBackend('hangs-forever') },
    });
    const elapsed = performance.now() - started;
    expect(choice).toMatchObject({ backend: 'wasm', threads: 1, threaded: false });
    expect(choice.reason).toBe(
      'WebAssembly on the CPU, 1 thread; wasm with threads failed to start (it did not start within 300 ms), so it runs on one thread (no WebGPU here)',
    );
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(10_000);
    expect(tf.getBackend()).toBe('wasm');
    expect(await computes()).toEqual([11, 22, 33]);
  });

  it('falls back to cpu when wasm fails with threads and on one thread, and cpu still computes', async () => {
    await tf.setBackend('cpu');
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
    const started = performance.now();
    const choice = await pickBestBackend({
      wasmPaths: WASM_PATHS,
      startTimeoutMs: 60_000,
      starters: {
        'wasm-threads': async () => {
          throw new Error('the threaded binary could not be fetched');
        },
        // An uncaught error elsewhere (a helper thread) is reported while this start waits on a promise that
        // never settles.
        wasm: () => {
          setTimeout(() => failBackendStart('Uncaught ReferenceError: e is not defined'), 50);
          return hangingBackend('hangs-too')({});
        },
      },
    });
    // Reported failures fall back at once, not after the 60 s bound.
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(choice.backend).toBe('cpu');
    expect(choice.reason).toBe(
      'plain JavaScript on the CPU (slowest); wasm with threads failed to start (the threaded binary could not be fetched), so it runs on one thread; ' +
        'wasm on one thread failed to start (Uncaught ReferenceError: e is not defined)',
    );
    // A hung asynchronous start would otherwise leave tfjs refusing every op on a backend that starts
    // synchronously.
    expect(tf.getBackend()).toBe('cpu');
    expect(await computes()).toEqual([11, 22, 33]);
    expect(failBackendStart('nothing is starting now')).toBe(false);
  });

  it('keeps the running backend when a chosen one fails to start, saying why', async () => {
    await useBackend('wasm', { wasmPaths: WASM_PATHS });
    await expect(
      useBackend('cpu', { startTimeoutMs: 200, starters: { cpu: hangingBackend('hangs-as-well') } }),
    ).rejects.toThrow(
      'The cpu backend failed to start: it did not start within 200 ms. Choose another backend (webgpu or wasm).',
    );
    expect(tf.getBackend()).toBe('wasm');
    expect(await computes()).toEqual([11, 22, 33]);
  });
});
