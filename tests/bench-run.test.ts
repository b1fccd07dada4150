// The bench times the run a person starts: the settings the CLI gives `webtune train --preset quick` (LoRA
// dropout included), over one epoch without warm-up; `dropout: 0` is the labelled run without dropout that
// scripts/bench_torch.py compares with.
import { beforeAll, describe, expect, it } from 'vitest';
import { benchRun, BENCH_PRESET, measure } from '../src/bench/run';
import { loraSettings, trainSettings } from '../src/cli/run-settings';
import { RUN_DEFAULTS } from '../src/data/defaults';
import { loraSettingsOf, trainSettingsOf } from '../src/data/trainer-setup';
import { parameterCount } from '../src/engine/config';
import { disposeModel } from '../src/engine/model';
import { tf } from '../src/engine/tf';
import { loadFixture, switchBackend } from './helpers/shared';

const OPTIONS = { seq: 16, batch: 2, steps: 1, decode: 2, recompute: true };

describe('the bench run', () => {
  beforeAll(() => switchBackend('wasm'));

  it("is the CLI's run with the Quick try preset, dropout included, over one epoch without warm-up", () => {
    const { model } = loadFixture('stories260K');
    const known = { trainExamples: null, tokens: null, parameters: parameterCount(model.args) };
    const flags = { preset: BENCH_PRESET };
    const run = benchRun(model.args, OPTIONS);
    expect(loraSettingsOf(run)).toEqual(loraSettings(flags, known));
    expect(loraSettingsOf(run).dropout).toBe(RUN_DEFAULTS.dropout);
    expect(RUN_DEFAULTS.dropout).toBeGreaterThan(0);
    expect(trainSettingsOf(run, true)).toEqual({
      ...trainSettings(flags, known),
      epochs: 1,
      warmupSteps: 0,
      recompute: true,
    });
    expect(run.batchSize).toBe(OPTIONS.batch);
    expect(loraSettingsOf(benchRun(model.args, { ...OPTIONS, dropout: 0 })).dropout).toBe(0);
    disposeModel(model);
  });

  it('reports the dropout it trained with, and the run without it when asked', async () => {
    const before = tf.memory().numTensors;
    const withDropout = await measure('stories260K', loadFixture('stories260K').model, OPTIONS);
    expect(withDropout).toMatchObject({ preset: 'quick', dropout: RUN_DEFAULTS.dropout });
    const without = await measure('stories260K', loadFixture('stories260K').model, {
      ...OPTIONS,
      dropout: 0,
    });
    expect(without).toMatchObject({ preset: 'quick', dropout: 0 });
    for (const r of [withDropout, without]) expect(r.train_tokens_per_s).toBeGreaterThan(0);
    expect(tf.memory().numTensors).toBe(before);
  });
});
