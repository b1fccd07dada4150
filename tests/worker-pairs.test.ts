/**
 * Preference pairs through the worker's host, as the page drives it, with the real engine (stories260K on
 * wasm): happy-endings.csv is detected and previewed as pairs (each prompt with its chosen and its rejected
 * answer, read from the file itself), a DPO run scores every pair with the adapter off before its first step
 * (whose loss is then exactly log 2: the policy is the reference), reports TRL's reward figures for its steps
 * and for the held-out pairs, and the Evaluate step finds the tuned model preferring the chosen answers more
 * often than the base model. DPO on single answers is refused.
 */
import 'fake-indexeddb/auto';
import fs from 'node:fs';
import { strFromU8, unzipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Dpo } from '../src/engine/preference';
import { tf } from '../src/engine/tf';
import { getAdapter } from '../src/store/adapters';
import { saveDataset } from '../src/store/datasets';
import { latestRun } from '../src/store/runs';
import type {
  DatasetSettings,
  EvaluationResult,
  PreparedDataset,
  TrainEvent,
  TrainingEstimate,
  TrainRequest,
  TrainResult,
} from '../src/worker/protocol';
import { HostDriver } from './helpers/host';
import { dataFile, switchBackend } from './helpers/shared';

const SETTINGS: DatasetSettings = {
  mapping: null,
  useChatTemplate: false,
  maxLength: 64,
  valSplit: 0.25,
  seed: 11,
};
// The settings tests/data-pairs.test.ts trains happy-endings.csv with: 15 pairs in batches of 4, 3 epochs.
const DPO: TrainRequest = {
  source: { modelUrl: null, datasetId: 'happy' },
  backend: 'wasm',
  rank: 8,
  alpha: 16,
  dropout: 0,
  targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
  learningRate: 5e-3,
  epochs: 3,
  batchSize: 4,
  gradAccum: 1,
  warmupSteps: 0,
  seed: 11,
  recompute: 'off',
  objective: 'dpo',
  beta: 0.1,
};

/** The file's rows, read here by splitting its lines (no cell of the fixture holds a comma or a quote). */
function fileRows(): { prompt: string; chosen: string; rejected: string }[] {
  const text = fs.readFileSync(dataFile('happy-endings.csv'), 'utf8');
  expect(text).not.toContain('"');
  const [header, ...lines] = text.trim().split('\n');
  expect(header).toBe('prompt,chosen,rejected');
  return lines.map((line) => {
    const cells = line.split(',');
    expect(cells).toHaveLength(3);
    return { prompt: cells[0], chosen: cells[1], rejected: cells[2] };
  });
}

/** The uninterrupted DPO run's result, which the resumed one must end on. */
let result: TrainResult;

describe('preference pairs in the worker', () => {
  const d = new HostDriver();
  let beforeModel: PreparedDataset;
  let withModel: PreparedDataset;
  const events: TrainEvent[] = [];
  let tensorsBefore = 0;
  let layers = 0;

  beforeAll(async () => {
    await switchBackend('wasm');
    await d.send('init', { backend: 'wasm' });
    beforeModel = await d.openDataset('happy-endings.csv', SETTINGS);
    layers = (await d.loadFixture()).layers;
    withModel = await d.send('configureDataset', SETTINGS);
    tensorsBefore = tf.memory().numTensors;
    result = await d.send('train', DPO, (event) => events.push(event as TrainEvent));
  }, 300_000);

  afterAll(() => d.dispose());

  it('detects the pairs and names them, before and after the model', () => {
    for (const prepared of [beforeModel, withModel]) {
      expect(prepared.mapping).toEqual({
        kind: 'pairs',
        prompt: 'prompt',
        chosen: 'chosen',
        rejected: 'rejected',
      });
      expect(prepared.layout).toEqual({ name: 'preference', description: 'preference pairs, 20 rows' });
      expect(prepared.layouts?.map((l) => l.name)).toContain('preference');
      // 20 pairs, a quarter held out.
      expect([prepared.trainExamples, prepared.validationExamples]).toEqual([15, 5]);
      expect(prepared.labels ?? null).toBeNull();
    }
    expect(beforeModel.stats).toBeNull();
    expect(withModel.stats).toMatchObject({ rows: 20, pairs: 20, examples: 40 });
  });

  it('offers held-out prompts to Compare with the chosen answer as the one the data expects', () => {
    const rows = fileRows();
    expect(withModel.quickPromptsFrom).toBe('validation');
    expect(withModel.quickPrompts.length).toBeGreaterThan(0);
    for (const quick of withModel.quickPrompts) {
      const row = rows.find((r) => r.prompt === quick.message);
      expect(row, quick.message).toBeDefined();
      expect(quick.answer).toBe(row!.chosen);
    }
  });

  it("previews each prompt with the file's chosen answer and its rejected one", () => {
    const rows = fileRows();
    for (const prepared of [beforeModel, withModel]) {
      expect(prepared.preview).toHaveLength(5);
      for (const shown of prepared.preview) {
        const row = rows.find((r) => shown.prompt.startsWith(r.prompt));
        expect(row, shown.prompt).toBeDefined();
        expect(shown.completion).toBe(row!.chosen);
        expect(shown.rejected).toBe(row!.rejected);
        expect(shown.truncated).toBe(false);
      }
    }
  });

  it('scores the 20 pairs with the adapter off before the first step, whose loss is then log 2', () => {
    const kinds = events.map((e) => e.kind);
    const firstStep = kinds.indexOf('step');
    expect(events.filter((e) => e.kind === 'reference')).toEqual([
      { kind: 'reference', pairs: 20, done: false },
      { kind: 'reference', pairs: 20, done: true },
    ]);
    expect(kinds.lastIndexOf('reference')).toBeLessThan(firstStep);
    const first = events[firstStep] as Extract<TrainEvent, { kind: 'step' }>;
    expect(Math.abs(first.metrics.loss - Math.log(2))).toBeLessThan(1e-6);
    // The policy equals the reference: every reward is 0, so no pair's chosen reward is the higher.
    expect(first.metrics.objectiveMetrics!['rewards/margins']).toBeCloseTo(0, 6);
    expect(first.metrics.objectiveMetrics!['rewards/accuracies']).toBe(0);
  });

  it('reports the reward figures of every step and of the held-out pairs, which it learns to prefer', () => {
    const steps = events.filter((e) => e.kind === 'step');
    expect(steps).toHaveLength(12);
    expect(result).toMatchObject({ steps: 12, paused: false, stopped: false });
    const evals = events.filter((e): e is Extract<TrainEvent, { kind: 'eval' }> => e.kind === 'eval');
    expect(evals.map((e) => e.step)).toEqual([4, 8, 12]);
    for (const e of evals)
      expect(Object.keys(e.objectiveMetrics!).sort()).toEqual([
        'rewards/accuracies',
        'rewards/chosen',
        'rewards/margins',
        'rewards/rejected',
      ]);
    expect(evals.at(-1)!.objectiveMetrics!['rewards/accuracies']).toBe(1);
    expect(evals.at(-1)!.valLoss).toBeLessThan(Math.log(2));
    expect(d.state()).toEqual({ holder: null, phase: 'idle', consistent: null });
    // The trainer and its optimizer are gone; the adapter stays on the model for the chat: an A and a B
    // for each of the 4 projections of each layer.
    expect(tf.memory().numTensors - tensorsBefore).toBe(layers * 4 * 2);
  });

  it('Evaluate scores the held-out pairs: the tuned model prefers the chosen answers more than the base', async () => {
    const answer = await d.send('evaluate', {
      referenceText: null,
      shots: 1,
      split: 'validation',
      datasetId: 'happy',
    });
    if ('refused' in answer) throw new Error(answer.refused);
    const { preference, tuned } = answer as EvaluationResult;
    expect(preference!.pairs).toBe(5);
    expect(preference!.tuned!.accuracy).toBe(1);
    expect(preference!.tuned!.accuracy).toBeGreaterThan(preference!.base.accuracy);
    expect(preference!.tuned!.margin).toBeGreaterThan(preference!.base.margin);
    // The greedy answers side by side: the held-out prompts, with the chosen answer as the one expected.
    const rows = fileRows();
    expect(tuned.results).toHaveLength(5);
    for (const r of tuned.results) expect(rows.map((row) => row.chosen)).toContain(r.expected);
  }, 120_000);

  it("keeps an adapter whose README names DPO, and exports it for TRL as a trl dpo run on the run's pairs", async () => {
    const record = (await getAdapter(result.adapterId!))!;
    const zip = unzipSync(record.zip);
    const readme = strFromU8(zip[Object.keys(zip).find((f) => f.endsWith('README.md'))!]);
    expect(readme).toContain('It was trained with DPO (β 0.1)');
    // The dataset as the page stores a dropped file, under the id the run named.
    await saveDataset({
      id: 'happy',
      name: 'happy endings',
      fileName: 'happy-endings.csv',
      bytes: new Uint8Array(fs.readFileSync(dataFile('happy-endings.csv'))),
      mapping: null,
      rows: 20,
    });
    const exported = await d.send('exportAdapter', {
      adapterId: record.id,
      format: 'trl',
      modelFiles: d.pickedFiles(),
    });
    const files = unzipSync(new Uint8Array(await exported.file.arrayBuffer()));
    const named = (end: string) => strFromU8(files[Object.keys(files).find((f) => f.endsWith(end))!]);
    expect(Object.keys(files).some((f) => f.endsWith('sft_config.yaml'))).toBe(false);
    const config = named('dpo_config.yaml');
    expect(config).toMatch(/^beta: 0\.1$/m);
    expect(config).toMatch(/^learning_rate: 0\.005$/m);
    // TRL's preference rows: the held-out ones are the five pairs the run held out, as the file has them.
    const rows = fileRows();
    const held = named('data/validation.jsonl')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { prompt: string; chosen: string; rejected: string });
    expect(held).toHaveLength(5);
    for (const row of held) {
      const source = rows.find((r) => row.prompt.startsWith(r.prompt))!;
      expect([row.chosen, row.rejected]).toEqual([source.chosen, source.rejected]);
    }
    const trained = named('data/train.jsonl').trim().split('\n');
    expect(trained).toHaveLength(15);
  }, 120_000);

  it('times a DPO run with its pairs as twice the rows of a batch of examples', async () => {
    const estimate = (objective: 'sft' | 'dpo') =>
      d.send('estimateTraining', { ...DPO, objective, epochs: 1 }) as Promise<TrainingEstimate>;
    const sft = await estimate('sft');
    const dpo = await estimate('dpo');
    // SFT on pairs trains the 15 chosen answers, DPO the 15 pairs: the same 4 steps of 4.
    expect([sft.totalSteps, dpo.totalSteps]).toEqual([4, 4]);
    expect(dpo.memoryBytes).toBeGreaterThan(sft.memoryBytes);
    expect(dpo.seconds).toBeGreaterThan(0);
  }, 120_000);
});

describe('a DPO run resumed after a reload', () => {
  it("keeps the pairs' reference log-probs in its checkpoint and ends on the uninterrupted run's losses", async () => {
    // The page before the reload: the same run, paused after step 6 (its checkpoint is saved at the pause).
    const before = new HostDriver();
    await before.send('init', { backend: 'wasm' });
    await before.loadFixture();
    await before.openDataset('happy-endings.csv', SETTINGS);
    const paused = await before.send('train', DPO, (event) => {
      const e = event as TrainEvent;
      if (e.kind === 'step' && e.metrics.step === 6) void before.send('pauseTraining', {});
    });
    expect(paused).toMatchObject({ paused: true, steps: 6 });
    const saved = (await latestRun())!;
    expect(saved.step).toBe(6);
    // 20 pairs, each with its chosen and rejected answer's summed log-prob under the base model (< 0).
    const { pairIds, chosen, rejected } = saved.state.objective!;
    expect([...pairIds].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    for (const logp of [...chosen, ...rejected]) expect(logp).toBeLessThan(0);
    // Its reward accuracy so far, for the chart after the reload: steps 1–6, the held-out pairs at step 4.
    expect(saved.rewardHistory!.filter((r) => !r.heldOut).map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(saved.rewardHistory!.filter((r) => r.heldOut).map((r) => r.step)).toEqual([4]);
    before.dispose();

    // After the reload: a new worker resumes from the checkpoint, handing the stored scores to DPO.
    const imported = vi.spyOn(Dpo.prototype, 'importState');
    const after = new HostDriver();
    try {
      await after.send('init', { backend: 'wasm' });
      await after.loadFixture();
      await after.openDataset('happy-endings.csv', SETTINGS);
      const events: TrainEvent[] = [];
      const resumed = await after.send('resumeSavedRun', { runId: saved.id, backend: 'wasm' }, (e) =>
        events.push(e as TrainEvent),
      );
      expect(imported).toHaveBeenCalledWith(saved.state.objective);
      expect(events.some((e) => e.kind === 'reference')).toBe(false);
      expect(resumed).toMatchObject({ steps: 12, paused: false, stopped: false });
      expect(resumed.trainLoss).toBe(result.trainLoss);
      expect(resumed.valLoss).toBe(result.valLoss);
    } finally {
      imported.mockRestore();
      after.dispose();
    }
  });
});

describe('a preference objective on single answers', () => {
  const d = new HostDriver();
  afterAll(() => d.dispose());

  it('is refused, saying what the data would need', async () => {
    await d.send('init', { backend: 'wasm' });
    await d.loadFixture();
    const csv = new TextEncoder().encode('question,answer\nWhat is one?,One.\nWhat is two?,Two.\n');
    await d.openDataset('sums.csv', { ...SETTINGS, valSplit: 0 }, csv);
    await expect(d.send('train', { ...DPO, source: { modelUrl: null, datasetId: 'sums' } })).rejects.toThrow(
      'DPO learns from pairs of answers — a prompt with a chosen and a rejected answer — but this dataset ' +
        'holds single answers. Train it with SFT, or give a file with the columns prompt, chosen and ' +
        "rejected (or OpenAI's preference JSONL).",
    );
    expect(d.state()).toEqual({ holder: null, phase: 'idle', consistent: null });
  });
});

describe('pairs read another way', () => {
  const d = new HostDriver();
  afterAll(() => d.dispose());
  beforeAll(async () => {
    await switchBackend('wasm');
    await d.send('init', { backend: 'wasm' });
  });

  it('maps other column names to prompt, chosen and rejected, and lists the rows that teach nothing', async () => {
    await d.loadFixture();
    const csv = new TextEncoder().encode(
      'question,good,bad\n' +
        'Tom took a ball.,He smiled.,He cried.\n' +
        'Sue took a hat.,She smiled.,She smiled.\n' +
        'Max took a kite.,,He cried.\n' +
        'Ann took a cup.,She smiled.,She cried.\n',
    );
    // Column names no layout knows: the page asks which columns are which.
    const unmapped = await d.openDataset('mine.csv', { ...SETTINGS, valSplit: 0 }, csv);
    expect(unmapped.mapping).toBeNull();
    const mapping = { kind: 'pairs', prompt: 'question', chosen: 'good', rejected: 'bad' } as const;
    const mapped = await d.send('configureDataset', { ...SETTINGS, valSplit: 0, mapping });
    expect(mapped.mapping).toEqual(mapping);
    expect([mapped.trainExamples, mapped.validationExamples]).toEqual([2, 0]);
    expect(mapped.stats).toMatchObject({ rows: 4, pairs: 2 });
    expect(mapped.preview.map((p) => [p.completion, p.rejected])).toEqual([
      ['He smiled.', 'He cried.'],
      ['She smiled.', 'She cried.'],
    ]);
    expect(mapped.skipped).toEqual([
      'Line 3: the chosen and the rejected answer are the same ("She smiled."), so the pair teaches no ' +
        'preference. Correct one of them or remove the row.',
      "Line 4: the chosen answer ('good') is empty, so the pair teaches no preference. Write it or remove the row.",
    ]);
    // An ORPO run on them reports TRL's ORPO figures with every step.
    const events: TrainEvent[] = [];
    await d.send('train', { ...DPO, objective: 'orpo', epochs: 1, batchSize: 2 }, (e) =>
      events.push(e as TrainEvent),
    );
    expect(events.some((e) => e.kind === 'reference')).toBe(false);
    const step = events.find((e) => e.kind === 'step')!;
    expect(Object.keys(step.metrics.objectiveMetrics!).sort()).toEqual([
      'log_odds_chosen',
      'log_odds_ratio',
      'nll_loss',
      'rewards/accuracies',
      'rewards/chosen',
      'rewards/margins',
      'rewards/rejected',
    ]);
  });

  it("previews the pairs through the model's chat template when the run uses it", async () => {
    await d.loadFixture('stories260K-chat');
    const prepared = await d.openDataset('happy-endings.csv', { ...SETTINGS, useChatTemplate: true });
    const rows = fileRows();
    for (const shown of prepared.preview) {
      // The template: each message as <|role|>\n…</s>\n, then <|assistant|>\n for the answer.
      const row = rows.find((r) => shown.prompt === `<|user|>\n${r.prompt}</s>\n<|assistant|>\n`);
      expect(row, shown.prompt).toBeDefined();
      expect(shown.completion).toBe(`${row!.chosen}</s>\n`);
      expect(shown.rejected).toBe(`${row!.rejected}</s>\n`);
    }
  });
});
