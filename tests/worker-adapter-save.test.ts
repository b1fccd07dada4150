/**
 * A run that finishes when the disk is full keeps its adapter in the worker and its checkpoint in
 * storage, and stores the adapter when asked again: nothing trained is lost to a full disk.
 */
import 'fake-indexeddb/auto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadedModel } from '../src/engine/load';
import { disposeModel } from '../src/engine/model';
import { listAdapters } from '../src/store/adapters';
import { getRun, latestRun } from '../src/store/runs';
import { AdapterSlot } from '../src/worker/adapter-slot';
import { DatasetSession } from '../src/worker/dataset-session';
import type { DatasetSettings, TrainEvent, TrainRequest } from '../src/worker/protocol';
import { ModelLease } from '../src/worker/lease';
import { TrainingSession } from '../src/worker/training';
import { dataFile, loadFixture, switchBackend } from './helpers/shared';
import { fillDisk } from './helpers/full-disk';

const FILE = 'best-friends.csv';
const SETTINGS: DatasetSettings = {
  mapping: null,
  useChatTemplate: true,
  maxLength: 64,
  valSplit: 0.1,
  seed: 0,
};
const TRAIN: TrainRequest = {
  source: { modelUrl: null, datasetId: 'best-friends' },
  backend: 'auto',
  rank: 4,
  alpha: 8,
  dropout: 0,
  targets: ['q_proj', 'v_proj'],
  learningRate: 1e-2,
  epochs: 2,
  batchSize: 8,
  gradAccum: 1,
  warmupSteps: 0,
  seed: 0,
  recompute: 'auto',
};

describe('a finished run on a full disk', () => {
  let model: LoadedModel;
  beforeAll(async () => {
    await switchBackend('wasm');
    model = loadFixture('stories260K');
  });
  afterAll(() => disposeModel(model.model));

  it('keeps the adapter and the checkpoint, says so, and stores the adapter when asked again', async () => {
    const slot = new AdapterSlot();
    const session = new DatasetSession();
    const training = new TrainingSession(slot, session, new ModelLease());
    await session.open({
      bytes: new Uint8Array(fs.readFileSync(dataFile(FILE))),
      fileName: FILE,
      settings: SETTINGS,
    });
    session.useModel(model);
    const events: TrainEvent[] = [];
    const emptyDisk = fillDisk('adapterZips');
    let result;
    try {
      result = await training.train(model, TRAIN, (event) => events.push(event));
    } finally {
      emptyDisk();
    }
    expect(result.adapterId).toBeNull();
    expect(result.unsaved).toBe(true);
    const warning = events.find((e) => e.kind === 'warning');
    expect(warning && 'message' in warning ? warning.message : '').toMatch(/Save the adapter again/);
    const run = await latestRun();
    expect(run?.step).toBe(5); // the checkpoint (every 5 steps) stays until the adapter is safe
    expect(await listAdapters()).toEqual([]);

    const id = await training.saveAgain();
    expect((await listAdapters()).map((a) => a.id)).toEqual([id]);
    expect(await getRun(run!.id)).toBeUndefined();
    expect(training.hasUnsaved).toBe(false);
    await expect(training.saveAgain()).rejects.toThrow(/no finished adapter waiting/);
    slot.clear(model.model);
  });
});
