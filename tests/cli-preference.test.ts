/**
 * Preference tuning from the command line: `webtune train` with DPO and ORPO on
 * fixtures/data/happy-endings.csv (20 pairs whose chosen answers end happily and rejected ones sadly),
 * `webtune eval` on the pairs it held out, the adapter's record of its objective, and bad input refused or
 * reported with its row.
 *
 * What is checked against independent values: DPO's first step is exactly log 2 (the policy is the reference:
 * PEFT's B = 0); ORPO's reported loss is the paper's nll − λ·log σ(…) of its own reported terms; the held-out
 * reward accuracy starts at 0 (every reward is 0 at the reference) and the base model's chosen-preferred
 * share is the fixture's property, which the tuned model must beat.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { unzipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { objectiveOf, readAdapterInfo, sanitizeAdapterInfo } from '../src/formats/adapter-info';
import { readAdapterZip } from '../src/formats/peft';
import { failure, jsonResult, runCli } from './helpers/cli';
import { dataFile, modelDir } from './helpers/shared';

const STORIES = modelDir('stories260K');
const PAIRS = dataFile('happy-endings.csv');
const FAST = ['--backend', 'wasm', '--max-length', '64', '--batch-size', '4'];

interface TrainResult {
  steps: number;
  val_loss: number;
  objective: string;
  beta: number | null;
  val_metrics: Record<string, number> | null;
}
interface Score {
  accuracy: number;
  margin: number;
  chosen_logp: number;
  rejected_logp: number;
}
interface PairReport {
  split: string;
  pairs: number;
  base: Score;
  tuned: Score | null;
  samples: { prompt: string; chosen: string; rejected: string; base: string; tuned: string | null }[];
}

let tmp = '';
const webtune = (...args: string[]) => runCli(args);
const file = (name: string) => path.join(tmp, name);

/** The step lines' figures: "loss 0.6931  rewards/accuracies 0.000 …" → {loss: 0.6931, …}. */
function stepFigures(stderr: string): Record<string, number>[] {
  return stderr
    .split('\n')
    .filter((line) => /^step \d+\/\d+/.test(line))
    .map((line) =>
      Object.fromEntries(
        [...line.matchAll(/\s(loss|rewards\/\w+|nll_loss|log_odds_ratio) (-?[\d.]+)/g)].map((m) => [
          m[1],
          Number(m[2]),
        ]),
      ),
    );
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-preference-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('webtune train and eval with DPO', () => {
  let trained: { stderr: string; result: TrainResult };

  beforeAll(async () => {
    const run = await webtune(
      'train',
      '--model',
      STORIES,
      '--data',
      PAIRS,
      ...FAST,
      '--val-split',
      '0.25',
      '--seed',
      '2',
      '--epochs',
      '4',
      '--out',
      file('dpo.zip'),
      '--json',
    );
    trained = { stderr: run.stderr, result: jsonResult<TrainResult>(run) };
  }, 300_000);

  it('a pairs file trains DPO by default, says so, and scores the reference once before step 1', () => {
    const lines = trained.stderr.split('\n');
    expect(lines).toContain(
      'objective: DPO (β 0.1), as the file holds pairs of answers (--objective orpo or sft chooses another, --beta its strength)',
    );
    // 20 pairs: 15 train, 5 validation; the reference pass covers both.
    expect(lines).toContain("Scoring 20 pairs with the adapter off (DPO's reference)…");
    expect(lines.findIndex((l) => l.startsWith('Scoring'))).toBeLessThan(
      lines.findIndex((l) => l.startsWith('step 1/')),
    );
    expect(trained.stderr).toMatch(/^20 pairs \(15 train, 5 validation\)/m);
    // The learning rate follows the presets for DPO: a tenth of SFT's 5e-3 for a model under 10M.
    expect(trained.stderr).toMatch(/^run: 4 epochs, learning rate 0\.0005,/m);
  });

  it('step 1 is log 2 with every reward 0; the figures sit beside each loss and each validation loss', () => {
    const steps = stepFigures(trained.stderr);
    expect(steps.length).toBe(trained.result.steps);
    expect(steps[0].loss).toBeCloseTo(Math.log(2), 4);
    expect(steps[0]['rewards/accuracies']).toBe(0);
    expect(steps[0]['rewards/margins']).toBe(0);
    expect(steps.at(-1)!.loss).toBeLessThan(Math.log(2));
    expect(trained.stderr).toMatch(
      /validation loss [\d.]+ {2}rewards\/accuracies [\d.]+ {2}rewards\/margins/,
    );
  });

  it('raises the held-out reward accuracy from 0 (the reference) and the summary names the objective', () => {
    const { result } = trained;
    expect(result.objective).toBe('dpo');
    expect(result.beta).toBe(0.1);
    expect(result.val_metrics!['rewards/accuracies']).toBeGreaterThanOrEqual(0.8);
    expect(result.val_metrics!['rewards/margins']).toBeGreaterThan(0);
    expect(result.val_loss).toBeLessThan(Math.log(2));
  });

  it('the adapter records DPO and its β, and its README says so', () => {
    const zip = new Uint8Array(fs.readFileSync(file('dpo.zip')));
    const info = readAdapterInfo(readAdapterZip(zip).metadata)!;
    expect(objectiveOf(info.settings)).toEqual({ name: 'dpo', beta: 0.1 });
    expect(info.split?.mapping).toEqual({
      kind: 'pairs',
      prompt: 'prompt',
      chosen: 'chosen',
      rejected: 'rejected',
    });
    const readme = new TextDecoder().decode(unzipSync(zip)['README.md']);
    expect(readme).toContain('It was trained with DPO (β 0.1) on pairs of a chosen and a rejected answer');
  });

  it('eval scores the pairs training held out: the chosen answer preferred more often than by the base', async () => {
    const report = jsonResult<PairReport>(
      await webtune('eval', '--model', STORIES, '--adapter', file('dpo.zip'), '--data', PAIRS, '--json'),
    );
    expect(report.pairs).toBe(5);
    // The base model prefers the happy ending in 2 of these 5 pairs (the fixture's base figure, seed 2).
    expect(report.base.accuracy).toBe(0.4);
    expect(report.tuned!.accuracy).toBeGreaterThan(report.base.accuracy);
    expect(report.tuned!.accuracy).toBeGreaterThanOrEqual(0.8);
    expect(report.tuned!.margin).toBeGreaterThan(report.base.margin);
    // The margin is the difference of the two mean log-probs.
    expect(report.tuned!.margin).toBeCloseTo(report.tuned!.chosen_logp - report.tuned!.rejected_logp, 4);
    expect(report.samples).toHaveLength(3);
    for (const sample of report.samples) {
      expect(sample.chosen).toMatch(/happy\.$/);
      expect(sample.rejected).toMatch(/sad\.$/);
      expect(typeof sample.base).toBe('string');
      expect(typeof sample.tuned).toBe('string');
    }
    // The same pairs as the base model's eval with the run's split flags given by hand (seed 2, 0.25,
    // max length 64), and not those of another seed: the adapter's saved split chose them.
    const byHand = jsonResult<PairReport>(
      await webtune(
        'eval',
        '--model',
        STORIES,
        '--data',
        PAIRS,
        '--seed',
        '2',
        '--val-split',
        '0.25',
        '--max-length',
        '64',
        '--samples',
        '5',
        '--json',
      ),
    );
    expect(byHand.tuned).toBeNull();
    expect(byHand.base).toEqual(report.base);
    const otherSeed = jsonResult<PairReport>(
      await webtune(
        'eval',
        '--model',
        STORIES,
        ...['--data', PAIRS, '--val-split', '0.25'],
        '--samples',
        '5',
        '--json',
      ),
    );
    const prompts = (r: PairReport) => r.samples.map((s) => s.prompt).sort();
    expect(prompts(otherSeed)).not.toEqual(prompts(byHand));
    const all = jsonResult<PairReport>(
      await webtune(
        'eval',
        '--model',
        STORIES,
        '--adapter',
        file('dpo.zip'),
        '--data',
        PAIRS,
        '--split',
        'all',
        '--samples',
        '0',
        '--json',
      ),
    );
    expect(all.pairs).toBe(20);
  }, 120_000);

  it('export --format trl writes the DPO run: its pairs split as training split them, β in dpo_config.yaml', async () => {
    const out = file('trl-dpo');
    const run = await webtune(
      'export',
      ...['--model', STORIES, '--adapter', file('dpo.zip'), '--format', 'trl', '--data', PAIRS, '--out', out],
    );
    expect(run.status, run.stderr).toBe(0);
    const config = fs.readFileSync(path.join(out, 'dpo_config.yaml'), 'utf8');
    expect(config).toMatch(/^beta: 0\.1$/m);
    expect(config).toMatch(/^max_length: 64$/m);
    expect(config).toMatch(/^learning_rate: 0\.0005$/m);
    expect(fs.existsSync(path.join(out, 'sft_config.yaml'))).toBe(false);
    const rows = (name: string) =>
      fs
        .readFileSync(path.join(out, 'data', name), 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { prompt: string; chosen: string; rejected: string });
    expect(rows('train.jsonl')).toHaveLength(15);
    // The pairs eval scored as held out (all five shown) are the ones the export holds out.
    const report = jsonResult<PairReport>(
      await webtune(
        'eval',
        '--model',
        STORIES,
        '--data',
        PAIRS,
        ...['--seed', '2', '--val-split', '0.25'],
        '--samples',
        '5',
        '--json',
      ),
    );
    expect(
      rows('validation.jsonl')
        .map((r) => r.prompt.trim())
        .sort(),
    ).toEqual(report.samples.map((s) => s.prompt.trim()).sort());
    // --objective orpo without --beta takes ORPO's default λ, not the DPO run's β.
    const orpo = await webtune(
      'export',
      ...['--model', STORIES, '--adapter', file('dpo.zip'), '--format', 'trl', '--data', PAIRS],
      ...['--objective', 'orpo', '--out', file('trl-orpo')],
    );
    expect(orpo.status, orpo.stderr).toBe(0);
    expect(fs.readdirSync(file('trl-orpo')).sort()).toEqual(
      ['README.md', 'accelerate', 'data', 'orpo.py', 'orpo_config.yaml'].sort(),
    );
  }, 120_000);

  it('prints the figures as text, base and tuned, with the answers side by side', async () => {
    const run = await webtune(
      'eval',
      '--model',
      STORIES,
      '--adapter',
      file('dpo.zip'),
      '--data',
      PAIRS,
      '--samples',
      '1',
    );
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(
      /^5 held-out pairs: chosen answer preferred [\d.]+% base, [\d.]+% with the adapter; mean margin/,
    );
    expect(run.stdout).toMatch(/\nprompt: {3}.+\nchosen: {3}.+happy\.\nbase: {5}.*\nadapter: {2}.*/);
  }, 60_000);
});

describe('webtune train with ORPO', () => {
  it('trains with λ as --beta; its loss is the paper’s nll − λ·log σ(…) of its reported terms', async () => {
    const run = await webtune(
      'train',
      ...['--model', STORIES, '--data', PAIRS, ...FAST],
      ...['--objective', 'orpo', '--beta', '0.2', '--epochs', '2', '--out', file('orpo.zip'), '--json'],
    );
    const result = jsonResult<TrainResult>(run);
    expect(result.objective).toBe('orpo');
    expect(result.beta).toBe(0.2);
    expect(run.stderr).toContain('objective: ORPO (λ 0.2)');
    expect(run.stderr).not.toContain('Scoring');
    const steps = stepFigures(run.stderr);
    expect(steps.length).toBe(result.steps);
    for (const step of steps) {
      // Printed to 4 decimals each.
      expect(Math.abs(step.loss - (step.nll_loss - 0.2 * step.log_odds_ratio))).toBeLessThan(3e-4);
      expect(step.log_odds_ratio).toBeLessThan(0);
    }
    expect(result.val_metrics).toHaveProperty('nll_loss');
    const info = readAdapterInfo(readAdapterZip(new Uint8Array(fs.readFileSync(file('orpo.zip')))).metadata)!;
    expect(objectiveOf(info.settings)).toEqual({ name: 'orpo', beta: 0.2 });
  }, 300_000);

  it("writes in the chosen answers' style afterwards: greedy answers to held-out prompts end happily", async () => {
    // ORPO's NLL term trains the chosen answers themselves, so the adapter writes their style; the base model
    // continues the prompt as a story of its own. (DPO alone on this 260K-parameter toy widens the margin by
    // lowering the rejected answers; greedy decoding then writes neither answer: see docs/objectives.md.)
    const train = await webtune(
      'train',
      ...['--model', STORIES, '--data', PAIRS, ...FAST, '--val-split', '0.25', '--seed', '2'],
      ...['--objective', 'orpo', '--lr', '0.005', '--out', file('orpo-style.zip')],
    );
    expect(train.status, train.stderr).toBe(0);
    const report = jsonResult<PairReport>(
      await webtune(
        'eval',
        ...['--model', STORIES, '--adapter', file('orpo-style.zip'), '--data', PAIRS],
        ...['--backend', 'wasm', '--samples', '5', '--json'],
      ),
    );
    expect(report.samples).toHaveLength(5);
    for (const sample of report.samples) {
      // The held-out prompts' own chosen answer (the fixture's), and none of the rejected one's words.
      expect(sample.tuned!.startsWith(sample.chosen.slice(0, 24)), sample.tuned!).toBe(true);
      expect(sample.tuned).not.toMatch(/cried|sad/);
      expect(sample.base.startsWith(sample.chosen.slice(0, 24))).toBe(false);
    }
  }, 300_000);

  it('--objective sft on pairs trains the chosen answers, and an adapter without the field reads as SFT', async () => {
    const run = await webtune(
      'train',
      ...['--model', STORIES, '--data', PAIRS, ...FAST],
      ...['--objective', 'sft', '--epochs', '1', '--out', file('sft.zip'), '--json'],
    );
    expect(jsonResult<TrainResult>(run)).toMatchObject({ objective: 'sft', beta: null, val_metrics: null });
    expect(run.stderr).toContain('objective: SFT on the chosen answers');
    expect(run.stderr).toMatch(/^20 examples .*\(each pair as its prompt with the chosen answer\)/m);
    expect(objectiveOf({ rank: 8, learningRate: 0.001 })).toEqual({ name: 'sft' });
    expect(objectiveOf(undefined)).toEqual({ name: 'sft' });
    // eval scores the pairs whose rows the SFT run held out as examples: those its TRL export holds out.
    const report = jsonResult<PairReport>(
      await webtune(
        'eval',
        '--model',
        STORIES,
        '--adapter',
        file('sft.zip'),
        '--data',
        PAIRS,
        '--samples',
        '9',
        '--json',
      ),
    );
    const trl = await webtune(
      'export',
      ...[
        '--model',
        STORIES,
        '--adapter',
        file('sft.zip'),
        '--format',
        'trl',
        '--data',
        PAIRS,
        '--out',
        file('trl-sft'),
      ],
    );
    expect(trl.status, trl.stderr).toBe(0);
    const held = fs
      .readFileSync(path.join(file('trl-sft'), 'data', 'validation.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { prompt: string; completion: string }).prompt.trim());
    expect(report.pairs).toBe(2);
    expect(report.samples.map((s) => s.prompt.trim()).sort()).toEqual(held.sort());
  }, 120_000);
});

describe('an adapter’s record of its objective, as read back', () => {
  it('keeps a known objective and a usable β; anything else reads as SFT or the default β', () => {
    const read = (settings: unknown) => objectiveOf(sanitizeAdapterInfo({ settings })?.settings);
    expect(read({ objective: 'orpo', beta: 0.3 })).toEqual({ name: 'orpo', beta: 0.3 });
    expect(read({ objective: 'orpo', beta: 0 })).toEqual({ name: 'orpo', beta: 0 });
    // A β that is not a number of 0 or more is dropped; DPO's default (0.1) stands in.
    expect(read({ objective: 'dpo', beta: -1 })).toEqual({ name: 'dpo', beta: 0.1 });
    expect(read({ objective: 'dpo', beta: '0.5' })).toEqual({ name: 'dpo', beta: 0.1 });
    expect(read({ objective: 'kto', beta: 0.2 })).toEqual({ name: 'sft' });
    expect(read({ rank: 8 })).toEqual({ name: 'sft' });
  });
});

describe('other column names, and bad input', () => {
  const write = (name: string, text: string) => {
    fs.writeFileSync(file(name), text);
    return file(name);
  };
  const good = (i: number) => `Kim took toy ${i} out.,She smiled. She was happy.,She cried. She was sad.`;

  it('--chosen-column and --rejected-column map other names; the adapter remembers them for eval', async () => {
    const csv = write(
      'renamed.csv',
      ['question,better,worse', ...Array.from({ length: 8 }, (_, i) => good(i))].join('\n') + '\n',
    );
    const columns = [
      '--prompt-column',
      'question',
      '--chosen-column',
      'better',
      '--rejected-column',
      'worse',
    ];
    const run = await webtune(
      'train',
      ...['--model', STORIES, '--data', csv, ...FAST, ...columns, '--epochs', '1', '--val-split', '0.25'],
      ...['--out', file('renamed.zip')],
    );
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/^objective: DPO \(β 0\.1\), as the file holds pairs/m);
    const report = jsonResult<PairReport>(
      await webtune('eval', '--model', STORIES, '--adapter', file('renamed.zip'), '--data', csv, '--json'),
    );
    expect(report.pairs).toBe(2);
  }, 120_000);

  it('rows that make no pair are left out and named with their line', async () => {
    const csv = write(
      'bad-rows.csv',
      [
        'prompt,chosen,rejected',
        good(1),
        'Sam took a cup.,Same answer.,Same answer.',
        'Ann took a hat.,She smiled.,',
        ...Array.from({ length: 5 }, (_, i) => good(i + 2)),
      ].join('\n') + '\n',
    );
    const run = await webtune(
      'train',
      ...['--model', STORIES, '--data', csv, ...FAST, '--epochs', '1', '--out', file('bad.zip')],
    );
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/^6 pairs .*, 2 rows left out;/m);
    expect(run.stderr).toMatch(/^left out: Line 3: the chosen and the rejected answer are the same/m);
    expect(run.stderr).toMatch(/^left out: Line 4: the rejected answer \('rejected'\) is empty/m);
  }, 120_000);

  it('a JSONL row without an answer is named with its line', async () => {
    const row = (i: number) =>
      JSON.stringify({ prompt: `Kim took toy ${i}.`, chosen: 'Happy.', rejected: 'Sad.' });
    const jsonl = write(
      'missing.jsonl',
      [row(1), JSON.stringify({ prompt: 'Bo took a kite.', chosen: 'Happy.' }), row(2), row(3)].join('\n') +
        '\n',
    );
    const run = await webtune(
      'train',
      ...['--model', STORIES, '--data', jsonl, ...FAST, '--epochs', '1', '--val-split', '0'],
      ...['--out', file('missing.zip')],
    );
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/^left out: Line 2: the row has no 'rejected'/m);
  }, 120_000);

  it('refuses, in one line and before loading the model, what cannot train', async () => {
    const tickets = dataFile('support-tickets.csv');
    const train = async (...args: string[]) =>
      failure(await webtune('train', '--model', STORIES, '--out', file('x.zip'), ...args));
    expect(await train('--data', PAIRS, '--objective', 'dpo', '--beta', '0')).toMatch(
      /--beta must be above 0 for DPO \(got "0"\)/,
    );
    expect(await train('--data', PAIRS, '--objective', 'orpo', '--beta=-0.5')).toMatch(
      /--beta \(ORPO's λ\) must be 0 or more \(got "-0.5"\)/,
    );
    expect(await train('--data', PAIRS, '--objective', 'sft', '--beta', '0.1')).toMatch(
      /--beta sets DPO's β or ORPO's λ, and this run trains with SFT/,
    );
    expect(
      await train(
        '--data',
        tickets,
        '--prompt-column',
        'ticket',
        '--completion-column',
        'department',
        '--beta',
        '0.1',
      ),
    ).toMatch(/trains with SFT \(the file holds single answers\)/);
    expect(await train('--data', PAIRS, '--objective', 'kto')).toMatch(
      /--objective must be sft, dpo or orpo \(got "kto"\)/,
    );
    expect(
      await train(
        '--data',
        tickets,
        '--prompt-column',
        'ticket',
        '--completion-column',
        'department',
        '--objective',
        'dpo',
      ),
    ).toMatch(/DPO learns from pairs of answers .* this dataset holds single answers/);
    expect(
      await train(
        '--data',
        PAIRS,
        '--prompt-column',
        'prompt',
        '--chosen-column',
        'chosen',
        '--rejected-column',
        'worse',
      ),
    ).toBe(
      "webtune train: The file has no column 'worse' (from --rejected-column). Columns: prompt, chosen, rejected.",
    );
    expect(await train('--data', PAIRS, '--chosen-column', 'chosen')).toMatch(
      /needs three columns: pass --prompt-column, --chosen-column and --rejected-column together/,
    );
    const noRejected = write('two-columns.csv', 'prompt,chosen\nA,B\n');
    expect(await train('--data', noRejected, '--layout', 'preference')).toMatch(
      /--layout preference: .*the file has: prompt, chosen/,
    );
  }, 60_000);
});
