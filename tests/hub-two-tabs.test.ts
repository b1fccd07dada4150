/**
 * Two tabs loading one model at once: with Web Locks each file is downloaded by one of them while the
 * other waits and then reads it from the cache, instead of both appending to the same partial file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchHubModel } from '../src/hub/model';
import { MemoryStore } from '../src/hub/store';
import type { WeightsSource } from '../src/engine/weights-source';
import { startHubServer, type HubServer } from './helpers/hub-server';
import { modelDir } from './helpers/shared';

const STORIES = 'webtune-test/stories260K';

/** Exclusive Web Locks, first come first served: the part of LockManager the page uses. */
function fakeLocks() {
  const tails = new Map<string, Promise<unknown>>();
  return {
    request(name: string, ...rest: unknown[]) {
      const callback = rest[rest.length - 1] as (lock: { name: string }) => unknown;
      const previous = tails.get(name) ?? Promise.resolve();
      const run = previous.then(() => callback({ name }));
      tails.set(
        name,
        run.catch(() => {}),
      );
      return run;
    },
    async query() {
      return { held: [], pending: [] };
    },
  };
}

describe('one model loaded by two tabs at once', () => {
  let hub: HubServer;
  beforeAll(async () => {
    hub = await startHubServer({ repos: { [STORIES]: modelDir('stories260K') } });
  });
  afterAll(async () => {
    await hub.close();
    delete (globalThis as { navigator?: unknown }).navigator;
  });

  it('downloads each file once, and both get the same complete weights', async () => {
    // Node 20 has no navigator: give it one with locks only.
    Object.defineProperty(globalThis, 'navigator', {
      value: { locks: fakeLocks() },
      configurable: true,
      writable: true,
    });
    const store = new MemoryStore();
    const weightGets = () =>
      hub.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/model.safetensors')).length;
    hub.setFault('model.safetensors', { kind: 'slow', bytesPerSecond: 2_000_000 });
    const [a, b] = await Promise.all([
      fetchHubModel(STORIES, { endpoint: hub.url, store }),
      fetchHubModel(STORIES, { endpoint: hub.url, store }),
    ]);
    hub.clearFaults();
    expect(weightGets()).toBe(1);
    const bytes = (source: WeightsSource) => source.read(0, source.byteLength);
    expect(bytes(b.weights[0])).toEqual(bytes(a.weights[0]));
    expect(a.weights[0].byteLength).toBe(
      (await store.read(`http+${new URL(hub.url).host}/${STORIES}/main/model.safetensors`))!.byteLength,
    );
  }, 60_000);
});
