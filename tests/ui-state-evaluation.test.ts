// The Evaluate step's state over a scripted engine worker: a run sends the reference text, the few-shot
// count and the open dataset's stored id (the worker checks the adapter was trained on it), shows its
// progress in words and as a share, turns the result into the table's rows (best column marked, label and
// general-text rows only where they apply), says which rows were evaluated, refreshes the library that
// keeps the figures, and a failure, a cancel or a refusal of the held-out rows becomes the words shown —
// a refusal with the offer to evaluate every row, which is then never called held-out.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { EvalReport } from '../src/data/evaluate';
import type { EvaluationResult } from '../src/worker/protocol';
import { DEFAULT_REFERENCE_TEXT, figureRows, SHOTS } from '../src/ui/state/evaluation.svelte';
import { evaluationLine } from '../src/ui/state/evaluation-summary';
import { newAdapter, pageWithModel, prepared, until } from './helpers/ui-state';

const report = (exact: number, tokens: number, loss: number, labels: number | null = null): EvalReport => ({
  examples: 4,
  exact_match: exact,
  token_accuracy: tokens,
  loss,
  perplexity: Math.exp(loss),
  classification: labels === null ? null : { labels: ['billing', 'tech'], accuracy: labels, confusion: {} },
  results: [],
});

const result = (overrides: Partial<EvaluationResult> = {}): EvaluationResult => ({
  split: 'validation',
  examples: 4,
  datasetName: 'qa.csv',
  shots: SHOTS,
  adapter: { id: 'a1', name: 'tickets' },
  base: report(0, 0.4, 2.5),
  fewShot: report(0.25, 0.5, 2.1),
  tuned: report(0.75, 0.8, 0.9),
  forgetting: { tokens: 60, base_perplexity: 12.5, adapted_perplexity: 13.3 },
  warning: null,
  ...overrides,
});

afterEach(() => vi.unstubAllGlobals());

describe('an evaluation run', () => {
  it('sends the reference text and shots, and says how far it is in words and as a share', async () => {
    const { evaluation, double } = await pageWithModel();
    double.hold('evaluate');
    evaluation.referenceText = '  The museum opens at ten.  ';
    const run = evaluation.run();
    const call = await double.next('evaluate');
    expect(call.params).toEqual({
      referenceText: 'The museum opens at ten.',
      shots: 3,
      split: 'validation',
      datasetId: null,
    });
    expect(evaluation.running).toBe(true);
    expect(evaluation.progressText).toBe('Starting…');
    expect(evaluation.fraction).toBe(0);

    call.emit({ stage: 'base', done: 2, total: 4 });
    expect(evaluation.progressText).toBe('Base model: 2 of 4 answers');
    expect(evaluation.fraction).toBeCloseTo(0.5 / 4);
    call.emit({ stage: 'tuned', done: 3, total: 4 });
    expect(evaluation.progressText).toBe('Fine-tuned: 3 of 4 answers');
    expect(evaluation.fraction).toBeCloseTo(2.75 / 4);
    call.emit({ stage: 'reference', done: 1, total: 2 });
    expect(evaluation.progressText).toBe('General text: 1 of 2 passes');

    call.answer(result());
    await run;
    expect(evaluation.running).toBe(false);
    expect(evaluation.progress).toBeNull();
    expect(evaluation.result).toEqual(result());
    expect(evaluation.rows.map((r) => r.name)).toEqual([
      'Exact match',
      'Token accuracy',
      'Held-out loss',
      'General-text perplexity',
    ]);
    expect(evaluation.evaluatedText).toBe(
      'Evaluated on the 4 rows this adapter held out when it was trained',
    );
  });

  it("sends the open dataset's stored id, so the worker can check the adapter was trained on it", async () => {
    const { evaluation, double, dataset } = await pageWithModel();
    double.handle('openDataset', () => prepared());
    await dataset.open(new File(['question,answer\nWhat is 2+2?,4\n'], 'qa.csv', { type: 'text/csv' }));
    expect(dataset.id).toEqual(expect.any(String));
    double.handle('evaluate', () => result());
    await evaluation.run();
    expect(double.sent('evaluate')).toEqual([
      { referenceText: expect.any(String), shots: SHOTS, split: 'validation', datasetId: dataset.id },
    ]);
  });

  it('shows why the held-out rows were refused, and evaluates every row when asked, never calling them held-out', async () => {
    const { evaluation, double, adapters, store } = await pageWithModel();
    const saved = await store.saveAdapter(newAdapter('tickets'));
    await adapters.refresh();
    const refused =
      'This adapter was trained on tickets.csv, not on the open dataset (qa.csv), so the rows it held out are not here.';
    double.handle('evaluate', ({ split }) => (split === 'validation' ? { refused } : undefined));
    await evaluation.run();
    expect(evaluation.refusal).toBe(refused);
    expect(evaluation.error).toBeNull();
    expect(evaluation.result).toBeNull();
    expect(evaluation.running).toBe(false);

    double.hold('evaluate');
    const all = evaluation.run('all');
    const call = await double.next('evaluate');
    expect(call.params).toMatchObject({ split: 'all', datasetId: null });
    expect(evaluation.refusal).toBeNull();
    const r = result({ split: 'all', examples: 40, adapter: { id: saved.id, name: 'tickets' } });
    await store.saveEvaluation(saved.id, {
      evaluatedAt: 5000,
      split: 'all',
      examples: 40,
      datasetName: 'qa.csv',
      shots: SHOTS,
      base: { exact_match: 0, token_accuracy: 0.4, label_accuracy: null, loss: 2.5 },
      fewShot: { exact_match: 0.25, token_accuracy: 0.5, label_accuracy: null, loss: 2.1 },
      tuned: { exact_match: 0.75, token_accuracy: 0.8, label_accuracy: null, loss: 0.9 },
      forgetting: null,
    });
    call.answer(r);
    await all;
    expect(evaluation.evaluatedText).toBe(
      'Evaluated on all 40 rows of qa.csv (not held out: the adapter may have been trained on them)',
    );
    expect(evaluation.rows.map((row) => row.name)).toEqual([
      'Exact match',
      'Token accuracy',
      'Loss',
      'General-text perplexity',
    ]);
    await until(() => adapters.list[0]?.evaluation !== undefined, 'the library to show the evaluation');
    expect(evaluationLine(adapters.list[0].evaluation!)).toBe(
      'Evaluated on all 40 rows of qa.csv (not held out: the adapter may have been trained on them): exact match 75% (base 0%, 3-shot 25%), token accuracy 80%',
    );
  });

  it('skips the general text when the box is empty', async () => {
    const { evaluation, double } = await pageWithModel();
    double.handle('evaluate', () => result({ forgetting: null }));
    expect(evaluation.referenceText).toBe(DEFAULT_REFERENCE_TEXT);
    evaluation.referenceText = '   ';
    await evaluation.run();
    expect(double.sent('evaluate')[0].referenceText).toBeNull();
    expect(evaluation.rows.map((r) => r.name)).not.toContain('General-text perplexity');
  });

  it('refreshes the library, which now shows the figures kept with the adapter', async () => {
    const { evaluation, double, adapters, store } = await pageWithModel();
    const saved = await store.saveAdapter(newAdapter('tickets'));
    await adapters.refresh();
    expect(adapters.list[0].evaluation).toBeUndefined();
    double.handle('evaluate', async () => {
      // The worker keeps the figures (not the answers) with the adapter before it answers.
      const r = result({ adapter: { id: saved.id, name: 'tickets' } });
      const scores = (x: EvalReport) => ({
        exact_match: x.exact_match,
        token_accuracy: x.token_accuracy,
        label_accuracy: x.classification?.accuracy ?? null,
        loss: x.loss,
      });
      await store.saveEvaluation(saved.id, {
        evaluatedAt: 5000,
        split: r.split,
        examples: r.examples,
        datasetName: r.datasetName,
        shots: r.shots,
        base: scores(r.base),
        fewShot: scores(r.fewShot),
        tuned: scores(r.tuned),
        forgetting: r.forgetting,
      });
      return r;
    });
    await evaluation.run();
    await until(() => adapters.list[0]?.evaluation !== undefined, 'the library to show the evaluation');
    expect(evaluationLine(adapters.list[0].evaluation!)).toBe(
      'Evaluated on the 4 rows this adapter held out when it was trained: exact match 75% (base 0%, 3-shot 25%), token accuracy 80%, general-text perplexity 13.3 (base 12.5)',
    );
  });

  it("shows the worker's words when it fails, and keeps the last result", async () => {
    const { evaluation, double } = await pageWithModel();
    double.handle('evaluate', () => result());
    await evaluation.run();
    const message = 'There is no fine-tuned adapter yet. Train one, or choose one in the adapter library.';
    double.handle('evaluate', () => {
      throw new Error(message);
    });
    await evaluation.run();
    expect(evaluation.error).toBe(message);
    expect(evaluation.running).toBe(false);
    expect(evaluation.progress).toBeNull();
    expect(evaluation.result).toEqual(result());
  });

  it('cancel asks the worker to stop; the run ends with its words', async () => {
    const { evaluation, double } = await pageWithModel();
    double.hold('evaluate');
    const run = evaluation.run();
    const call = await double.next('evaluate');
    call.emit({ stage: 'fewshot', done: 1, total: 4 });
    double.handle('cancelEvaluation', () => {
      call.fail('The evaluation was cancelled.');
      return true;
    });
    evaluation.cancel();
    await run;
    expect(double.sent('cancelEvaluation')).toHaveLength(1);
    expect(evaluation.error).toBe('The evaluation was cancelled.');
    expect(evaluation.running).toBe(false);
  });

  it('runs one evaluation at a time', async () => {
    const { evaluation, double } = await pageWithModel();
    double.hold('evaluate');
    const run = evaluation.run();
    const call = await double.next('evaluate');
    await evaluation.run();
    expect(double.sent('evaluate')).toHaveLength(1);
    call.answer(result());
    await run;
  });
});

describe('the table', () => {
  it('words each figure and marks the column that did best (highest, or lowest for loss)', () => {
    const [exact, tokens, loss, perplexity] = figureRows(result());
    expect(exact.cells).toEqual({ base: '0%', fewShot: '25%', tuned: '75%' });
    expect(exact.best).toBe('tuned');
    expect(tokens.best).toBe('tuned');
    expect(loss.cells).toEqual({ base: '2.50', fewShot: '2.10', tuned: '0.90' });
    expect(loss.best).toBe('tuned');
    // The few-shot column is the base model itself: no general-text figure of its own.
    expect(perplexity.cells).toEqual({ base: '12.50', fewShot: null, tuned: '13.30' });
    expect(perplexity.best).toBe('base');
  });

  it('adds label accuracy for label datasets, and marks no column on a tie', () => {
    const rows = figureRows(
      result({
        base: report(0.5, 0.4, 2.5, 0.5),
        fewShot: report(0.5, 0.5, 2.1, 0.5),
        tuned: report(0.5, 0.8, 0.9, 1),
      }),
    );
    expect(rows.map((r) => r.name)).toContain('Label accuracy');
    expect(rows.find((r) => r.name === 'Label accuracy')?.cells.tuned).toBe('100%');
    expect(rows.find((r) => r.name === 'Exact match')?.best).toBeNull();
  });

  it('shows a figure that could not be computed as a dash, and leaves it out of the comparison', () => {
    const [, , loss] = figureRows(result({ tuned: report(0.75, 0.8, NaN) }));
    expect(loss.cells.tuned).toBe('–');
    expect(loss.best).toBe('fewShot');
  });
});
