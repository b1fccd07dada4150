/**
 * `webtune train` and `eval` on documents: repeatable --data, the first line that says what the documents
 * became, a run on notes.md that lowers the held-out windows' perplexity, and that perplexity computed again
 * by the project's PyTorch reference from the per-token log-probs of the same windows (the set-up stage
 * installs PyTorch).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDataset } from '../src/cli/dataset-args';
import { detectLayout } from '../src/data';
import type { TextMapping } from '../src/data/documents';
import { evaluationWindows } from '../src/data/evaluate-documents';
import { failure, jsonResult, runCli } from './helpers/cli';
import { referenceScore, unzipToTemp } from './helpers/reference';
import { loadTokenizer } from './fixtures/data/shared';
import { dataFile, modelDir } from './helpers/shared';

const STORIES = modelDir('stories260K');
const NOTES = dataFile('notes.md');
const STORY = dataFile('garden-story.txt');
const RUN = ['--max-length', '64', '--overlap', '16', '--val-split', '0.2', '--seed', '5'];

interface DocumentReport {
  split: string;
  windows: number;
  tokens: number;
  base_perplexity: number;
  adapted_perplexity: number | null;
}

let tmp = '';
let adapter = '';
let trainLog = '';

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-documents-'));
  adapter = path.join(tmp, 'notes.zip');
  const run = await runCli([
    'train',
    ...['--model', STORIES, '--data', NOTES, '--data', STORY, '--out', adapter],
    ...RUN,
    ...['--epochs', '3', '--lr', '0.01', '--batch-size', '4'],
  ]);
  expect(run.status, run.stderr).toBe(0);
  trainLog = run.stderr;
}, 300_000);

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('webtune train on documents', () => {
  it('takes --data twice and says first what the documents became', () => {
    const first = trainLog.split('\n')[0];
    const match = /^documents: 2 files, (\d+) windows of ≤64 tokens, (\d+) held out$/.exec(first);
    expect(match, trainLog).not.toBeNull();
    const [windows, heldOut] = [Number(match![1]), Number(match![2])];
    expect(heldOut).toBe(Math.round(windows * 0.2));
    // Each document gives at least its tokens over the targets a window holds.
    const tokenizer = loadTokenizer('stories260K');
    const least = [NOTES, STORY]
      .map((f) => tokenizer.encode(fs.readFileSync(f, 'utf8')).length)
      .reduce((n, tokens) => n + Math.ceil(tokens / 64), 0);
    expect(windows).toBeGreaterThanOrEqual(least);
  });

  it('refuses a table among several --data files, and --overlap on a table of examples', async () => {
    const csv = dataFile('best-friends.csv');
    const mixed = failure(
      await runCli([
        'train',
        '--model',
        STORIES,
        '--data',
        NOTES,
        '--data',
        csv,
        '--out',
        path.join(tmp, 'x.zip'),
      ]),
    );
    expect(mixed).toMatch(/--data is given 2 times.*best-friends\.csv is not one/);
    const overlap = failure(
      await runCli([
        'train',
        '--model',
        STORIES,
        '--data',
        csv,
        '--overlap',
        '8',
        '--out',
        path.join(tmp, 'y.zip'),
      ]),
    );
    expect(overlap).toMatch(/--overlap applies to documents/);
  });
});

describe('webtune eval on documents', () => {
  let report: DocumentReport;
  beforeAll(async () => {
    // The adapter says how its run split the documents: no split flags needed.
    report = jsonResult<DocumentReport>(
      await runCli([
        'eval',
        '--model',
        STORIES,
        '--adapter',
        adapter,
        '--data',
        NOTES,
        '--data',
        STORY,
        '--json',
      ]),
    );
  }, 300_000);

  it('scores the held-out windows, and training on the documents lowered their perplexity', () => {
    expect(report.split).toBe('validation');
    expect(report.windows).toBeGreaterThan(0);
    expect(report.adapted_perplexity).not.toBeNull();
    expect(report.adapted_perplexity!).toBeLessThan(report.base_perplexity * 0.95);
  });

  it('gives the perplexity the PyTorch reference gives the same windows, base and adapted', async () => {
    const tokenizer = loadTokenizer('stories260K');
    const { dataset } = await readDataset([NOTES, STORY]);
    const mapping = { ...(detectLayout(dataset.columns) as TextMapping), overlap: 16 };
    const windows = evaluationWindows(dataset, mapping, tokenizer, {
      maxLength: 64,
      valSplit: 0.2,
      seed: 5,
      split: 'validation',
    });
    expect(windows).toHaveLength(report.windows);
    const adapterDir = unzipToTemp(fs.readFileSync(adapter));
    const perplexity = (withAdapter: boolean) => {
      let nll = 0;
      let tokens = 0;
      for (const w of windows) {
        const { logprobs } = referenceScore(STORIES, w.ids, withAdapter ? adapterDir : undefined);
        // logprobs[i] is the log-prob of ids[i + 1]: only target tokens count.
        logprobs.forEach((lp, i) => {
          if (w.completionMask[i + 1] !== 1) return;
          nll -= lp;
          tokens++;
        });
      }
      expect(tokens).toBe(report.tokens);
      return Math.exp(nll / tokens);
    };
    expect(report.base_perplexity).toBeCloseTo(perplexity(false), 3);
    expect(report.adapted_perplexity!).toBeCloseTo(perplexity(true), 3);
    fs.rmSync(adapterDir, { recursive: true, force: true });
  }, 300_000);
});
