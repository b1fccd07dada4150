// The page's state for preference pairs over a scripted engine worker: a DPO run sends its objective and β,
// the presets follow the objective (a tenth of SFT's learning rate), DPO's reference pass shows while it
// runs, the steps' and the held-out pairs' reward accuracy reach the chart, and the Evaluate step's table
// has the base and fine-tuned preference figures (worded and marked as hand-computed below).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { EvalReport } from '../src/data/evaluate';
import { presetSettings } from '../src/data/presets';
import { figureRows, SHOTS } from '../src/ui/state/evaluation.svelte';
import type { EvaluationResult, PreparedDataset, RunSetup } from '../src/worker/protocol';
import { freshPage, MODEL, pageWithModel, prepared, step, trainResult, type Page } from './helpers/ui-state';

const PAIRS: Partial<PreparedDataset> = {
  columns: ['prompt', 'chosen', 'rejected'],
  mapping: { kind: 'pairs', prompt: 'prompt', chosen: 'chosen', rejected: 'rejected' },
  preview: [
    { prompt: 'Tom took a ball.', completion: 'He smiled.', rejected: 'He cried.', truncated: false },
  ],
};

let page: Page;

beforeEach(async () => {
  page = await pageWithModel();
  page.double.handle('openDataset', () => prepared(PAIRS));
  await page.dataset.open(
    new File(['prompt,chosen,rejected\nTom took a ball.,He smiled.,He cried.\n'], 'p.csv'),
  );
});
afterEach(() => vi.unstubAllGlobals());

describe('a preference run', () => {
  it('sends DPO and its β, shows the reference pass, and charts reward accuracy', async () => {
    const { training, double } = page;
    expect(training.settings.objective).toBe('sft');
    expect(training.settings.beta).toBe(0.1);
    training.settings.objective = 'dpo';
    training.settings.beta = 0.25;
    double.hold('train');
    const run = training.start();
    const call = await double.next('train');
    expect(call.params).toMatchObject({ objective: 'dpo', beta: 0.25 });

    call.emit({ kind: 'reference', pairs: 20, done: false });
    expect(training.scoringPairs).toBe(20);
    call.emit({ kind: 'reference', pairs: 20, done: true });
    expect(training.scoringPairs).toBeNull();

    const figures = { 'rewards/accuracies': 0.75, 'rewards/margins': 0.2 };
    call.emit({ kind: 'step', metrics: { ...step(1, 2, 0.69), objectiveMetrics: figures } });
    expect(training.steps[0].objectiveMetrics).toEqual(figures);
    call.emit({
      kind: 'eval',
      step: 1,
      valLoss: 0.6,
      best: true,
      objectiveMetrics: { 'rewards/accuracies': 0.8 },
    });
    call.emit({ kind: 'eval', step: 2, valLoss: 0.7 });
    expect(training.evals).toEqual([
      { step: 1, valLoss: 0.6, rewardAccuracy: 0.8 },
      { step: 2, valLoss: 0.7 },
    ]);
    call.answer(trainResult({ steps: 2 }));
    await run;
    expect(training.scoringPairs).toBeNull();

    // An SFT run claims no β.
    training.settings.objective = 'sft';
    double.handle('train', () => trainResult());
    await training.start();
    expect(double.sent('train').at(-1)).toMatchObject({ objective: 'sft' });
    expect(double.sent('train').at(-1)).not.toHaveProperty('beta');
  });

  it('a reference pass the run ends in (a failure) is not left showing', async () => {
    const { training, double } = page;
    training.settings.objective = 'dpo';
    double.hold('train');
    const run = training.start();
    const call = await double.next('train');
    call.emit({ kind: 'reference', pairs: 20, done: false });
    call.fail('The model ran out of memory.');
    await run;
    expect(training.scoringPairs).toBeNull();
    expect(training.error).toBe('The model ran out of memory.');
  });

  it('presets follow the objective: a preference run takes a tenth of the learning rate', () => {
    const { training } = page;
    training.applyPreset('balanced');
    const sft = training.settings.learningRate;
    training.settings.objective = 'orpo';
    training.applyPreset();
    const input = { trainExamples: 36, tokens: 1200, parameters: 260_000 };
    expect(training.settings.learningRate).toBe(
      presetSettings('balanced', { ...input, objective: 'orpo' }).learningRate,
    );
    expect(training.settings.learningRate).toBeCloseTo(sft / 10, 12);
  });
});

const report = (exact: number): EvalReport => ({
  examples: 5,
  exact_match: exact,
  token_accuracy: 0.5,
  loss: 1,
  perplexity: Math.E,
  classification: null,
  results: [],
});

describe('the Evaluate step for pairs', () => {
  it('says how far the scoring of the pairs is, after the three columns of answers', async () => {
    const { evaluation, double } = page;
    double.hold('evaluate');
    const run = evaluation.run();
    const call = await double.next('evaluate');
    call.emit({ stage: 'preference', done: 3, total: 10 });
    expect(evaluation.progressText).toBe('Preference pairs, base then fine-tuned: 3 of 10 answers scored');
    // Five parts (base, few-shot, fine-tuned, pairs, general text): the fourth is 3/10 done.
    expect(evaluation.fraction).toBeCloseTo((3 + 0.3) / 5, 10);
    call.fail('Evaluation was cancelled.');
    await run;
  });

  it('leads with how often the chosen answer is preferred and the mean margin, base and fine-tuned', () => {
    const score = (accuracy: number, margin: number) => ({
      accuracy,
      margin,
      chosen: -10,
      rejected: -10 - margin,
    });
    const result: EvaluationResult = {
      split: 'validation',
      examples: 5,
      datasetName: 'happy-endings.csv',
      shots: SHOTS,
      adapter: { id: 'a1', name: 'happy' },
      base: report(0),
      fewShot: report(0),
      tuned: report(0.2),
      forgetting: null,
      preference: { pairs: 5, base: score(0.4, -0.5), tuned: score(1, 3.456) },
      warning: null,
    };
    const [preferred, margin] = figureRows(result);
    expect(preferred).toEqual({
      name: 'Chosen answer preferred',
      explain: 'Share of the 5 pairs whose chosen answer the model finds more likely than the rejected one.',
      cells: { base: '40%', fewShot: null, tuned: '100%' },
      best: 'tuned',
    });
    expect(margin).toMatchObject({
      name: 'Mean margin',
      cells: { base: '-0.50', fewShot: null, tuned: '+3.46' },
    });
    expect(margin.best).toBe('tuned');
    // A dataset of single answers has no such rows.
    expect(figureRows({ ...result, preference: null }).map((r) => r.name)).not.toContain('Mean margin');
  });
});

describe('a DPO run saved before a reload', () => {
  it('resumes as DPO with its reward accuracy back on the chart', async () => {
    const reloaded = await freshPage();
    const stored = await reloaded.store.saveDataset({
      name: 'p.csv',
      fileName: 'p.csv',
      bytes: new TextEncoder().encode('prompt,chosen,rejected\nTom took a ball.,He smiled.,He cried.\n'),
      mapping: PAIRS.mapping!,
      rows: 1,
    });
    const setup: RunSetup = {
      train: {
        source: { modelUrl: '/models/stories260K', datasetId: stored.id },
        backend: 'wasm',
        rank: 2,
        alpha: 4,
        dropout: 0,
        targets: ['q_proj', 'v_proj'],
        learningRate: 0.001,
        epochs: 2,
        batchSize: 2,
        gradAccum: 1,
        warmupSteps: 0,
        seed: 7,
        recompute: 'auto',
        objective: 'dpo',
        beta: 0.2,
      },
      prepare: {
        fileName: 'p.csv',
        mapping: PAIRS.mapping!,
        useChatTemplate: false,
        maxLength: 64,
        valSplit: 0.25,
        seed: 7,
      },
    };
    await reloaded.store.saveRun({
      id: 'run-1',
      savedAt: 1000,
      modelName: MODEL.name,
      modelUrl: '/models/stories260K',
      datasetId: stored.id,
      setup,
      step: 2,
      totalSteps: 4,
      lossHistory: [
        { step: 1, loss: 0.69 },
        { step: 2, loss: 0.6 },
      ],
      evalHistory: [{ step: 2, valLoss: 0.65 }],
      rewardHistory: [
        { step: 1, accuracy: 0 },
        { step: 2, accuracy: 0.5 },
        { step: 2, accuracy: 1, heldOut: true },
      ],
      state: {
        step: 2,
        rngState: 1,
        adapter: new Map([['q', { A: new Float32Array(2), B: new Float32Array(2) }]]),
        optimizer: { step: 2, m: [], v: [] },
        objective: { pairIds: [0], chosen: [-3], rejected: [-4] },
      },
    });
    reloaded.double.handle('loadModelUrl', () => MODEL);
    reloaded.double.handle('openDataset', (request) =>
      prepared({ ...PAIRS, mapping: request.settings.mapping }),
    );
    const { training, double } = reloaded;
    await training.checkSaved();
    double.hold('resumeSavedRun');
    const resuming = training.resumeSaved();
    const call = await double.next('resumeSavedRun');
    expect(training.settings).toMatchObject({ objective: 'dpo', beta: 0.2 });
    expect(training.steps.map((s) => s.objectiveMetrics?.['rewards/accuracies'])).toEqual([0, 0.5]);
    expect(training.evals).toEqual([{ step: 2, valLoss: 0.65, rewardAccuracy: 1 }]);
    call.answer(trainResult({ steps: 4 }));
    await resuming;
  });
});
