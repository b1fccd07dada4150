/**
 * The worker's export: the library adapter merged into the GGUF it writes (llama.cpp answers as webtune
 * does with that adapter), the TRL bundle built from the dataset saved with the adapter, and clear
 * refusals when the page cannot know the data or reopen the model. A failed export leaves no file.
 */
import 'fake-indexeddb/auto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { unzipSync, strFromU8 } from 'fflate';
import { deleteDB } from 'idb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from '../src/engine/generate';
import type { LoadedModel } from '../src/engine/load';
import { attachLora, detachLora } from '../src/engine/lora';
import { disposeModel } from '../src/engine/model';
import { tf } from '../src/engine/tf';
import { writeAdapterZip } from '../src/formats/peft';
import { readModelFolder } from '../src/node/model-folder';
import { saveAdapter } from '../src/store/adapters';
import { saveDataset } from '../src/store/datasets';
import { closeStore } from '../src/store/db';
import { exportAdapter } from '../src/worker/export';
import type { ExportFile, ExportTarget } from '../src/worker/export-target';
import { detLora } from './helpers/det-lora';
import { openGguf } from './helpers/llama-cpp';
import { dataFile, loadFixture, modelDir, switchBackend } from './helpers/shared';

const LORA = {
  rank: 4,
  alpha: 8,
  dropout: 0,
  targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const,
  useRslora: false,
};

/** Collects the export in memory and records whether it was finished or discarded. */
function recordingTarget() {
  const state = { finished: 0, discarded: 0, bytes: 0 };
  const target: ExportTarget = async () => {
    const parts: Uint8Array[] = [];
    const file: ExportFile = {
      write: (chunk) => void parts.push(chunk.slice()),
      finish: async () => {
        state.finished++;
        return new Blob(parts as Uint8Array<ArrayBuffer>[]);
      },
      discard: async () => void state.discarded++,
    };
    return file;
  };
  return { target, state };
}

describe('exports from the worker', () => {
  let loaded: LoadedModel;
  let adapterId = '';
  let importedId = '';
  let expected: number[] = [];
  const PROMPT = 'Who is Tom?\n';
  const openModel = async () => readModelFolder(modelDir('stories260K'));

  beforeAll(async () => {
    await switchBackend('cpu');
    loaded = loadFixture('stories260K');
    const adapter = attachLora(loaded.model, { ...LORA, targets: [...LORA.targets] }, detLora, 'stories260K');
    const weights = await adapter.toWeights();
    const result = await generate(loaded.model, loaded.tokenizer.encode(PROMPT), {
      maxNewTokens: 12,
      temperature: 0,
      eosTokenIds: [],
      decode: (t) => loaded.tokenizer.decode(t),
    });
    expected = result.tokens;
    detachLora(loaded.model, adapter);
    const bytes = new Uint8Array(fs.readFileSync(dataFile('best-friends.csv')));
    const dataset = await saveDataset({
      name: 'best friends',
      fileName: 'best-friends.csv',
      bytes,
      mapping: null,
      rows: 20,
    });
    const common = {
      modelName: 'stories260K',
      datasetName: 'best-friends.csv',
      trainLoss: 1,
      valLoss: 1,
      lossHistory: [],
      zip: writeAdapterZip(weights),
      promptStyle: null,
    };
    adapterId = (
      await saveAdapter({
        ...common,
        name: 'friends',
        datasetId: dataset.id,
        settings: {
          rank: 4,
          alpha: 8,
          epochs: 2,
          learningRate: 0.004,
          batchSize: 2,
          seed: 3,
          valSplit: 0.25,
          maxLength: 64,
        },
        origin: 'trained',
      })
    ).id;
    importedId = (
      await saveAdapter({
        ...common,
        name: 'from elsewhere',
        datasetId: '',
        settings: {},
        origin: 'imported',
      })
    ).id;
  });
  afterAll(async () => {
    disposeModel(loaded.model);
    await closeStore();
    await deleteDB('webtune');
  });

  it('gguf: one zip in one folder; llama.cpp on its model.gguf answers like webtune with the library adapter', async () => {
    const { target, state } = recordingTarget();
    const progress: number[] = [];
    const result = await exportAdapter(
      loaded,
      { adapterId, format: 'gguf', dtype: 'f32' },
      openModel,
      target,
      (p) => progress.push(p.done),
    );
    expect(result.fileName).toBe('friends-gguf.zip');
    expect(state).toMatchObject({ finished: 1, discarded: 0 });
    expect(progress.at(-1)).toBe(result.bytes);
    const files = unzipSync(new Uint8Array(await result.file.arrayBuffer()));
    expect(Object.keys(files).sort()).toEqual([
      'friends-gguf/Modelfile',
      'friends-gguf/README.md',
      'friends-gguf/adapter.gguf',
      'friends-gguf/model.gguf',
    ]);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-worker-export-'));
    fs.writeFileSync(path.join(dir, 'model.gguf'), files['friends-gguf/model.gguf']);
    const run = await openGguf(path.join(dir, 'model.gguf'));
    try {
      expect(await run.greedy(loaded.tokenizer.encode(PROMPT), 12)).toEqual(expected);
    } finally {
      await run.dispose();
      fs.rmSync(dir, { recursive: true });
    }
  });

  it("trl: the adapter's saved dataset, split by its saved validation fraction and seed, with its settings", async () => {
    const { target } = recordingTarget();
    const result = await exportAdapter(loaded, { adapterId, format: 'trl' }, openModel, target);
    const files = unzipSync(new Uint8Array(await result.file.arrayBuffer()));
    const lines = (name: string) =>
      strFromU8(files[`friends-trl/data/${name}.jsonl`]).trim().split('\n').length;
    const rows = fs.readFileSync(dataFile('best-friends.csv'), 'utf8').trim().split('\n').length - 1;
    expect(lines('validation')).toBe(Math.round(rows * 0.25));
    expect(lines('train') + lines('validation')).toBe(rows);
    const yaml = strFromU8(files['friends-trl/sft_config.yaml']);
    for (const line of [
      'learning_rate: 0.004',
      'num_train_epochs: 2',
      'per_device_train_batch_size: 2',
      'seed: 3',
      'max_length: 64',
      'lora_r: 4',
    ])
      expect(yaml).toContain(line);
  });

  it('refuses what the page cannot do, saying what to do instead, and leaves no half-written file', async () => {
    const { target, state } = recordingTarget();
    const tensors = tf.memory().numTensors;
    await expect(
      exportAdapter(loaded, { adapterId: importedId, format: 'trl' }, openModel, target),
    ).rejects.toThrow(
      /was imported, so its dataset is not on this device. Use webtune export --format trl --data FILE/,
    );
    await expect(
      exportAdapter(loaded, { adapterId: 'gone', format: 'gguf' }, openModel, target),
    ).rejects.toThrow(/no longer saved on this device/);
    const failing = async () => {
      throw new Error("Pick the model folder's files again");
    };
    await expect(exportAdapter(loaded, { adapterId, format: 'merged' }, failing, target)).rejects.toThrow(
      /Pick the model folder's files again/,
    );
    expect(state.finished).toBe(0);
    // A failure after the file was opened discards it.
    const halfway = async () => ({ ...(await openModel()), weights: new Uint8Array(16) });
    await expect(exportAdapter(loaded, { adapterId, format: 'merged' }, halfway, target)).rejects.toThrow();
    expect(state.discarded).toBe(1);
    // Exports read files, never the engine's tensors.
    expect(tf.memory().numTensors).toBe(tensors);
  });
});
