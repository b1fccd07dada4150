// Take the adapter anywhere, as a person does it on the page: train on best-friends.csv, then press each
// download button of the library. Each gives one zip; what is inside is read by the tools it is for:
// llama.cpp continues a training prompt exactly like `webtune generate` with the page's own PEFT zip,
// the merged folder scores like base + that zip, and the TRL config carries the page's settings.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { strFromU8, unzipSync } from 'fflate';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadTokenizer } from '../../src/engine/load';
import { openGguf } from '../helpers/llama-cpp';
import { dataFile, maxAbsDiff, modelDir } from '../helpers/shared';
import { dropFile, SCREENSHOTS, useHarness } from './browser';

const ROOT = path.resolve(__dirname, '..', '..');
const STORIES = modelDir('stories260K');
const PROMPT = 'Who is Tom?\n';

function webtune(...args: string[]) {
  const run = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'webtune.mjs'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 180_000,
  });
  expect(run.status, run.stderr).toBe(0);
  return JSON.parse(run.stdout.trim()) as Record<string, unknown>;
}

/** A downloaded zip's files, written under `dir`, keyed by their name inside the zip. */
function unpack(zipFile: string, dir: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const [name, bytes] of Object.entries(unzipSync(new Uint8Array(fs.readFileSync(zipFile))))) {
    if (name.endsWith('/')) continue;
    const target = path.join(dir, name);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, bytes);
    files.set(name, target);
  }
  return files;
}

describe('the library exports', () => {
  const harness = useHarness();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-e2e-export-'));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('gives a GGUF zip for llama.cpp / Ollama, a merged model and a TRL bundle, each read back by its tool', async () => {
    const { page } = harness;
    await page.goto(`${harness.baseUrl}/?model=/models/stories260K`);
    await page.getByText('260K parameters').waitFor({ timeout: 60_000 });
    await dropFile(page, 'best-friends.csv', fs.readFileSync(dataFile('best-friends.csv'), 'utf8'));
    await page.getByText(/for training, \d+ for validation/).waitFor({ timeout: 30_000 });
    await page.getByLabel('Epochs').fill('3');
    await page.getByLabel('Learning rate').fill('0.01');
    await page.getByRole('button', { name: 'Start training' }).click();
    await page.getByRole('status').filter({ hasText: 'Training complete' }).waitFor({ timeout: 240_000 });

    const library = page.locator('section[aria-labelledby="library-heading"]');
    const item = library.getByRole('listitem').first();
    const download = async (button: string) => {
      const [file] = await Promise.all([
        page.waitForEvent('download', { timeout: 120_000 }),
        item.getByRole('button', { name: button }).click(),
      ]);
      const saved = path.join(tmp, file.suggestedFilename());
      await file.saveAs(saved);
      // An export says what it saved and how large it is.
      if (button !== 'Download adapter')
        await library
          .getByRole('status')
          .filter({ hasText: `Saved ${file.suggestedFilename()}` })
          .waitFor();
      return saved;
    };
    const peft = await download('Download adapter');

    // llama.cpp / Ollama: model.gguf (adapter merged), adapter.gguf, Modelfile, README, in one folder.
    const ggufZip = await download('Download for llama.cpp / Ollama');
    expect(path.basename(ggufZip)).toMatch(/-gguf\.zip$/);
    const gguf = unpack(ggufZip, path.join(tmp, 'gguf'));
    const stem = path.basename(ggufZip, '.zip');
    expect([...gguf.keys()].sort()).toEqual(
      ['Modelfile', 'README.md', 'adapter.gguf', 'model.gguf'].map((f) => `${stem}/${f}`).sort(),
    );
    expect(fs.readFileSync(gguf.get(`${stem}/Modelfile`)!, 'utf8')).toMatch(/^FROM \.\/model\.gguf\n/);
    await harness.shot('export-0-library');

    // The page's GGUF (f16, as it ships) continues like the CLI with the page's own PEFT zip. f16 rounding
    // may move a near tie, so the proof is the first tokens and a near-identical next-token distribution.
    const tokenizer = loadTokenizer({
      tokenizerJson: fs.readFileSync(path.join(STORIES, 'tokenizer.json'), 'utf8'),
      tokenizerConfig: fs.readFileSync(path.join(STORIES, 'tokenizer_config.json'), 'utf8'),
    });
    const ids = tokenizer.encode(PROMPT);
    const ours = webtune(
      'generate',
      '--model',
      STORIES,
      '--adapter',
      peft,
      '--prompt',
      PROMPT,
      '--max-new-tokens',
      '8',
      '--json',
    ) as { tokens: number[] };
    const base = webtune(
      'generate',
      '--model',
      STORIES,
      '--prompt',
      PROMPT,
      '--max-new-tokens',
      '8',
      '--json',
    ) as { tokens: number[] };
    expect(ours.tokens).not.toEqual(base.tokens);
    const run = await openGguf(gguf.get(`${stem}/model.gguf`)!);
    try {
      expect(await run.greedy(ids, 8)).toEqual(ours.tokens);
    } finally {
      await run.dispose();
    }

    // Merged model: a Hugging Face folder that webtune scores like base + the page's adapter.
    const mergedZip = await download('Download merged model');
    const merged = unpack(mergedZip, path.join(tmp, 'merged'));
    const mergedStem = path.basename(mergedZip, '.zip');
    expect([...merged.keys()].sort()).toEqual(
      ['README.md', 'config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']
        .map((f) => `${mergedStem}/${f}`)
        .sort(),
    );
    const text = 'Tom is my best friend.';
    const withAdapter = webtune('score', '--model', STORIES, '--adapter', peft, '--text', text, '--json') as {
      logprobs: number[];
    };
    const fromMerged = webtune(
      'score',
      '--model',
      path.join(tmp, 'merged', mergedStem),
      '--text',
      text,
      '--json',
    ) as { logprobs: number[] };
    expect(maxAbsDiff(fromMerged.logprobs, withAdapter.logprobs)).toBeLessThan(1e-4);

    // GPU cluster: the data as the run split it and the page's settings.
    const trlZip = await download('Download for a GPU cluster');
    const trl = unzipSync(new Uint8Array(fs.readFileSync(trlZip)));
    const trlStem = path.basename(trlZip, '.zip');
    const config = parseYaml(strFromU8(trl[`${trlStem}/sft_config.yaml`])) as Record<string, unknown>;
    expect(config).toMatchObject({
      num_train_epochs: 3,
      learning_rate: 0.01,
      use_peft: true,
      completion_only_loss: true,
    });
    const trainRows = strFromU8(trl[`${trlStem}/data/train.jsonl`])
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { prompt: string; completion: string });
    const csvRows = fs.readFileSync(dataFile('best-friends.csv'), 'utf8').trim().split('\n').length - 1;
    const validationRows = strFromU8(trl[`${trlStem}/data/validation.jsonl`] ?? new Uint8Array())
      .trim()
      .split('\n')
      .filter(Boolean).length;
    expect(trainRows.length + validationRows).toBe(csvRows);
    await item.screenshot({ path: path.join(SCREENSHOTS, 'export-1-item.png') });
  });
});
