// A LoRA adapter trained by webtune on real data and exported as the worker exports it scores the same
// under the independent PyTorch reference as under webtune's engine — and clearly not like the base model.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { detectLayout, parseDataset, plainFormat } from '../src/data';
import { promptStyleFor } from '../src/data/chat-prompt';
import { buildTrainingSet } from '../src/data/training-set';
import { attachLora, detachLora, peftInit, type LoraSettings } from '../src/engine/lora';
import { disposeModel } from '../src/engine/model';
import { scoreTokens } from '../src/engine/score';
import { tf } from '../src/engine/tf';
import { runTraining, Trainer, type TrainSettings } from '../src/engine/train';
import { infoMetadata, type AdapterInfo } from '../src/formats/adapter-info';
import { writeAdapterZip } from '../src/formats/peft';
import { adapterReadme } from '../src/formats/readme';
import { hasTorch, INSTALL_TORCH, referenceScore, unzipToTemp } from './helpers/reference';
import { dataFile, loadFixture, maxAbsDiff, modelDir, switchBackend } from './helpers/shared';
import { disposeAfterEach } from './helpers/cleanup';

const own = disposeAfterEach();

const DATA = 'animal-sounds.jsonl';
const LORA: LoraSettings = {
  rank: 8,
  alpha: 16,
  dropout: 0,
  targets: ['q_proj', 'v_proj'],
  useRslora: false,
};
const TRAIN: TrainSettings = {
  learningRate: 1e-2,
  epochs: 2,
  gradAccum: 1,
  warmupSteps: 1,
  maxGradNorm: 1,
  weightDecay: 0,
  seed: 1,
};

describe('trained adapter against the PyTorch reference', () => {
  it(`trained on ${DATA} and exported as a PEFT zip, it scores like webtune_reference.py --adapter within 1e-3`, async () => {
    if (!hasTorch())
      throw new Error(
        `/usr/bin/python3 cannot import torch, which the PyTorch reference needs: ${INSTALL_TORCH}`,
      );
    await switchBackend('cpu');
    const start = tf.memory().numTensors;

    const { model, tokenizer, name } = own(loadFixture('stories260K'));
    const dataset = parseDataset(fs.readFileSync(dataFile(DATA), 'utf8'), DATA);
    const mapping = detectLayout(dataset.columns)!;
    const format = plainFormat();
    const set = buildTrainingSet(dataset, tokenizer, {
      mapping,
      format,
      maxLength: 64,
      valSplit: 0,
      batchSize: 4,
      seed: 1,
    });
    const adapter = own.adapter(model, attachLora(model, LORA, peftInit(1), name));
    const trainer = own.add(new Trainer(model, adapter, set.data, TRAIN));
    const summary = await runTraining(trainer);
    trainer.dispose();
    expect(summary.steps).toBe(trainer.totalSteps);

    // Exported exactly as the worker does: weights, webtune's info in the header, and a README.
    const weights = await adapter.toWeights();
    expect(
      [...weights.modules.values()].some(({ B }) => B.data.some((v) => v !== 0)),
      'training left every B at zero',
    ).toBe(true);
    const info: AdapterInfo = {
      name: `${name}-animal-sounds`,
      modelName: name,
      datasetName: DATA,
      promptStyle: promptStyleFor(mapping, false, dataset.rows),
      settings: TRAIN,
      trainLoss: summary.trainLoss,
      valLoss: summary.valLoss,
      lossHistory: summary.history.map((m) => ({ step: m.step, loss: m.loss })),
    };
    const zip = writeAdapterZip(
      { ...weights, metadata: infoMetadata(info) },
      { readme: adapterReadme(weights.config, info.name, info.promptStyle) },
    );
    const folder = unzipToTemp(zip);

    // One training example, prompt + completion (BOS and EOS included), as the trainer saw it.
    const ids = set.train[0].encoded.ids;
    const engine = (await scoreTokens(model, ids)).logprobs;
    detachLora(model, adapter);
    disposeModel(model);
    expect(tf.memory().numTensors).toBe(start);

    try {
      const adapted = referenceScore(modelDir('stories260K'), ids, folder);
      const base = referenceScore(modelDir('stories260K'), ids);
      expect(adapted.ids).toEqual(ids);
      expect(engine).toHaveLength(ids.length - 1);
      expect(adapted.logprobs).toHaveLength(ids.length - 1);
      expect(maxAbsDiff(engine, adapted.logprobs)).toBeLessThan(1e-3);
      // The adapter matters: the base model scores the same text clearly differently, so ignoring the
      // adapter on either side would fail the check above.
      expect(maxAbsDiff(base.logprobs, adapted.logprobs)).toBeGreaterThan(1);
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });
});
