/**
 * One seed decides the split, as in the CLI: a run the page trains with seed 7 holds out the rows the data
 * step showed for seed 7, and "Download for a GPU cluster" (the TRL bundle, which rebuilds the split from
 * the split the adapter stored) holds out exactly those rows, even after the columns are mapped anew. A
 * run whose seed is not the split's is refused.
 */
import 'fake-indexeddb/auto';
import fs from 'node:fs';
import { strFromU8, unzipSync } from 'fflate';
import { beforeAll, describe, expect, it } from 'vitest';
import { splitTrainValidation } from '../src/data/batch';
import { tf } from '../src/engine/tf';
import { saveDataset, updateDatasetMapping } from '../src/store/datasets';
import type { DatasetSettings, TrainRequest } from '../src/worker/protocol';
import { HostDriver } from './helpers/host';
import { dataFile, switchBackend } from './helpers/shared';

const FILE = 'best-friends.csv';
const SETTINGS: DatasetSettings = {
  mapping: null,
  useChatTemplate: false,
  maxLength: 64,
  valSplit: 0.25,
  seed: 7,
};
const TRAIN: Omit<TrainRequest, 'source'> = {
  backend: 'wasm',
  rank: 2,
  alpha: 4,
  dropout: 0,
  targets: ['q_proj', 'v_proj'],
  learningRate: 1e-3,
  epochs: 1,
  batchSize: 8,
  gradAccum: 1,
  warmupSteps: 0,
  seed: 7,
  recompute: 'off',
};

/** The questions of best-friends.csv that `seed` holds out, its rows as they come (after the header). */
function heldOut(seed: number): string[] {
  const rows = fs.readFileSync(dataFile(FILE), 'utf8').trim().split('\n').slice(1);
  return splitTrainValidation(rows, SETTINGS.valSplit, seed).validation.map((row) => row.split(',')[0]);
}

describe('one seed for the split and the run', () => {
  beforeAll(async () => {
    await switchBackend('wasm');
  });

  it('the TRL bundle of a run trained with seed 7 holds out the rows seed 7 split off; a mismatch is refused', async () => {
    // The test can tell the seeds apart.
    expect(heldOut(7).sort()).not.toEqual(heldOut(0).sort());
    const before = tf.memory().numTensors;
    const driver = new HostDriver();
    try {
      const bytes = new Uint8Array(fs.readFileSync(dataFile(FILE)));
      const stored = await saveDataset({ name: FILE, fileName: FILE, bytes, mapping: null, rows: 36 });
      await driver.send('init', { backend: 'wasm' });
      await driver.loadFixture();
      const prepared = await driver.openDataset(FILE, SETTINGS);
      expect(prepared.quickPromptsFrom).toBe('validation');
      const source = { modelUrl: null, datasetId: stored.id };

      await expect(driver.send('train', { ...TRAIN, seed: 3, source })).rejects.toThrow(
        "The run's seed (3) is not the one the examples were split with (7). Set the seed again, then start.",
      );
      const result = await driver.send('train', { ...TRAIN, source });
      expect(result.adapterId).not.toBeNull();

      // The person then maps the columns the other way round: the bundle is still the run's split and rows.
      await updateDatasetMapping(stored.id, {
        kind: 'template',
        promptTemplate: '{answer}',
        completionTemplate: '{question}',
      });
      const exported = await driver.send('exportAdapter', {
        adapterId: result.adapterId,
        format: 'trl',
        modelFiles: driver.pickedFiles(),
      });
      const files = unzipSync(new Uint8Array(await exported.file.arrayBuffer()));
      const validation = Object.entries(files).find(([name]) => name.endsWith('data/validation.jsonl'));
      expect(validation, 'data/validation.jsonl in the bundle').toBeDefined();
      const prompts = strFromU8(validation![1])
        .trim()
        .split('\n')
        .map((line) => (JSON.parse(line) as { prompt: string }).prompt.trimEnd());
      expect(prompts.sort()).toEqual(heldOut(7).sort());
    } finally {
      driver.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
