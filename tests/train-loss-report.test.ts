/**
 * The training loss a run reports is one figure wherever it is read: the CLI's summary (runTraining), the
 * page's result and the adapter saved to the library (the worker) all give the mean loss of the last
 * epoch's steps, also when the run was paused mid-epoch and resumed.
 */
import 'fake-indexeddb/auto';
import fs from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { disposeModel } from '../src/engine/model';
import { tf } from '../src/engine/tf';
import { lastEpochMeanLoss } from '../src/engine/train';
import { getAdapter } from '../src/store/adapters';
import { AdapterSlot } from '../src/worker/adapter-slot';
import { DatasetSession } from '../src/worker/dataset-session';
import type { DatasetSettings, TrainEvent, TrainRequest } from '../src/worker/protocol';
import { ModelLease } from '../src/worker/lease';
import { TrainingSession } from '../src/worker/training';
import { dataFile, loadFixture, switchBackend } from './helpers/shared';

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
  recompute: 'on',
  keep: 'last',
};

describe('the reported training loss', () => {
  it('is the mean of the last epoch, leaving out steps that had no tokens', () => {
    // Two steps per epoch; step 4 had every completion truncated away (loss 0, no tokens).
    const history = [
      { step: 1, loss: 3, tokens: 10 },
      { step: 2, loss: 2, tokens: 10 },
      { step: 3, loss: 1.5, tokens: 10 },
      { step: 4, loss: 0, tokens: 0 },
    ];
    expect(lastEpochMeanLoss(history, 2)).toBe(1.5);
    expect(lastEpochMeanLoss(history.slice(0, 2), 2)).toBe(2.5);
    // Histories without token counts (the worker's stored curve) count every step they hold.
    expect(
      lastEpochMeanLoss(
        [
          { step: 5, loss: 1 },
          { step: 6, loss: 2 },
        ],
        3,
      ),
    ).toBe(1.5);
    expect(lastEpochMeanLoss([], 2)).toBeNaN();
  });

  describe('from the worker', () => {
    beforeAll(async () => {
      await switchBackend('wasm');
    });

    /** One run on best-friends.csv (4 steps per epoch), paused after `pauseAt` steps and resumed if given. */
    async function run(pauseAt: number | null) {
      const loaded = loadFixture('stories260K');
      const slot = new AdapterSlot();
      const session = new DatasetSession();
      const training = new TrainingSession(slot, session, new ModelLease());
      const losses: { step: number; loss: number; epoch: number }[] = [];
      const onEvent = (event: TrainEvent) => {
        if (event.kind !== 'step') return;
        losses.push({ step: event.metrics.step, loss: event.metrics.loss, epoch: event.metrics.epoch });
        if (event.metrics.step === pauseAt) training.pause();
      };
      try {
        session.open({
          bytes: new Uint8Array(fs.readFileSync(dataFile(FILE))),
          fileName: FILE,
          settings: SETTINGS,
        });
        session.useModel(loaded);
        let result = await training.train(loaded, TRAIN, onEvent);
        if (pauseAt !== null) {
          expect(result.paused).toBe(true);
          result = await training.resume(loaded, onEvent);
        }
        const saved = result.adapterId ? await getAdapter(result.adapterId) : undefined;
        slot.clear(loaded.model);
        return { result, losses, savedLoss: saved?.trainLoss };
      } finally {
        disposeModel(loaded.model);
      }
    }

    it('is the mean over the last epoch across a pause, and the library stores the same figure', async () => {
      const tensorsBefore = tf.memory().numTensors;
      const whole = await run(null);
      const resumed = await run(6); // paused halfway through the second (last) epoch
      expect(tf.memory().numTensors).toBe(tensorsBefore);

      for (const { result, losses, savedLoss } of [whole, resumed]) {
        expect(result.steps).toBe(8);
        const lastEpoch = losses.filter((m) => m.epoch === 1).map((m) => m.loss);
        expect(lastEpoch).toHaveLength(4);
        const mean = lastEpoch.reduce((a, b) => a + b, 0) / lastEpoch.length;
        expect(result.trainLoss).toBeCloseTo(mean, 10);
        expect(savedLoss).toBe(result.trainLoss);
      }
      // Resuming is exact, so both runs report the same loss.
      expect(resumed.result.trainLoss).toBeCloseTo(whole.result.trainLoss, 5);
    });
  });
});
