/**
 * Evaluate scores an adapter on the rows it held out when it was trained, with the real engine (stories260K
 * on wasm) behind the worker's host: trained with split A, then the dataset's split changed to B, it is
 * still scored on A's held-out rows — just after training, chosen again from the library, and as a paused
 * run — and the result and the library say so. The held-out rows are refused, in words that say what to do,
 * for another dataset, an imported adapter and one saved before adapters kept their split; every row of the
 * open dataset can still be evaluated, and is labelled as such. `webtune eval` on the same adapter's zip,
 * with no split flags, scores the same rows with the same numbers.
 */
import 'fake-indexeddb/auto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mappingFromColumns } from '../src/data';
import type { EvalReport } from '../src/data/evaluate';
import { getAdapter, listAdapters, saveAdapter } from '../src/store/adapters';
import { evaluatedRows, evaluationLine } from '../src/ui/state/evaluation-summary';
import type {
  DatasetSettings,
  EvaluateRequest,
  EvaluationResult,
  HeldOutRefusal,
  TrainEvent,
  TrainRequest,
  TrainResult,
} from '../src/worker/protocol';
import { runCli } from './helpers/cli';
import { HostDriver } from './helpers/host';
import { dataFile, modelDir, switchBackend } from './helpers/shared';

const TICKETS = 'tickets-id';
/** Split A: what the adapter is trained with. */
const A: DatasetSettings = {
  mapping: mappingFromColumns('ticket', 'department'),
  useChatTemplate: false,
  maxLength: 192,
  valSplit: 0.25,
  seed: 3,
};
/** Split B: the dataset's settings afterwards — other held-out rows, twice as many, shorter examples. */
const B: DatasetSettings = { ...A, valSplit: 0.5, seed: 11, maxLength: 16 };
const TRAIN: TrainRequest = {
  source: { modelUrl: null, datasetId: TICKETS },
  backend: 'wasm',
  rank: 4,
  alpha: 8,
  dropout: 0,
  targets: ['q_proj', 'v_proj'],
  learningRate: 1e-2,
  epochs: 4,
  batchSize: 4,
  gradAccum: 1,
  warmupSteps: 1,
  seed: A.seed,
  recompute: 'off',
};
const HELD_OUT: EvaluateRequest = { referenceText: null, shots: 3, split: 'validation', datasetId: TICKETS };

let driver: HostDriver;
let tmp = '';
let trained: TrainResult;
/** The prompts of the rows the run's training set held out (split A), and of the dataset's split B. */
let heldOutA: string[] = [];
let heldOutB: string[] = [];

/** The open dataset's validation rows as its training set holds them, by prompt. */
const validationPrompts = () =>
  driver.host.dataset
    .trainingSet(4)
    .validation.map((v) => v.example.prompt)
    .sort();
const promptsOf = (report: EvalReport) => report.results.map((r) => r.prompt).sort();

async function evaluate(request: Partial<EvaluateRequest> = {}): Promise<EvaluationResult | HeldOutRefusal> {
  return driver.send('evaluate', { ...HELD_OUT, ...request });
}

async function evaluated(request: Partial<EvaluateRequest> = {}): Promise<EvaluationResult> {
  const answer = await evaluate(request);
  if ('refused' in answer) throw new Error(`refused: ${answer.refused}`);
  return answer;
}

const keptFor = async (id: string) => (await listAdapters()).find((a) => a.id === id)!.evaluation!;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-evalsplit-'));
  await switchBackend('wasm');
  driver = new HostDriver();
  await driver.send('init', { backend: 'wasm' });
  await driver.loadFixture();
  expect(await driver.openDataset('support-tickets.csv', A)).toMatchObject({ validationExamples: 4 });
  heldOutA = validationPrompts();
  trained = await driver.send('train', TRAIN);
  expect(trained).toMatchObject({ stopped: false, paused: false });
  expect(trained.adapterId).not.toBeNull();
  expect(await driver.send('configureDataset', B)).toMatchObject({ validationExamples: 8 });
  heldOutB = validationPrompts();
}, 300_000);

afterAll(() => {
  driver.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('Evaluate after the split changed', () => {
  it("scores a just-trained adapter on the rows its run held out, not on the dataset's split now", async () => {
    // B holds out other rows: scoring B's would include rows the adapter trained on.
    expect(heldOutB.filter((p) => !heldOutA.includes(p)).length).toBeGreaterThan(0);
    const result = await evaluated();
    expect(result).toMatchObject({
      split: 'validation',
      examples: 4,
      datasetName: 'support-tickets.csv',
      adapter: { id: trained.adapterId },
      warning: null,
    });
    expect(promptsOf(result.base)).toEqual(heldOutA);
    expect(promptsOf(result.tuned)).toEqual(heldOutA);
    // Same rows, same max length (A's 192, not B's 16), the weights the run kept: the run's validation loss.
    expect(Math.abs(result.tuned.loss / trained.valLoss! - 1)).toBeLessThan(1e-4);
    expect(evaluatedRows(result)).toBe('the 4 rows this adapter held out when it was trained');
    // The dataset keeps the person's settings.
    expect(validationPrompts()).toEqual(heldOutB);

    const kept = await keptFor(trained.adapterId!);
    expect(kept).toMatchObject({ split: 'validation', examples: 4, datasetName: 'support-tickets.csv' });
    expect(evaluationLine(kept)).toMatch(
      /^Evaluated on the 4 rows this adapter held out when it was trained: /,
    );
  }, 120_000);

  it('scores it on the same rows when it is chosen again from the library', async () => {
    await driver.send('useAdapter', { id: null });
    await driver.send('useAdapter', { id: trained.adapterId });
    const result = await evaluated();
    expect(result).toMatchObject({ split: 'validation', examples: 4 });
    expect(promptsOf(result.tuned)).toEqual(heldOutA);
  }, 120_000);

  it('gives the numbers webtune eval gives for the downloaded zip, which says its split itself', async () => {
    const zip = path.join(tmp, 'tickets.zip');
    fs.writeFileSync(zip, (await getAdapter(trained.adapterId!))!.zip);
    const page = await evaluated();
    // No columns, format, split, seed or max length: all from the zip.
    const cli = async (...extra: string[]) => {
      const run = await runCli([
        'eval',
        '--model',
        modelDir('stories260K'),
        '--adapter',
        zip,
        '--data',
        dataFile('support-tickets.csv'),
        '--backend',
        'wasm',
        '--json',
        ...extra,
      ]);
      expect(run.status, run.stderr).toBe(0);
      expect(run.stderr).toMatch(
        /tickets\.zip says how its run split support-tickets\.csv: --val-split 0\.25 --seed 3 --max-length 192/,
      );
      return JSON.parse(run.stdout) as EvalReport & { split: string };
    };
    const same = (mine: EvalReport, theirs: EvalReport) => {
      expect(Number.isFinite(mine.loss)).toBe(true);
      expect(mine.results).toEqual(theirs.results);
      expect(mine.exact_match).toBe(theirs.exact_match);
      expect(mine.token_accuracy).toBeCloseTo(theirs.token_accuracy, 10);
      expect(Math.abs(mine.loss / theirs.loss - 1)).toBeLessThan(1e-5);
    };
    const tuned = await cli();
    expect(tuned).toMatchObject({ split: 'validation', examples: 4 });
    same(page.tuned, tuned);
    same(page.fewShot, await cli('--few-shot', '3'));
  }, 120_000);

  it('refuses the held-out rows of another dataset, saying which, and evaluates all rows when asked', async () => {
    expect(await evaluate({ datasetId: 'another-copy' })).toEqual({
      refused:
        'The open support-tickets.csv is not the file this adapter was trained on: its rows differ. ' +
        'Open the copy it was trained on (under "Your datasets on this device" in step 2) to evaluate it on the rows it held out, ' +
        'or evaluate it on all rows of support-tickets.csv.',
    });
    await driver.openDataset('best-friends.csv', { ...A, mapping: null, valSplit: 0.1 });
    expect(await evaluate({ datasetId: 'friends-id' })).toEqual({
      refused:
        'This adapter was trained on support-tickets.csv, not on the open dataset (best-friends.csv), so the rows it held out are not here. ' +
        'Open support-tickets.csv (under "Your datasets on this device" in step 2) to evaluate it on them, or evaluate it on all rows of best-friends.csv.',
    });

    await driver.openDataset('support-tickets.csv', B);
    const all = await evaluated({ split: 'all', datasetId: 'another-copy' });
    expect(all).toMatchObject({ split: 'all', examples: 16, datasetName: 'support-tickets.csv' });
    expect(promptsOf(all.base)).toEqual([...heldOutB, ...trainPrompts()].sort());
    expect(evaluatedRows(all)).toBe(
      'all 16 rows of support-tickets.csv (not held out: the adapter may have been trained on them)',
    );
    const kept = await keptFor(trained.adapterId!);
    expect(kept).toMatchObject({ split: 'all', examples: 16 });
    expect(evaluationLine(kept)).toMatch(
      /^Evaluated on all 16 rows of support-tickets\.csv \(not held out: the adapter may have been trained on them\): /,
    );
  }, 120_000);

  it('refuses the held-out rows of an imported adapter and of one saved before adapters kept their split', async () => {
    const record = (await getAdapter(trained.adapterId!))!;
    const imported = await driver.send('importAdapter', { bytes: record.zip, fileName: 'tickets.zip' });
    await driver.send('useAdapter', { id: imported.id });
    expect(await evaluate()).toEqual({
      refused: expect.stringMatching(
        /^This adapter was imported, so this device does not know which rows it held out when it was trained\. You can evaluate it on all rows of support-tickets\.csv instead, but/,
      ),
    });

    const { id: _id, createdAt: _createdAt, split, ...rest } = record;
    expect(split).toMatchObject({ valSplit: 0.25, seed: 3, maxLength: 192, useChatTemplate: false });
    const older = await saveAdapter({ ...rest, name: 'older' });
    await driver.send('useAdapter', { id: older.id });
    expect(await evaluate()).toEqual({
      refused: expect.stringMatching(
        /^This adapter was saved before webtune kept which rows a run holds out, so they cannot be told apart from the rows it was trained on\. /,
      ),
    });
    expect((await evaluated({ split: 'all' })).examples).toBe(16);
  }, 120_000);

  it("scores a paused run's adapter on the rows its run held out", async () => {
    const C = { ...A, seed: 5 };
    await driver.send('configureDataset', C);
    const heldOutC = validationPrompts();
    expect(heldOutC).not.toEqual(heldOutA);
    const run = driver.send('train', { ...TRAIN, seed: C.seed }, (event) => {
      if ((event as TrainEvent).kind === 'step') void driver.send('pauseTraining', {});
    });
    expect(await run).toMatchObject({ paused: true });
    await driver.send('configureDataset', B);
    const result = await evaluated();
    expect(result).toMatchObject({ split: 'validation', examples: 4, adapter: { id: null } });
    expect(promptsOf(result.tuned)).toEqual(heldOutC);
    expect(result.warning).toMatch(
      /^These figures are not kept: the run in progress is not in the adapter library/,
    );
    await driver.send('stopTraining', {});
  }, 120_000);
});

/** The open dataset's training rows, by prompt. */
function trainPrompts(): string[] {
  return driver.host.dataset.trainingSet(4).train.map((t) => t.example.prompt);
}
