/**
 * Adapter details anyone could have written into a zip, and weights that are not numbers: checked on
 * the way in, and records already stored are shown without breaking the library.
 */
import 'fake-indexeddb/auto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  infoMetadata,
  readAdapterInfo,
  sanitizeAdapterInfo,
  type AdapterInfo,
} from '../src/formats/adapter-info';
import { checkFiniteWeights } from '../src/formats/finite-weights';
import { writeAdapterZip, type AdapterWeights } from '../src/formats/peft';
import { listAdapters } from '../src/store/adapters';
import { openStore } from '../src/store/db';
import { modelConfig, modelDir } from './helpers/shared';

const hostile = {
  name: 'x'.repeat(10_000),
  modelName: 5,
  datasetName: null,
  promptStyle: { useChatTemplate: 'yes', promptTemplate: '{q}', conversation: false },
  settings: { rank: NaN, alpha: 16, targets: 5, learningRate: Infinity },
  trainLoss: NaN,
  valLoss: -Infinity,
  lossHistory: [
    { step: 2, loss: 1.5 },
    { step: 1, loss: 2 },
    { step: 2, loss: 1.4 },
    null,
    { step: 3, loss: NaN },
    { step: 'four', loss: 1 },
    { step: 5, loss: 1.1, valLoss: Infinity },
  ],
};

/** stories260K's q_proj/v_proj adapter at rank 2, with the values given. */
function adapterFor(fill: (i: number) => number): AdapterWeights {
  const config = modelConfig('stories260K') as Record<string, number>;
  const modules: AdapterWeights['modules'] = new Map();
  for (let layer = 0; layer < config.num_hidden_layers; layer++) {
    for (const [target, out] of [
      ['q_proj', config.num_attention_heads * config.head_dim],
      ['v_proj', config.num_key_value_heads * config.head_dim],
    ] as const) {
      modules.set(`model.layers.${layer}.self_attn.${target}`, {
        A: {
          shape: [2, config.hidden_size],
          data: Float32Array.from({ length: 2 * config.hidden_size }, (_, i) => fill(i) * 0.01),
        },
        B: { shape: [out, 2], data: Float32Array.from({ length: out * 2 }, (_, i) => fill(i) * 0.01) },
      });
    }
  }
  return {
    config: {
      r: 2,
      lora_alpha: 4,
      lora_dropout: 0,
      target_modules: ['q_proj', 'v_proj'],
      use_rslora: false,
      base_model_name_or_path: 'stories260K',
    },
    modules,
  };
}

describe('adapter details from a zip', () => {
  it('keep only well-formed values: bounded strings, finite numbers, one finite loss point per step in order', () => {
    const info = sanitizeAdapterInfo(hostile)!;
    expect(info.name).toHaveLength(500);
    expect(info).not.toHaveProperty('modelName');
    expect(info).not.toHaveProperty('datasetName');
    expect(info).not.toHaveProperty('promptStyle');
    expect(info.settings).toEqual({ alpha: 16 });
    expect(info).not.toHaveProperty('trainLoss');
    expect(info).not.toHaveProperty('valLoss');
    expect(info.lossHistory).toEqual([
      { step: 1, loss: 2 },
      { step: 2, loss: 1.4 },
      { step: 5, loss: 1.1 },
    ]);
    // Through JSON (as in a zip's header) NaN and Infinity arrive as null, which stands for 'no loss'.
    expect(readAdapterInfo(infoMetadata(hostile as unknown as AdapterInfo))).toEqual({
      ...info,
      trainLoss: null,
      valLoss: null,
    });
    expect(readAdapterInfo({ webtune: '[1,2]' })).toBeNull();
    expect(readAdapterInfo({ webtune: '{not json' })).toBeNull();
  });

  it('a stored record with odd values is listed with them replaced, not as it was', async () => {
    const db = await openStore();
    const record = {
      ...hostile,
      id: 'bad',
      createdAt: 1,
      byteLength: 4,
      datasetId: '',
      origin: 'imported',
      lossHistory: null,
    };
    await db.put('adapters', record as never);
    const [listed] = await listAdapters();
    expect(listed.id).toBe('bad');
    expect(listed.lossHistory).toEqual([]);
    expect(listed.trainLoss).toBeNull();
    expect(listed.settings).toEqual({ alpha: 16 });
    expect(listed.modelName).toBe('');
  });
});

describe('adapter weights', () => {
  it('holding NaN or Infinity are refused, naming the tensor', () => {
    expect(() => checkFiniteWeights(adapterFor(() => 1))).not.toThrow();
    expect(() => checkFiniteWeights(adapterFor((i) => (i === 7 ? NaN : 1)))).toThrow(
      /model\.layers\.0\.self_attn\.q_proj lora_A holds NaN \(value 8\): it is damaged/,
    );
    expect(() => checkFiniteWeights(adapterFor((i) => (i === 0 ? Infinity : 1)))).toThrow(/holds Infinity/);
  });

  it('the CLI refuses a zip with NaN weights in one line', () => {
    const zip = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-nan-')), 'nan.zip');
    fs.writeFileSync(zip, writeAdapterZip(adapterFor((i) => (i === 3 ? NaN : 1))));
    const run = spawnSync(
      process.execPath,
      [
        'bin/webtune.mjs',
        'generate',
        '--model',
        modelDir('stories260K'),
        '--adapter',
        zip,
        '--prompt',
        'Once',
        '--max-new-tokens',
        '2',
        '--backend',
        'cpu',
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(run.status).not.toBe(0);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/holds NaN \(value 4\): it is damaged, so it cannot be used/);
  }, 60_000);
});
