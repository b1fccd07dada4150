import 'fake-indexeddb/auto';
import { deleteDB, openDB } from 'idb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  deleteAdapter,
  getAdapter,
  listAdapters,
  renameAdapter,
  saveAdapter,
  type NewAdapter,
} from '../src/store/adapters';
import {
  deleteCheckpoint,
  getCheckpoint,
  latestUnfinishedCheckpoint,
  saveCheckpoint,
  type CheckpointRecord,
} from '../src/store/checkpoints';
import {
  deleteDataset,
  getDataset,
  listDatasets,
  renameDataset,
  saveDataset,
  updateDatasetMapping,
} from '../src/store/datasets';
import { closeStore, openStore } from '../src/store/db';
import { StorageError, toStorageError } from '../src/store/errors';
import { getRun, latestRun, saveRun, type SavedRun } from '../src/store/runs';
import { requestPersistence, storageUsage } from '../src/store/usage';
import { fillDisk } from './helpers/full-disk';

const at = (time: number) => vi.spyOn(Date, 'now').mockReturnValue(time);
const q = 'model.layers.0.self_attn.q_proj';

const checkpoint = (runId: string, step: number, createdAt: number, totalSteps = 30): CheckpointRecord => ({
  runId,
  step,
  totalSteps,
  createdAt,
  settings: { epochs: 3 },
  datasetId: 'd1',
  modelName: 'stories260K',
  modelUrl: '/models/stories260K',
  lossHistory: [{ step, loss: 1.5, valLoss: 1.7 }],
  adapter: [[q, { A: Float32Array.of(1, step), B: Float32Array.of(3) }]],
  optimizer: { step, m: [Float32Array.of(0.5)], v: [Float32Array.of(0.25, step)] },
  rngState: 42 + step,
});

const adapter = (name: string): NewAdapter => ({
  name,
  modelName: 'stories260K',
  datasetId: 'd1',
  datasetName: 'a.csv',
  settings: { rank: 8 },
  trainLoss: 1.2,
  valLoss: null,
  lossHistory: [{ step: 1, loss: 2 }],
  zip: Uint8Array.of(80, 75, 3, 4),
});

const full =
  /^Your browser's storage for this site is full: webtune could not save .*Delete old adapters or datasets, then try again\. Nothing already saved was lost\.$/;

describe('local storage', () => {
  afterEach(async () => {
    vi.restoreAllMocks();
    vi.unstubAllGlobals();
    await closeStore();
    await deleteDB('webtune');
  });

  it('keeps datasets across a reopen: newest first, bytes equal, renamed, deleted', async () => {
    at(1000);
    const a = await saveDataset({
      name: 'Tickets',
      fileName: 'a.csv',
      bytes: Uint8Array.of(1, 2, 3),
      mapping: { kind: 'chat' },
      rows: 3,
    });
    at(2000);
    const b = await saveDataset({
      name: 'b.jsonl',
      fileName: 'b.jsonl',
      bytes: Uint8Array.of(4),
      mapping: null,
      rows: 1,
    });
    await closeStore();
    const listed = await listDatasets();
    expect(listed.map((d) => d.name)).toEqual(['b.jsonl', 'Tickets']);
    expect(listed[1]).toEqual({
      id: a.id,
      name: 'Tickets',
      fileName: 'a.csv',
      mapping: { kind: 'chat' },
      createdAt: 1000,
      updatedAt: 1000,
      rows: 3,
      byteLength: 3,
    });
    expect(listed[1]).not.toHaveProperty('bytes');
    expect((await getDataset(a.id))!.bytes).toEqual(Uint8Array.of(1, 2, 3));

    at(3000);
    expect((await renameDataset(a.id, 'Support tickets'))!.name).toBe('Support tickets');
    expect(await renameDataset('missing', 'x')).toBeUndefined();
    // The same file dropped again updates its record (keeping the new name) instead of adding a copy.
    at(4000);
    const again = await saveDataset({
      name: 'a.csv',
      fileName: 'a.csv',
      bytes: Uint8Array.of(1, 2, 3),
      mapping: { kind: 'template' },
      rows: 3,
    });
    expect(again).toMatchObject({
      id: a.id,
      name: 'Support tickets',
      createdAt: 1000,
      updatedAt: 4000,
      mapping: { kind: 'template' },
    });
    expect((await listDatasets()).map((d) => d.id)).toEqual([a.id, b.id]);

    await deleteDataset(b.id);
    expect((await listDatasets()).map((d) => d.id)).toEqual([a.id]);
    expect(await getDataset(b.id)).toBeUndefined();
  });

  it('a new mapping updates the summary only: the file is stored once and never written again', async () => {
    at(1000);
    const bytes = new TextEncoder().encode('question,answer\nWho is Tom?,Tom is my best friend.\n');
    const { id } = await saveDataset({
      name: 'friends.csv',
      fileName: 'friends.csv',
      bytes,
      mapping: null,
      rows: 1,
    });
    const puts: string[] = [];
    const put = IDBObjectStore.prototype.put;
    vi.spyOn(IDBObjectStore.prototype, 'put').mockImplementation(function (
      this: IDBObjectStore,
      ...args: Parameters<typeof put>
    ) {
      puts.push(this.name);
      return put.apply(this, args);
    });
    at(2000);
    const mapping = { kind: 'template', promptTemplate: 'Q: {question}', completionTemplate: '{answer}' };
    expect(await updateDatasetMapping(id, mapping)).toEqual({
      id,
      name: 'friends.csv',
      fileName: 'friends.csv',
      mapping,
      createdAt: 1000,
      updatedAt: 2000,
      rows: 1,
      byteLength: bytes.byteLength,
    });
    expect(puts).toEqual(['datasets']);
    expect(await updateDatasetMapping('missing', mapping)).toBeUndefined();
    await closeStore();
    const reopened = await getDataset(id);
    expect(reopened?.mapping).toEqual(mapping);
    expect(reopened?.bytes).toEqual(bytes);
  });

  it('replaces a run checkpoint on write, gives typed arrays back and finds the run to resume', async () => {
    await saveCheckpoint(checkpoint('r1', 5, 1000));
    await saveCheckpoint(checkpoint('r1', 10, 2000));
    await saveCheckpoint(checkpoint('r2', 30, 3000)); // reached its last step: finished
    await closeStore();
    const r1 = (await getCheckpoint('r1'))!;
    expect(r1).toEqual(checkpoint('r1', 10, 2000));
    expect(r1.adapter[0][1].A).toBeInstanceOf(Float32Array);
    expect(r1.optimizer.v[0]).toEqual(Float32Array.of(0.25, 10));
    expect((await latestUnfinishedCheckpoint())?.runId).toBe('r1');

    await saveCheckpoint(checkpoint('r3', 1, 4000));
    expect((await latestUnfinishedCheckpoint())?.runId).toBe('r3');
    await deleteCheckpoint('r3');
    await deleteCheckpoint('r1');
    expect(await latestUnfinishedCheckpoint()).toBeUndefined();
    expect(await getCheckpoint('r2')).toBeDefined();
  });

  it('keeps adapters: newest first without their zips, zip equal, renamed, deleted', async () => {
    at(1000);
    const first = await saveAdapter(adapter('first'));
    at(2000);
    const second = await saveAdapter(adapter('second'));
    await closeStore();
    const listed = await listAdapters();
    expect(listed.map((a) => a.name)).toEqual(['second', 'first']);
    expect(listed[0]).not.toHaveProperty('zip');
    expect(listed[0].byteLength).toBe(4);
    const { zip, ...fields } = adapter('first');
    expect(await getAdapter(first.id)).toEqual({ ...fields, id: first.id, createdAt: 1000, zip });
    await renameAdapter(first.id, 'support-v1');
    await deleteAdapter(second.id);
    expect((await listAdapters()).map((a) => a.name)).toEqual(['support-v1']);
    expect(await getAdapter(second.id)).toBeUndefined();
  });

  it('a full disk gives a message saying what to do, and loses nothing already saved', async () => {
    const saved = await saveDataset({
      name: 'a.csv',
      fileName: 'a.csv',
      bytes: Uint8Array.of(1),
      mapping: null,
      rows: 1,
    });
    await saveCheckpoint(checkpoint('r1', 5, 1000));
    let restore = fillDisk('datasetFiles');
    try {
      // The summary's put succeeds, the file's fails: the whole save is undone, not half kept.
      const error = await saveDataset({
        name: 'b.csv',
        fileName: 'b.csv',
        bytes: Uint8Array.of(2),
        mapping: null,
        rows: 1,
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StorageError);
      expect(error).toMatchObject({ problem: 'quota', message: expect.stringMatching(full) });
      expect((error as Error).message).toContain('could not save the dataset "b.csv"');
    } finally {
      restore();
    }
    restore = fillDisk('checkpoints');
    try {
      await expect(saveCheckpoint(checkpoint('r1', 10, 2000))).rejects.toThrow(full);
    } finally {
      restore();
    }
    await closeStore();
    expect((await listDatasets()).map((d) => d.id)).toEqual([saved.id]);
    expect((await getDataset(saved.id))!.bytes).toEqual(Uint8Array.of(1));
    expect((await getCheckpoint('r1'))!.step).toBe(5);
  });

  it('moves data saved by schema version 1 across, and the version 1 API still round-trips', async () => {
    const run = (step: number): SavedRun => ({
      id: 'r1',
      savedAt: 1000 + step,
      modelName: 'stories260K',
      modelUrl: null,
      datasetId: 'd1',
      setup: { epochs: 3 },
      step,
      totalSteps: 30,
      lossHistory: [
        { step: 4, loss: 2 },
        { step, loss: 1.5 },
      ],
      evalHistory: [
        { step, valLoss: 1.8 },
        { step: 0, valLoss: 2.5 },
      ],
      state: {
        step,
        rngState: 7,
        adapter: new Map([[q, { A: Float32Array.of(1, 2), B: Float32Array.of(3) }]]),
        optimizer: { step, m: [Float32Array.of(0.5)], v: [Float32Array.of(0.25)] },
      },
    });
    const v1 = await openDB('webtune', 1, {
      upgrade(db) {
        for (const name of ['datasets', 'runs', 'adapters']) db.createObjectStore(name, { keyPath: 'id' });
      },
    });
    await v1.put('datasets', {
      id: 'd1',
      name: 'a.csv',
      bytes: Uint8Array.of(9, 8),
      mapping: { kind: 'chat' },
      savedAt: 500,
    });
    await v1.put('runs', run(5));
    await v1.put('adapters', { ...adapter('old'), datasetId: undefined, id: 'a1', savedAt: 600 });
    v1.close();

    expect(await listDatasets()).toEqual([
      {
        id: 'd1',
        name: 'a.csv',
        fileName: 'a.csv',
        mapping: { kind: 'chat' },
        createdAt: 500,
        updatedAt: 500,
        rows: 0,
        byteLength: 2,
      },
    ]);
    expect((await getDataset('d1'))!.bytes).toEqual(Uint8Array.of(9, 8));
    expect((await getAdapter('a1'))!).toMatchObject({
      name: 'old',
      createdAt: 600,
      datasetId: '',
      zip: Uint8Array.of(80, 75, 3, 4),
    });
    const moved = (await latestUnfinishedCheckpoint())!;
    expect(moved.lossHistory).toEqual([
      { step: 0, loss: NaN, valLoss: 2.5 },
      { step: 4, loss: 2 },
      { step: 5, loss: 1.5, valLoss: 1.8 },
    ]);
    expect(await getRun('r1')).toEqual({
      ...run(5),
      evalHistory: [
        { step: 0, valLoss: 2.5 },
        { step: 5, valLoss: 1.8 },
      ],
    });

    await saveRun(run(10));
    expect((await latestRun())!.state.adapter.get(q)!.A).toEqual(Float32Array.of(1, 2));
    expect((await getCheckpoint('r1'))!.step).toBe(10);
  });

  it('says plainly when storage cannot be opened', async () => {
    vi.stubGlobal('indexedDB', undefined);
    await expect(openStore('elsewhere')).rejects.toMatchObject({
      problem: 'unavailable',
      message: expect.stringMatching(/normal window/),
    });
    vi.unstubAllGlobals();
    // A version 1 database missing a store cannot be moved across: the upgrade rolls back and says so.
    const broken = await openDB('webtune', 1, {
      upgrade: (db) => void db.createObjectStore('runs', { keyPath: 'id' }),
    });
    await broken.put('runs', { id: 'r1' });
    broken.close();
    await expect(listDatasets()).rejects.toMatchObject({
      problem: 'failed',
      message: expect.stringMatching(
        /^webtune could not move your saved data to its new layout \(NotFoundError.*nothing already saved was lost\.$/,
      ),
    });
    const kept = await openDB('webtune');
    expect([kept.version, await kept.get('runs', 'r1')]).toEqual([1, { id: 'r1' }]);
    kept.close();
    expect(toStorageError(new DOMException('newer', 'VersionError'), 'open its storage', true).problem).toBe(
      'version',
    );
    expect(
      toStorageError(new DOMException('no', 'InvalidStateError'), 'open its storage', true).problem,
    ).toBe('unavailable');
    expect(toStorageError(new DOMException('no', 'DataCloneError'), 'save the adapter').message).toMatch(
      /^webtune could not save the adapter \(DataCloneError: no\)\. Try again/,
    );
  });

  it('another tab with an older webtune blocks the upgrade with a message; a newer one is let through', async () => {
    const oldTab = await openDB('webtune', 1, {
      upgrade: (db) =>
        ['datasets', 'runs', 'adapters'].forEach((name) => db.createObjectStore(name, { keyPath: 'id' })),
    });
    await expect(listDatasets()).rejects.toMatchObject({
      problem: 'blocked',
      message: expect.stringMatching(/Close the other webtune tabs/),
    });
    oldTab.close();
    await vi.waitFor(async () => expect(await listDatasets()).toEqual([]));
    // Our open connection steps aside for a newer version, whose data this page then declines to touch.
    const newTab = await openDB('webtune', 3, {
      blocked: () => expect.unreachable('a newer tab was blocked'),
    });
    newTab.close();
    await expect(listDatasets()).rejects.toMatchObject({
      problem: 'version',
      message: expect.stringMatching(/newer version of webtune/),
    });
  });

  it('reports storage use and asks for persistence only where the browser can', async () => {
    expect(await storageUsage()).toBeNull(); // Node: no navigator.storage
    expect(await requestPersistence()).toBe(false);
    const persist = vi.fn(async () => true);
    vi.stubGlobal('navigator', {
      storage: {
        estimate: async () => ({ usage: 1200, quota: 50_000 }),
        persisted: async () => false,
        persist,
      },
    });
    expect(await storageUsage()).toEqual({ usedBytes: 1200, quotaBytes: 50_000 });
    expect(await requestPersistence()).toBe(true);
    expect(persist).toHaveBeenCalledOnce();
  });
});
