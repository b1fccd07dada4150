// The Evaluate step's state over a scripted engine worker: a run sends the reference text and the few-shot
// count, shows its progress in words and as a share, turns the result into the table's rows (best column
// marked, label and general-text rows only where they apply), refreshes the library that keeps the figures,
// and a failure or a cancel becomes the words shown.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { EvalReport } from '../src/data/evaluate';
import type { EvaluationResult } from '../src/worker/protocol';
import { DEFAULT_REFERENCE_TEXT, figureRows, SHOTS } from '../src/ui/state/evaluation.svelte';
import { evaluationLine } from '../src/ui/state/evaluation-summary';
import { newAdapter, pageWithModel, until } from './helpers/ui-state';

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
    expect(call.params).toEqual({ referenceText: 'The museum opens at ten.', shots: 3 });
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
      'Evaluated on 4 held-out examples: exact match 75% (base 0%, 3-shot 25%), token accuracy 80%, general-text perplexity 13.3 (base 12.5)',
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
