// `webtune train` on the files of issue 10 (findings 3 and 4), as a person runs it: a sparse JSON Lines file
// whose rows each bring their own field names, and cells of megabytes. Each is trained on or refused in
// seconds, a refusal being one line that names the limit and the place.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { failure, runCli } from './helpers/cli';
import { modelDir } from './helpers/shared';

const STORIES = modelDir('stories260K');

let tmp = '';
const tmpFile = (name: string) => path.join(tmp, name);

async function train(data: string, ...extra: string[]) {
  const started = performance.now();
  const run = await runCli([
    'train',
    '--model',
    STORIES,
    '--data',
    data,
    '--out',
    tmpFile('out.zip'),
    '--epochs',
    '1',
    '--backend',
    'cpu',
    '--json',
    ...extra,
  ]);
  return { ...run, seconds: (performance.now() - started) / 1000 };
}

const jsonl = (rows: object[]) => rows.map((r) => JSON.stringify(r)).join('\n');

describe('webtune train on files that used to exhaust memory', () => {
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-cli-limits-'));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('refuses 10,000 rows that each bring their own field names, in seconds, naming the 1,000-column limit', async () => {
    // The file: 10,000 rows of their own keys (about 119 KB) ran the CLI out of memory.
    const file = tmpFile('own-keys.jsonl');
    fs.writeFileSync(file, jsonl(Array.from({ length: 10_000 }, (_, i) => ({ [`k${i}`]: 'v' }))));
    expect(fs.statSync(file).size).toBeLessThan(140_000);
    const run = await train(file);
    expect(failure(run)).toMatch(
      /^webtune train: Line 1001 adds the column 'k1000', more than 1,000 different column names in all; webtune reads at most 1,000\. Give every row the same few fields/,
    );
    // The old reader needed minutes and gigabytes here.
    expect(run.seconds).toBeLessThan(30);
  });

  it('trains on a sparse file under the limit: missing fields read as empty', async () => {
    const file = tmpFile('sparse.jsonl');
    fs.writeFileSync(
      file,
      jsonl(
        Array.from({ length: 40 }, (_, i) => ({
          prompt: `Who is friend ${i}?`,
          completion: `Friend ${i} is Tom.`,
          [`note_${i}`]: 'x',
        })),
      ),
    );
    const run = await train(file, '--max-length', '32', '--val-split', '0');
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/^40 examples \(40 train, 0 validation\)/m);
  });

  it('refuses a CSV with a 20 MB cell in seconds, naming the row and the column', async () => {
    const file = tmpFile('big-cell.csv');
    const big = 'All work and no play makes Jack a dull boy. '
      .repeat(Math.ceil((20 * 1024 * 1024) / 44))
      .slice(0, 20 * 1024 * 1024);
    fs.writeFileSync(
      file,
      `question,answer\nWho is Tom?,Tom is my best friend.\nWhat did Jack write?,"${big}"\n`,
    );
    const run = await train(file);
    expect(failure(run)).toBe(
      "webtune train: Row 3, column 'answer' holds 20.0 MB of text; the most a cell can hold is 1 MB. Shorten it or remove the row.",
    );
    expect(run.seconds).toBeLessThan(30);
  });

  it('trains on a CSV with a cell just under 1 MB, cutting it at max length without tokenising it all', async () => {
    const file = tmpFile('long-cell.csv');
    const long = 'All work and no play makes Jack a dull boy. '.repeat(23_000);
    fs.writeFileSync(
      file,
      `question,answer\nWho is Tom?,Tom is my best friend.\nWhat did Jack write?,"${long}"\n`,
    );
    const run = await train(file, '--max-length', '64', '--val-split', '0');
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/^2 examples \(2 train, 0 validation\), \d+ tokens, 1 truncated at 64/m);
    expect(run.seconds).toBeLessThan(60);
  });
});
