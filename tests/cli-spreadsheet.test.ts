// `webtune train`, `eval` and `export --format trl` on a workbook, as a person runs them: --sheet picks the
// sheet, a wrong name lists the sheets, and the adapter remembers its sheet, so the TRL bundle carries the
// rows LibreOffice shows on that sheet (fixtures/data/sheets.xlsx-Tickets.csv) without --sheet again.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Papa from 'papaparse';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { failure, runCli } from './helpers/cli';
import { dataFile } from './helpers/paths';
import { modelDir } from './helpers/shared';

const STORIES = modelDir('stories260K');
const WORKBOOK = dataFile('sheets.xlsx');

let tmp = '';

describe('webtune on a spreadsheet workbook', () => {
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-cli-sheets-'));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('trains on the sheet --sheet names, and export --format trl carries that sheet rows', async () => {
    const adapter = path.join(tmp, 'tickets.zip');
    const train = await runCli([
      'train',
      '--model',
      STORIES,
      '--data',
      WORKBOOK,
      '--sheet',
      'Tickets',
      '--out',
      adapter,
      '--epochs',
      '1',
      '--backend',
      'cpu',
      '--json',
    ]);
    expect(train.status, train.stderr).toBe(0);

    const bundle = path.join(tmp, 'trl');
    const exported = await runCli([
      'export',
      '--model',
      STORIES,
      '--adapter',
      adapter,
      '--format',
      'trl',
      '--data',
      WORKBOOK,
      '--out',
      bundle,
    ]);
    expect(exported.status, exported.stderr).toBe(0);
    const examples = ['train', 'validation'].flatMap((split) =>
      fs
        .readFileSync(path.join(bundle, 'data', `${split}.jsonl`), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { prompt: string; completion: string }),
    );
    const [header, ...rows] = Papa.parse<string[]>(
      fs.readFileSync(dataFile('sheets.xlsx-Tickets.csv'), 'utf8'),
      { header: false, skipEmptyLines: true },
    ).data;
    expect(header).toEqual(['ticket', 'department']);
    const pairs = (list: string[][]) => list.map((r) => r.join(' → ')).sort();
    expect(pairs(examples.map((e) => [e.prompt.trim(), e.completion.trim()]))).toEqual(pairs(rows));

    // eval reads the sheet the adapter was trained on too, and scores the rows that run held out.
    const evaluated = await runCli([
      'eval',
      ...['--model', STORIES, '--adapter', adapter, '--data', WORKBOOK, '--backend', 'cpu', '--json'],
    ]);
    expect(evaluated.status, evaluated.stderr).toBe(0);
    expect(evaluated.stderr).toContain('sheet: Tickets, the one tickets.zip was trained on');
    const validation = fs
      .readFileSync(path.join(bundle, 'data', 'validation.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean);
    expect((JSON.parse(evaluated.stdout) as { examples: number }).examples).toBe(validation.length);
  });

  it('names the sheets when --sheet names none of them', async () => {
    const run = await runCli(['eval', '--model', STORIES, '--data', WORKBOOK, '--sheet', 'Answers']);
    expect(failure(run)).toBe(
      "webtune eval: sheets.xlsx has no sheet named 'Answers'. Its sheets are: 'Questions', 'Tickets', 'Empty'.",
    );
  });

  it('refuses --sheet with a file that has no sheets', async () => {
    const csv = dataFile('support-tickets.csv');
    const run = await runCli(['eval', '--model', STORIES, '--data', csv, '--sheet', 'Tickets']);
    expect(failure(run)).toBe(
      `webtune eval: --sheet picks a sheet of a spreadsheet (.xlsx, .ods), and ${csv} is not one.`,
    );
  });
});
