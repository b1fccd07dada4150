/**
 * The worker's Evaluate step against `webtune eval`: the same adapter zip (trained by the CLI) and the
 * same data give the same numbers in both — base model, base + 3 examples and fine-tuned, and the
 * reference text's perplexity with and without the adapter — because both build their items with one
 * function and score them with one engine (wasm here, as the CLI runs). An imported adapter's held-out
 * rows are refused (this device does not know its dataset), so these are every row, as `--split all`;
 * worker-evaluate-split.test.ts compares the held-out rows of an adapter trained on the page.
 */
import 'fake-indexeddb/auto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mappingFromColumns } from '../src/data';
import type { EvalReport } from '../src/data/evaluate';
import { disposeModel } from '../src/engine/model';
import { AdapterSlot } from '../src/worker/adapter-slot';
import { DatasetSession } from '../src/worker/dataset-session';
import { EvaluationSession } from '../src/worker/evaluation';
import { listAdapters } from '../src/store/adapters';
import { importAdapter, useSavedAdapter } from '../src/worker/library';
import type { EvalProgress, EvaluateRequest, EvaluationResult } from '../src/worker/protocol';
import { dataFile, loadFixture, modelDir, switchBackend } from './helpers/shared';

const ROOT = path.resolve(__dirname, '..');
const STORIES = modelDir('stories260K');
const TICKETS = dataFile('support-tickets.csv');
const COLUMNS = ['--prompt-column', 'ticket', '--completion-column', 'department'];
const SPLIT = ['--val-split', '0.25', '--seed', '3'];
const REFERENCE =
  'Once upon a time, there was a little girl named Lily. She liked to play in the park with her dog.';
const ALL_ROWS: EvaluateRequest = { referenceText: REFERENCE, shots: 3, split: 'all', datasetId: null };

type CliReport = EvalReport & { split: string; forgetting: EvaluationResult['forgetting'] };

function webtune(...args: string[]): string {
  const run = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'webtune.mjs'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 240_000,
  });
  expect(run.status, run.stderr).toBe(0);
  return run.stdout;
}

/** Same examples, same answers, same scores (up to float summation order). */
function expectSameReport(page: EvalReport, cli: EvalReport): void {
  expect(page.examples).toBe(cli.examples);
  expect(page.results).toEqual(cli.results);
  expect(page.exact_match).toBe(cli.exact_match);
  expect(page.classification).toEqual(cli.classification);
  expect(page.token_accuracy).toBeCloseTo(cli.token_accuracy, 10);
  expect(Math.abs(page.loss / cli.loss - 1)).toBeLessThan(1e-5);
}

describe('Evaluate in the worker', () => {
  const loaded = loadFixture('stories260K');
  const slot = new AdapterSlot();
  const dataset = new DatasetSession();
  const evaluation = new EvaluationSession(slot, dataset);
  let tmp = '';
  let zip = '';
  let result: EvaluationResult;
  let refusal: unknown;
  let adapterId = '';
  const progress: EvalProgress[] = [];

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-worker-eval-'));
    zip = path.join(tmp, 'tickets.zip');
    webtune(
      'train',
      '--model',
      STORIES,
      '--data',
      TICKETS,
      ...COLUMNS,
      ...SPLIT,
      '--epochs',
      '20',
      '--lr',
      '0.01',
      '--backend',
      'wasm',
      '--out',
      zip,
    );

    await switchBackend('wasm');
    dataset.useModel(loaded);
    const prepared = dataset.open({
      bytes: new Uint8Array(fs.readFileSync(TICKETS)),
      fileName: 'support-tickets.csv',
      settings: {
        mapping: mappingFromColumns('ticket', 'department'),
        useChatTemplate: false,
        maxLength: 256,
        valSplit: 0.25,
        seed: 3,
      },
    });
    expect(prepared.validationExamples).toBe(4);
    const summary = await importAdapter(loaded, new Uint8Array(fs.readFileSync(zip)), 'tickets.zip');
    adapterId = summary.id;
    await useSavedAdapter(loaded, slot, summary.id);
    refusal = await evaluation.evaluate(loaded, { ...ALL_ROWS, split: 'validation' }, () => {});
    const answer = await evaluation.evaluate(loaded, ALL_ROWS, (p) => progress.push(p));
    if ('refused' in answer) throw new Error(answer.refused);
    result = answer;
  }, 400_000);

  afterAll(() => {
    slot.clear(loaded.model);
    disposeModel(loaded.model);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('refuses the held-out rows of an imported adapter, saying why and what it can do instead', () => {
    expect(refusal).toEqual({
      refused:
        'This adapter was imported, so this device does not know which rows it held out when it was trained. ' +
        'You can evaluate it on all rows of support-tickets.csv instead, but it may have been trained on some of them, which makes its figures look better than they are.',
    });
  });

  it('gives the numbers webtune eval gives for the same adapter and data: base, base + 3 examples, fine-tuned', () => {
    expect(result).toMatchObject({
      split: 'all',
      examples: 16,
      shots: 3,
      datasetName: 'support-tickets.csv',
    });
    const eval_ = (...extra: string[]) =>
      JSON.parse(
        webtune(
          'eval',
          '--model',
          STORIES,
          '--data',
          TICKETS,
          ...COLUMNS,
          ...SPLIT,
          '--split',
          'all',
          '--backend',
          'wasm',
          '--json',
          ...extra,
        ),
      ) as CliReport;
    const reference = path.join(tmp, 'reference.txt');
    fs.writeFileSync(reference, REFERENCE);
    const tuned = eval_('--adapter', zip, '--reference-text', reference);
    expectSameReport(result.tuned, tuned);
    expectSameReport(result.base, eval_());
    expectSameReport(result.fewShot, eval_('--adapter', zip, '--few-shot', '3'));
    // Three different measurements, not one three times.
    expect(result.tuned.token_accuracy).toBeGreaterThan(result.base.token_accuracy);
    expect(result.fewShot.results[0].prompt).not.toBe(result.base.results[0].prompt);
    expect(result.forgetting!.tokens).toBe(tuned.forgetting!.tokens);
    expect(Math.abs(result.forgetting!.base_perplexity / tuned.forgetting!.base_perplexity - 1)).toBeLessThan(
      1e-5,
    );
    expect(
      Math.abs(result.forgetting!.adapted_perplexity / tuned.forgetting!.adapted_perplexity! - 1),
    ).toBeLessThan(1e-5);
  }, 400_000);

  it('reports progress for each of the three, and leaves the adapter on for the chat', () => {
    for (const stage of ['base', 'fewshot', 'tuned'] as const)
      expect(progress.filter((p) => p.stage === stage).at(-1)).toEqual({ stage, done: 16, total: 16 });
    expect(slot.adapter!.enabled).toBe(true);
  });

  it('keeps the figures with the library adapter it evaluated', async () => {
    expect(result.warning).toBeNull();
    const kept = (await listAdapters()).find((a) => a.id === adapterId)!.evaluation!;
    expect(kept).toMatchObject({
      split: 'all',
      examples: 16,
      datasetName: 'support-tickets.csv',
      shots: 3,
      forgetting: result.forgetting,
    });
    expect(kept.tuned).toEqual({
      exact_match: result.tuned.exact_match,
      token_accuracy: result.tuned.token_accuracy,
      label_accuracy: result.tuned.classification!.accuracy,
      loss: result.tuned.loss,
    });
    expect(kept.base.loss).toBe(result.base.loss);
    expect(kept.fewShot.label_accuracy).toBe(result.fewShot.classification!.accuracy);
  });

  it('stops when cancelled, and says so', async () => {
    const running = evaluation.evaluate(loaded, { ...ALL_ROWS, referenceText: null }, (p) => {
      if (p.done === 1) evaluation.cancel();
    });
    await expect(running).rejects.toThrow(/cancelled/);
    expect(evaluation.busy).toBe(false);
    expect(slot.adapter!.enabled).toBe(true);
  }, 120_000);
});
