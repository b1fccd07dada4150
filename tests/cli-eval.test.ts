/**
 * `webtune eval` end to end: what it reports is recomputed here from its own per-example results and
 * from independent sources (the CSV read without webtune's parser, `webtune score`'s log-likelihood,
 * `webtune train`'s split), and an adapter trained on the data must beat the base model on it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { infoMetadata, readAdapterInfo, type AdapterInfo } from '../src/formats/adapter-info';
import { readAdapterZip, writeAdapterZip } from '../src/formats/peft';
import { failure, jsonResult, runCli, type CliRun } from './helpers/cli';
import { dataFile, modelDir } from './helpers/shared';

const STORIES = modelDir('stories260K');
const TICKETS = dataFile('support-tickets.csv');
const COLUMNS = ['--prompt-column', 'ticket', '--completion-column', 'department'];
const REFERENCE =
  'Once upon a time, there was a little girl named Lily. She liked to play in the park with her dog.';

interface Report {
  split: string;
  examples: number;
  exact_match: number;
  token_accuracy: number;
  loss: number;
  perplexity: number;
  classification: {
    labels: string[];
    accuracy: number;
    confusion: Record<string, Record<string, number>>;
  } | null;
  forgetting: { tokens: number; base_perplexity: number; adapted_perplexity: number | null } | null;
  results: { prompt: string; expected: string; output: string; exact: boolean }[];
}

let tmp = '';
let adapter = '';

const webtune = (...args: string[]) => runCli(args);

function report(run: CliRun): Report {
  expect(run.status, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as Report;
}

/** The department column of the CSV, read by splitting lines (no quoting in this file). */
const departments = () =>
  fs
    .readFileSync(TICKETS, 'utf8')
    .trim()
    .split(/\r?\n/)
    .slice(1)
    .map((line) => line.split(',').at(-1)!.trim());

describe('webtune eval', () => {
  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-eval-'));
    adapter = path.join(tmp, 'tickets.zip');
    const trained = await webtune(
      'train',
      '--model',
      STORIES,
      '--data',
      TICKETS,
      ...COLUMNS,
      '--epochs',
      '30',
      '--lr',
      '0.01',
      '--val-split',
      '0',
      '--backend',
      'wasm',
      '--out',
      adapter,
    );
    expect(trained.status, trained.stderr).toBe(0);
  }, 300_000);

  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('reports figures that follow from its own results, and the adapter beats the base model on its data', async () => {
    const base = report(
      await webtune(
        'eval',
        '--model',
        STORIES,
        '--data',
        TICKETS,
        ...COLUMNS,
        '--split',
        'all',
        '--backend',
        'wasm',
        '--json',
      ),
    );
    const tuned = report(
      await webtune(
        'eval',
        '--model',
        STORIES,
        '--adapter',
        adapter,
        '--data',
        TICKETS,
        ...COLUMNS,
        '--split',
        'all',
        '--backend',
        'wasm',
        '--json',
      ),
    );
    for (const r of [base, tuned]) {
      expect(r.split).toBe('all');
      expect(r.examples).toBe(departments().length);
      expect(r.results.map((x) => x.expected).sort()).toEqual(departments().sort());
      expect(r.exact_match).toBeCloseTo(
        r.results.filter((x) => x.output === x.expected).length / r.examples,
        12,
      );
      expect(r.results.every((x) => x.exact === (x.output === x.expected))).toBe(true);
      expect(r.perplexity).toBeCloseTo(Math.exp(r.loss), 6);
      // Four departments, each used at least twice: a label dataset.
      expect(r.classification!.labels).toEqual([...new Set(departments())].sort());
      const startsRight = r.results.filter((x) => x.output.startsWith(x.expected)).length;
      expect(r.classification!.accuracy).toBeCloseTo(startsRight / r.examples, 12);
      const counted = Object.values(r.classification!.confusion)
        .flatMap((row) => Object.values(row))
        .reduce((a, b) => a + b, 0);
      expect(counted).toBe(r.examples);
    }
    expect(tuned.token_accuracy).toBeGreaterThan(base.token_accuracy + 0.3);
    expect(tuned.loss).toBeLessThan(base.loss / 2);
    expect(tuned.classification!.accuracy).toBeGreaterThan(base.classification!.accuracy);
  }, 300_000);

  it("evaluates the validation split train sets aside: by default, the one an adapter's zip says its run used", async () => {
    const trained = await webtune(
      'train',
      '--model',
      STORIES,
      '--data',
      TICKETS,
      ...COLUMNS,
      '--epochs',
      '1',
      '--val-split',
      '0.25',
      '--seed',
      '3',
      '--backend',
      'wasm',
      '--out',
      path.join(tmp, 'split.zip'),
    );
    const held = Number(/\((\d+) train, (\d+) validation\)/.exec(trained.stderr)![2]);
    const r = report(
      await webtune(
        'eval',
        '--model',
        STORIES,
        '--data',
        TICKETS,
        ...COLUMNS,
        '--val-split',
        '0.25',
        '--seed',
        '3',
        '--backend',
        'wasm',
        '--json',
      ),
    );
    expect(r.split).toBe('validation');
    expect(r.examples).toBe(held);

    // No columns, format, split or seed: the zip says how its run split the data, so its held-out rows.
    const own = await webtune(
      'eval',
      '--model',
      STORIES,
      '--adapter',
      path.join(tmp, 'split.zip'),
      '--data',
      TICKETS,
      '--backend',
      'wasm',
      '--json',
    );
    expect(own.stderr).toMatch(
      /split\.zip says how its run split support-tickets\.csv: --val-split 0\.25 --seed 3 --max-length 256, its columns and format/,
    );
    const mine = report(own);
    expect(mine).toMatchObject({ split: 'validation', examples: held });
    expect(mine.results.map((x) => x.prompt)).toEqual(r.results.map((x) => x.prompt));
  }, 300_000);

  it('says when an adapter held no rows out, and when its zip does not say which it held out', async () => {
    const base = ['eval', '--model', STORIES, '--data', TICKETS, '--backend', 'wasm'];
    // tickets.zip was trained with --val-split 0.
    expect(failure(await webtune(...base, '--adapter', adapter))).toBe(
      'webtune eval: tickets.zip was trained on every row (no validation split), so it held none out; use --split all to evaluate on every row.',
    );
    // As zips written before webtune kept the split: the run's details without it.
    const weights = readAdapterZip(new Uint8Array(fs.readFileSync(adapter)));
    const { split: _split, ...older } = readAdapterInfo(weights.metadata)!;
    const olderZip = path.join(tmp, 'older.zip');
    fs.writeFileSync(olderZip, writeAdapterZip({ ...weights, metadata: infoMetadata(older as AdapterInfo) }));
    const run = await webtune(...base, ...COLUMNS, '--adapter', olderZip, '--json');
    expect(run.stderr).toMatch(
      /note: older\.zip does not say which rows its run held out, so this is --val-split 0\.1 --seed 0; pass the ones it was trained with/,
    );
    expect(report(run)).toMatchObject({ split: 'validation', examples: 2 });
  }, 300_000);

  it("gives a reference text's perplexity as webtune score does, with and without the adapter", async () => {
    const text = path.join(tmp, 'reference.txt');
    fs.writeFileSync(text, REFERENCE);
    const r = report(
      await webtune(
        'eval',
        '--model',
        STORIES,
        '--adapter',
        adapter,
        '--data',
        TICKETS,
        ...COLUMNS,
        '--split',
        'all',
        '--reference-text',
        text,
        '--backend',
        'wasm',
        '--json',
      ),
    );
    const score = async (...extra: string[]) =>
      jsonResult<{ nll: number; logprobs: number[] }>(
        await webtune(
          'score',
          '--model',
          STORIES,
          '--text',
          REFERENCE,
          '--backend',
          'wasm',
          '--json',
          ...extra,
        ),
      );
    const base = await score();
    const adapted = await score('--adapter', adapter);
    expect(r.forgetting!.tokens).toBe(base.logprobs.length);
    expect(Math.abs(r.forgetting!.base_perplexity / Math.exp(base.nll) - 1)).toBeLessThan(1e-4);
    expect(Math.abs(r.forgetting!.adapted_perplexity! / Math.exp(adapted.nll) - 1)).toBeLessThan(1e-4);
  }, 300_000);

  it('puts K training examples before each prompt with --few-shot K', async () => {
    const r = report(
      await webtune(
        'eval',
        '--model',
        STORIES,
        '--data',
        TICKETS,
        ...COLUMNS,
        '--few-shot',
        '3',
        '--val-split',
        '0.25',
        '--backend',
        'wasm',
        '--json',
      ),
    );
    const train = new Set(fs.readFileSync(TICKETS, 'utf8').trim().split(/\r?\n/).slice(1));
    for (const x of r.results) {
      // Plain text: "ticket\ndepartment" per shot, a blank line between, then the prompt itself.
      const parts = x.prompt.split('\n\n');
      expect(parts).toHaveLength(4);
      for (const shot of parts.slice(0, 3)) expect(train.has(shot.replace('\n', ','))).toBe(true);
    }
  }, 300_000);

  it('scores the written adapter at the validation loss train reports for it: the best one, with early stopping', async () => {
    const out = path.join(tmp, 'best.zip');
    const friends = dataFile('best-friends.csv');
    const split = ['--val-split', '0.3', '--seed', '4'];
    const trained = await webtune(
      'train',
      '--model',
      STORIES,
      '--data',
      friends,
      '--epochs',
      '12',
      '--lr',
      '0.03',
      ...split,
      '--eval-every',
      '2',
      '--patience',
      '2',
      '--backend',
      'wasm',
      '--out',
      out,
      '--json',
    );
    const result = JSON.parse(trained.stdout) as {
      steps: number;
      val_loss: number;
      best_step: number;
      kept: string;
      early_stopped: boolean;
    };
    const evals = [...trained.stderr.matchAll(/^step (\d+) \(epoch \d+\): validation loss ([\d.]+)/gm)].map(
      (m) => ({ step: Number(m[1]), loss: Number(m[2]) }),
    );
    const lowest = evals.reduce((a, b) => (b.loss < a.loss ? b : a));
    expect(result).toMatchObject({ kept: 'best', early_stopped: true, best_step: lowest.step });
    expect(result.steps).toBe(evals.at(-1)!.step);
    expect(result.val_loss).toBeCloseTo(lowest.loss, 4);
    const r = report(
      await webtune(
        'eval',
        '--model',
        STORIES,
        '--adapter',
        out,
        '--data',
        friends,
        ...split,
        '--backend',
        'wasm',
        '--json',
      ),
    );
    expect(Math.abs(r.loss - result.val_loss) / result.val_loss).toBeLessThan(1e-4);
    expect(
      failure(await webtune('train', '--model', STORIES, '--data', friends, '--keep', 'first', '--out', out)),
    ).toMatch(/--keep must be best or last/);
  }, 300_000);

  it('says what is wrong with bad options, in one line', async () => {
    const base = ['eval', '--model', STORIES, '--data', TICKETS, ...COLUMNS, '--backend', 'wasm'];
    expect(failure(await webtune(...base, '--split', 'test'))).toMatch(/--split must be validation or all/);
    expect(failure(await webtune(...base, '--val-split', '0'))).toMatch(
      /leaves no validation examples; use --split all/,
    );
    expect(failure(await webtune(...base, '--few-shot', '16'))).toMatch(
      /--few-shot 16 needs that many training examples; the split has 14/,
    );
    expect(failure(await webtune(...base, '--reference-text', path.join(tmp, 'missing.txt')))).toMatch(
      /Reference text not found/,
    );
  }, 300_000);
});
