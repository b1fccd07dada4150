import 'fake-indexeddb/auto';
import { afterEach, describe, expect, it } from 'vitest';
import { closeStore, StorageError } from '../src/store/database';
import { deleteDataset, deleteRun, getDataset, latestRun, listDatasets, saveDataset, saveRun, type SavedRun } from '../src/store/saved';

const run = (id: string, step: number): SavedRun => ({
  id, savedAt: Date.now() + step, modelName: 'stories260K', modelUrl: '/models/stories260K', datasetId: 'd1', setup: { epochs: 3 },
  step, totalSteps: 30, lossHistory: [{ step, loss: 1.5 }], evalHistory: [],
  state: { step, rngState: 42, adapter: new Map([['model.layers.0.self_attn.q_proj', { A: Float32Array.of(1, 2), B: Float32Array.of(3) }]]), optimizer: { step, m: [Float32Array.of(0.5)], v: [Float32Array.of(0.25)] } },
});

describe('local storage', () => {
  afterEach(async () => {
    await closeStore();
    indexedDB.deleteDatabase('webtune');
  });

  it('keeps datasets across a reopen, newest first, and deletes them', async () => {
    const first = await saveDataset({ name: 'a.csv', bytes: Uint8Array.of(1, 2, 3), mapping: { kind: 'chat' } });
    await new Promise((r) => setTimeout(r, 5));
    const second = await saveDataset({ name: 'b.csv', bytes: Uint8Array.of(4), mapping: null });
    await closeStore();
    expect((await listDatasets()).map((d) => d.name)).toEqual(['b.csv', 'a.csv']);
    expect((await getDataset(first.id))?.bytes).toEqual(Uint8Array.of(1, 2, 3));
    // The same file dropped again updates its record instead of adding a copy.
    const again = await saveDataset({ name: 'a.csv', bytes: Uint8Array.of(1, 2, 3), mapping: { kind: 'template' } });
    expect(again.id).toBe(first.id);
    expect(await listDatasets()).toHaveLength(2);
    await deleteDataset(second.id);
    expect((await listDatasets()).map((d) => d.id)).toEqual([first.id]);
  });

  it('replaces a run checkpoint with the newer one and gives the typed arrays back', async () => {
    await saveRun(run('r1', 5));
    await saveRun(run('r1', 10));
    await closeStore();
    const latest = (await latestRun())!;
    expect(latest.step).toBe(10);
    expect(latest.state.adapter.get('model.layers.0.self_attn.q_proj')!.A).toEqual(Float32Array.of(1, 2));
    expect(latest.state.optimizer.v[0]).toEqual(Float32Array.of(0.25));
    await deleteRun('r1');
    expect(await latestRun()).toBeUndefined();
  });

  it('a full disk gives a message saying what to do, and loses nothing already saved', async () => {
    await saveRun(run('r1', 5));
    const put = IDBObjectStore.prototype.put;
    IDBObjectStore.prototype.put = function () {
      throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
    };
    try {
      const error = await saveRun(run('r1', 10)).catch((e: Error) => e);
      expect(error).toBeInstanceOf(StorageError);
      expect((error as Error).message).toMatch(/storage for this site is full.*Delete old adapters or datasets.*Nothing already saved was lost/);
    } finally {
      IDBObjectStore.prototype.put = put;
    }
    expect((await latestRun())!.step).toBe(5);
  });
});
