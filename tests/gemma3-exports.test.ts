// Gemma 3's adapters leave webtune as the others' do: a PEFT zip with Gemma's module names and a merged
// folder score under the independent PyTorch reference as under webtune; an adapter trained through Gemma's
// chat template on conversations learns and exports the same way.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { chatTemplateFormat, detectLayout, parseDataset } from '../src/data';
import { buildTrainingSet } from '../src/data/training-set';
import { loadModel } from '../src/engine/load';
import { attachLora, detachLora, peftInit } from '../src/engine/lora';
import { disposeModel } from '../src/engine/model';
import { scoreTokens } from '../src/engine/score';
import { tf } from '../src/engine/tf';
import { runTraining, Trainer } from '../src/engine/train';
import { writeMergedModel } from '../src/formats/merged-model';
import { readAdapterZip, writeAdapterZip } from '../src/formats/peft';
import { memoryFolder } from '../src/formats/sink';
import { readModelFolder } from '../src/node/model-folder';
import { DET_ADAPTERS } from './helpers/det-adapters';
import { detLora } from './helpers/det-lora';
import { hasTorch, INSTALL_TORCH, referenceScore, unzipToTemp } from './helpers/reference';
import { dataFile, loadFixture, maxAbsDiff, modelDir, switchBackend } from './helpers/shared';

const GEMMA = 'tiny-random-gemma3';
const TEXT = 'Lily and Tom went to the park. They saw a big dog and a small cat.';

describe('Gemma 3 adapters under the PyTorch reference', () => {
  it('a PEFT zip on all seven projections, and the merged folder, score like the reference (1e-4)', async () => {
    if (!hasTorch()) throw new Error(`The PyTorch reference needs torch: ${INSTALL_TORCH}`);
    await switchBackend('cpu');
    const start = tf.memory().numTensors;
    const base = loadFixture(GEMMA);
    let merged: ReturnType<typeof loadModel> | undefined;
    try {
      const adapter = attachLora(base.model, DET_ADAPTERS[0].settings, detLora, GEMMA);
      const weights = await adapter.toWeights();
      const ids = base.tokenizer.encode(TEXT);
      expect(ids.length).toBeGreaterThan(8); // beyond the fixture's window of 4
      const zip = writeAdapterZip(weights);
      const read = readAdapterZip(zip);
      expect([...read.modules.keys()].slice(0, 3)).toEqual([
        'model.layers.0.self_attn.q_proj',
        'model.layers.0.self_attn.k_proj',
        'model.layers.0.self_attn.v_proj',
      ]);
      expect(read.config.target_modules).toEqual(DET_ADAPTERS[0].settings.targets);

      const withAdapter = referenceScore(modelDir(GEMMA), ids, unzipToTemp(zip));
      const plain = referenceScore(modelDir(GEMMA), ids);
      const ours = await scoreTokens(base.model, ids);
      expect(maxAbsDiff(ours.logprobs, withAdapter.logprobs)).toBeLessThan(1e-4);
      // The adapter matters, so ignoring it on either side would fail.
      expect(maxAbsDiff(plain.logprobs, withAdapter.logprobs)).toBeGreaterThan(1e-2);

      const folder = memoryFolder();
      const files = readModelFolder(modelDir(GEMMA));
      await writeMergedModel(folder, { files, adapter: weights, name: 'merged', promptStyle: null });
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-gemma3-merged-'));
      for (const [name, bytes] of folder.files) fs.writeFileSync(path.join(dir, name), bytes);
      expect(maxAbsDiff(referenceScore(dir, ids).logprobs, withAdapter.logprobs)).toBeLessThan(1e-4);
      merged = loadModel(readModelFolder(dir));
      expect(maxAbsDiff((await scoreTokens(merged.model, ids)).logprobs, withAdapter.logprobs)).toBeLessThan(
        1e-4,
      );
      detachLora(base.model, adapter);
    } finally {
      if (merged) disposeModel(merged.model);
      disposeModel(base.model);
    }
    expect(tf.memory().numTensors).toBe(start);
  });

  it("trains on conversations through Gemma's chat template, and the exported adapter scores like the reference", async () => {
    await switchBackend('wasm');
    const start = tf.memory().numTensors;
    const { model, tokenizer } = loadFixture(GEMMA);
    const dataset = parseDataset(fs.readFileSync(dataFile('sharegpt.jsonl'), 'utf8'), 'sharegpt.jsonl');
    const set = buildTrainingSet(dataset, tokenizer, {
      mapping: detectLayout(dataset.columns, dataset.rows)!,
      format: chatTemplateFormat(tokenizer),
      maxLength: 128,
      valSplit: 0,
      batchSize: 2,
      seed: 1,
    });
    const first = set.train[0].encoded.ids;
    expect(first.filter((id) => id === 4).length).toBeGreaterThan(1); // <start_of_turn>
    const settings = {
      rank: 8,
      alpha: 16,
      dropout: 0,
      targets: DET_ADAPTERS[0].settings.targets,
      useRslora: false,
    };
    const adapter = attachLora(model, settings, peftInit(1), GEMMA);
    const trainer = new Trainer(model, adapter, set.data, {
      learningRate: 2e-2,
      epochs: 4,
      gradAccum: 1,
      warmupSteps: 0,
      maxGradNorm: 1,
      weightDecay: 0,
      seed: 1,
    });
    let folder: string | undefined;
    try {
      const summary = await runTraining(trainer);
      const losses = summary.history.map((h) => h.loss);
      expect(losses[losses.length - 1]).toBeLessThan(0.8 * losses[0]);
      folder = unzipToTemp(writeAdapterZip(await adapter.toWeights()));
      const ours = (await scoreTokens(model, first)).logprobs;
      expect(maxAbsDiff(ours, referenceScore(modelDir(GEMMA), first, folder).logprobs)).toBeLessThan(1e-4);
    } finally {
      trainer.dispose();
      detachLora(model, adapter);
      disposeModel(model);
      if (folder) fs.rmSync(folder, { recursive: true, force: true });
    }
    expect(tf.memory().numTensors).toBe(start);
  });
});
