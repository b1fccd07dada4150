// Compare and export, as a person does it: train on animal-sounds.jsonl, ask both models, download the
// adapter, check the zip, then on a fresh page (storage emptied) import the zip again and get the same
// fine-tuned answer. The trained adapter (its zip and its answers) is made once per file by whichever test
// needs it first (`trained()`); every test starts from a fresh page and waits for what it needs, never for a
// fixed time, so the tests pass in any order and alone.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { unzipSync, strFromU8 } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTokenizer } from '../fixtures/data/shared';
import { attachAdapterWeights } from '../../src/engine/lora';
import { disposeModel } from '../../src/engine/model';
import { scoreTokens } from '../../src/engine/score';
import { readAdapterZip } from '../../src/formats/peft';
import {
  dataFile,
  loadFixture,
  maxAbsDiff,
  modelConfig,
  modelDir,
  REFERENCE_SCRIPT,
  switchBackend,
} from '../helpers/shared';
import { externalRequests, openHarness, type Harness } from './browser';

const RESULTS = path.resolve(__dirname, '..', '..', 'test-results');
const SCREENSHOTS = path.join(RESULTS, 'screenshots');
const FILE = 'animal-sounds.jsonl';
const rows = fs
  .readFileSync(dataFile(FILE), 'utf8')
  .trim()
  .split('\n')
  .map((line) => JSON.parse(line) as { prompt: string; completion: string });
const answerOf = new Map(rows.map((r) => [r.prompt, r.completion]));
const TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

/** What training on the page gave, for the tests that use the adapter. */
interface Trained {
  /** The quick prompts the chat offered (the held-out rows). */
  quick: string[];
  /** A training row's prompt, and the two panes' answers to it right after training. */
  prompt: string;
  base: string;
  tuned: string;
  /** The adapter, downloaded from the library as "animal sounds.zip". */
  zipPath: string;
}

describe('compare and export', () => {
  let harness: Harness;
  let training: Promise<Trained> | undefined;
  /** The page holds the run `trained()` just finished (its adapter in the chat), not a fresh page. */
  let pageTrained = false;
  const shot = (name: string) =>
    harness.page.screenshot({
      path: path.join(SCREENSHOTS, `${name}.png`),
      fullPage: true,
    });
  const pane = (name: string) => harness.page.getByRole('region', { name, exact: true });
  const lastAnswer = (name: string) => pane(name).locator('li.assistant:not(.streaming) .text').last();
  const composer = () => harness.page.locator('.composer');

  /** Until the chat is not answering any pane (its Stop button is gone). */
  const chatIdle = () =>
    composer()
      .getByRole('button', { name: 'Stop', exact: true })
      .waitFor({ state: 'detached', timeout: 60_000 });

  /**
   * Types the message, presses Enter once the chat can send, and waits until the chat has answered in every
   * pane.
   */
  async function ask(message: string, panes = ['Base model', 'Fine-tuned model']): Promise<string[]> {
    const { page } = harness;
    await chatIdle();
    const before = await Promise.all(panes.map((p) => pane(p).locator('li.assistant').count()));
    await page.getByLabel('Message').fill(message);
    // Enter sends only when the chat can (a model, no answer or training running); Send says when that is.
    await expect
      .poll(() => composer().getByRole('button', { name: 'Send', exact: true }).isEnabled(), {
        timeout: 60_000,
      })
      .toBe(true);
    await page.getByLabel('Message').press('Enter');
    await Promise.all(
      panes.map((p, i) =>
        pane(p).locator('li.assistant:not(.streaming)').nth(before[i]).waitFor({ timeout: 60_000 }),
      ),
    );
    // Every pane answers in turn, including ones the caller does not read: the next message waits for all.
    await chatIdle();
    return Promise.all(panes.map(async (p) => (await lastAnswer(p).textContent()) ?? ''));
  }

  /**
   * A fresh start: the site's storage emptied (library, datasets, checkpoints), then the page opened on
   * `model`.
   */
  async function freshPage(model: string, loaded: string): Promise<void> {
    const { page } = harness;
    pageTrained = false;
    await harness.clearSiteData();
    await page.goto(`${harness.baseUrl}/?model=/models/${model}`);
    await page.getByText(loaded).waitFor({ timeout: 60_000 });
  }

  /**
   * Trains on animal-sounds.jsonl on a fresh page, asks both panes a training row, and downloads the adapter
   * from the library under the name "animal sounds"; once per file, for whichever test asks first.
   */
  const trained = () => (training ??= train());
  async function train(): Promise<Trained> {
    const { page } = harness;
    await freshPage('stories260K', '260K parameters');
    await page.getByLabel('Dataset file').setInputFiles(dataFile(FILE));
    await page.getByText('What the model will see').waitFor();

    // Quick prompts are the held-out rows; ask a row the adapter was trained on instead.
    const quick = await page
      .getByRole('group', { name: 'Quick prompts' })
      .getByRole('button')
      .allTextContents();
    const prompt = rows.map((r) => r.prompt).find((p) => !quick.includes(p))!;

    await page.getByLabel('Epochs').fill('30');
    await page.getByLabel('Learning rate').fill('0.01');
    await page.getByText('Advanced').click();
    await page.getByLabel('Dropout').fill('0');
    // The pane must repeat a training row's answer: the last step's adapter, which memorised it.
    await page.getByLabel('Adapter to keep').selectOption('last');
    for (const target of TARGETS) await page.getByLabel(target, { exact: true }).check();
    await page.getByRole('button', { name: 'Start training' }).click();
    await page.getByRole('status').filter({ hasText: 'Training complete' }).waitFor({ timeout: 240_000 });
    const [base, tuned] = await ask(prompt);

    // Named in the library, which names the download.
    const item = page.getByRole('listitem', { name: /^Adapter / }).first();
    await item.getByLabel('Adapter name').fill('animal sounds');
    await item.getByLabel('Adapter name').press('Enter');
    await page.getByRole('listitem', { name: 'Adapter animal sounds' }).waitFor();
    await expect(item.getByText(/trained on animal-sounds\.jsonl/).count()).resolves.toBe(1);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      item.getByRole('button', { name: 'Download adapter' }).click(),
    ]);
    expect(download.suggestedFilename()).toBe('animal sounds.zip');
    const zipPath = path.join(RESULTS, download.suggestedFilename());
    await download.saveAs(zipPath);
    pageTrained = true;
    return { quick, prompt, base, tuned, zipPath };
  }

  /** The zip dropped on the page, as a person drags the downloaded file in. */
  async function dropZip(zipPath: string): Promise<void> {
    const { page } = harness;
    const transfer = await page.evaluateHandle(
      ({ bytes, name }) => {
        const data = new DataTransfer();
        data.items.add(new File([new Uint8Array(bytes)], name, { type: 'application/zip' }));
        return data;
      },
      { bytes: [...fs.readFileSync(zipPath)], name: path.basename(zipPath) },
    );
    await page.dispatchEvent('main', 'dragover', { dataTransfer: transfer });
    await page.dispatchEvent('main', 'drop', { dataTransfer: transfer });
  }

  beforeAll(async () => {
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    harness = await openHarness();
  });
  afterAll(async () => {
    expect(externalRequests(harness.requests)).toEqual([]);
    await harness.close();
  });

  it('trains, then both panes answer a training prompt and only the fine-tuned one gives the trained answer', async () => {
    const { page } = harness;
    const { quick, prompt, base, tuned, zipPath } = await trained();
    expect(quick.length).toBeGreaterThan(0);
    for (const q of quick) expect(answerOf.has(q)).toBe(true);
    // stories260K never learned to emit EOS, so the answer is followed by more text; it comes first.
    expect(tuned.startsWith(answerOf.get(prompt)!), `${prompt} → ${tuned}`).toBe(true);
    expect(base.startsWith(answerOf.get(prompt)!), `base: ${base}`).toBe(false);
    expect(base.length).toBeGreaterThan(0);
    if (!pageTrained) {
      // Trained for an earlier test, whose page is gone: the same data and adapter, opened in a fresh page.
      await freshPage('stories260K', '260K parameters');
      await page.getByLabel('Dataset file').setInputFiles(dataFile(FILE));
      await page.getByText('What the model will see').waitFor();
      await dropZip(zipPath);
      await page
        .getByRole('status')
        .filter({ hasText: 'Imported animal sounds; the chat now uses it.' })
        .waitFor({ timeout: 30_000 });
      await ask(prompt);
    }
    await pane('Fine-tuned model')
      .getByText(/tokens\/s/)
      .waitFor();

    // A quick prompt shows the answer the data expects beside the two answers; few-shot adds a third pane.
    await page.getByRole('checkbox', { name: 'Base + few-shot' }).check();
    await page.getByRole('group', { name: 'Quick prompts' }).getByRole('button').first().click();
    await page
      .getByRole('note')
      .filter({
        hasText: `Expected (from the data): ${answerOf.get(quick[0])}`,
      })
      .waitFor();
    await pane('Base + few-shot')
      .locator('li.assistant:not(.streaming)')
      .first()
      .waitFor({ timeout: 60_000 });
    await expect(
      pane('Base + few-shot')
        .getByText(/3 examples in the prompt/)
        .count(),
    ).resolves.toBe(1);
    await shot('5-chat-desktop');
    await page.locator('section[aria-labelledby="chat-heading"]').screenshot({
      path: path.join(SCREENSHOTS, '5-chat-desktop-section.png'),
    });
    await page.setViewportSize({ width: 390, height: 844 });
    const section = page.locator('section[aria-labelledby="chat-heading"]');
    await section.screenshot({
      path: path.join(SCREENSHOTS, '5-chat-phone.png'),
    });
    await page.emulateMedia({ colorScheme: 'dark' });
    await section.screenshot({
      path: path.join(SCREENSHOTS, '5-chat-phone-dark.png'),
    });
    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.getByRole('checkbox', { name: 'Base + few-shot' }).uncheck();
  }, 400_000);

  it('downloads <name>.zip in PEFT layout with every tensor named and shaped for this model, scored by PyTorch as by webtune', async () => {
    // The name, the provenance and the file name of the download are checked where it is made, in train().
    const { prompt, zipPath } = await trained();
    const files = unzipSync(new Uint8Array(fs.readFileSync(zipPath)));
    expect(Object.keys(files).sort()).toEqual([
      'README.md',
      'adapter_config.json',
      'adapter_model.safetensors',
    ]);
    const config = JSON.parse(strFromU8(files['adapter_config.json']));
    expect(config).toMatchObject({
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      r: 8,
      lora_alpha: 16,
      target_modules: TARGETS,
    });
    expect(strFromU8(files['README.md'])).toContain('PeftModel.from_pretrained');

    // Expected names and shapes from the model's config.json: A is [r, in], B is [out, r].
    const c = modelConfig('stories260K') as {
      hidden_size: number;
      intermediate_size: number;
      num_hidden_layers: number;
      num_attention_heads: number;
      num_key_value_heads: number;
    };
    const headDim = c.hidden_size / c.num_attention_heads;
    const sizes: Record<string, [number, number]> = {
      q_proj: [c.hidden_size, c.num_attention_heads * headDim],
      k_proj: [c.hidden_size, c.num_key_value_heads * headDim],
      v_proj: [c.hidden_size, c.num_key_value_heads * headDim],
      o_proj: [c.num_attention_heads * headDim, c.hidden_size],
      gate_proj: [c.hidden_size, c.intermediate_size],
      up_proj: [c.hidden_size, c.intermediate_size],
      down_proj: [c.intermediate_size, c.hidden_size],
    };
    const expected: Record<string, number[]> = {};
    for (let layer = 0; layer < c.num_hidden_layers; layer++) {
      for (const t of TARGETS) {
        const key = `base_model.model.model.layers.${layer}.${['gate_proj', 'up_proj', 'down_proj'].includes(t) ? 'mlp' : 'self_attn'}.${t}`;
        expected[`${key}.lora_A.weight`] = [8, sizes[t][0]];
        expected[`${key}.lora_B.weight`] = [sizes[t][1], 8];
      }
    }
    // Read the safetensors header by hand (8-byte length, then JSON), independently of webtune's reader.
    const weights = files['adapter_model.safetensors'];
    const length = Number(new DataView(weights.buffer, weights.byteOffset).getBigUint64(0, true));
    const { __metadata__: metadata, ...tensors } = JSON.parse(
      strFromU8(weights.subarray(8, 8 + length)),
    ) as Record<string, { dtype: string; shape: number[] }>;
    expect(Object.fromEntries(Object.entries(tensors).map(([name, t]) => [name, t.shape]))).toEqual(expected);
    expect(new Set(Object.values(tensors).map((t) => t.dtype))).toEqual(new Set(['F32']));
    expect(metadata).toMatchObject({ format: 'pt' });

    // The independent PyTorch reference, given the unzipped folder, scores a trained example as webtune's
    // engine does.
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-adapter-'));
    for (const [name, bytes] of Object.entries(files)) fs.writeFileSync(path.join(folder, name), bytes);
    const loaded = loadFixture('stories260K');
    const ids = loaded.tokenizer.encode(`${prompt}\n${answerOf.get(prompt)}`);
    const torch = spawnSync(
      '/usr/bin/python3',
      [REFERENCE_SCRIPT, 'score', modelDir('stories260K'), '--ids', ids.join(','), '--adapter', folder],
      { encoding: 'utf8' },
    );
    expect(
      torch.status,
      `${torch.stderr}\nThe reference needs PyTorch: apt-get install -y python3-torch libopenblas0-pthread`,
    ).toBe(0);
    const expectedScores = (JSON.parse(torch.stdout) as { logprobs: number[] }).logprobs;
    await switchBackend('wasm');
    const adapter = attachAdapterWeights(
      loaded.model,
      readAdapterZip(new Uint8Array(fs.readFileSync(zipPath))),
    );
    const engineScores = (await scoreTokens(loaded.model, ids)).logprobs;
    adapter.enabled = false;
    const baseScores = (await scoreTokens(loaded.model, ids)).logprobs;
    disposeModel(loaded.model);
    adapter.dispose();
    fs.rmSync(folder, { recursive: true, force: true });
    expect(maxAbsDiff(engineScores, expectedScores)).toBeLessThan(1e-3);
    // The adapter matters: without it the same text scores clearly differently.
    expect(maxAbsDiff(baseScores, expectedScores)).toBeGreaterThan(0.5);
  }, 400_000);

  it('on a fresh page (storage emptied), the dropped zip gives the same fine-tuned answer; deleting it empties the library', async () => {
    const { page } = harness;
    const { prompt, tuned: tunedAnswer, zipPath } = await trained();
    await freshPage('stories260K', '260K parameters');
    await page.getByText('No adapters yet.').waitFor();

    await dropZip(zipPath);
    await page
      .getByRole('status')
      .filter({ hasText: 'Imported animal sounds; the chat now uses it.' })
      .waitFor({ timeout: 30_000 });
    const imported = page.getByRole('listitem', {
      name: 'Adapter animal sounds',
    });
    // The zip brought its details with it.
    await expect(imported.getByText(/imported on animal-sounds\.jsonl/).count()).resolves.toBe(1);
    await expect(imported.getByText('In the chat now').count()).resolves.toBe(1);
    const [, tuned] = await ask(prompt);
    expect(tuned).toBe(tunedAnswer);
    await shot('6-imported-adapter');

    await imported.getByRole('button', { name: 'Delete' }).click();
    await imported.getByRole('button', { name: 'Yes, delete' }).click();
    await page.getByText('No adapters yet.').waitFor();
  }, 400_000);

  it('switches the chat between library adapters', async () => {
    const { page } = harness;
    const { prompt, tuned: tunedAnswer, zipPath } = await trained();
    await freshPage('stories260K', '260K parameters');
    // The same zip imported twice (dropped, then picked): two library entries; the chat uses the newest, then
    // switches to the other.
    const items = page.getByRole('listitem', { name: 'Adapter animal sounds' });
    for (const [count, importZip] of [
      [1, () => dropZip(zipPath)],
      [2, () => page.getByLabel('Import adapter (.zip)').setInputFiles(zipPath)],
    ] as const) {
      await importZip();
      await expect.poll(() => items.count()).toBe(count);
      // The list shows the new entry before the chat has switched to it: wait for the switch itself.
      await items.nth(0).getByText('In the chat now').waitFor();
    }
    await items.nth(1).getByRole('button', { name: 'Use in chat' }).click();
    await items.nth(1).getByText('In the chat now').waitFor();
    await items.nth(0).getByRole('button', { name: 'Use in chat' }).waitFor();
    const [, tuned] = await ask(prompt);
    expect(tuned).toBe(tunedAnswer);
    await items.nth(1).getByRole('button', { name: 'Delete' }).click();
    await items.nth(1).getByRole('button', { name: 'Yes, delete' }).click();
    await expect.poll(() => items.count()).toBe(1);
    // Deleting the adapter in use leaves the fine-tuned pane without one, and it says so.
    await page.getByText('In the chat now').waitFor({ state: 'detached' });
    await ask(prompt, ['Base model']);
    await pane('Fine-tuned model').getByRole('alert').filter({ hasText: 'no fine-tuned adapter' }).waitFor();
  }, 400_000);

  it('refuses a zip that is not an adapter for this model, saying why', async () => {
    const { page } = harness;
    await freshPage('stories260K', '260K parameters');
    await page.getByLabel('Import adapter (.zip)').setInputFiles({
      name: 'notes.zip',
      mimeType: 'application/zip',
      buffer: Buffer.from('not a zip at all'),
    });
    await page.getByRole('alert').filter({ hasText: 'not a readable zip file' }).waitFor();
    await expect(page.getByRole('listitem', { name: /^Adapter / }).count()).resolves.toBe(0);
    await expect(page.getByText('No adapters yet.').count()).resolves.toBe(1);
  });

  it('keeps the conversation with a chat-template model: the second prompt holds the first exchange', async () => {
    const { page } = harness;
    await freshPage('stories260K-chat', 'has a chat template');
    await page.getByText('Follow-up messages continue the conversation.').waitFor();
    const promptTokens = async () =>
      Number(
        /after a (\d+)-token prompt/.exec(
          (await pane('Base model').locator('.stats').textContent()) ?? '',
        )?.[1],
      );
    const [first] = await ask('Tell me a story.', ['Base model']);
    const p1 = await promptTokens();
    await ask('What happened next?', ['Base model']);
    const p2 = await promptTokens();
    // Rendered independently through the model's chat template (tokenizer_config.json) in Node.
    const tokenizer = loadTokenizer('stories260K-chat');
    const render = (messages: { role: string; content: string }[]) =>
      tokenizer.encode(
        tokenizer.applyChatTemplate(messages as never, {
          addGenerationPrompt: true,
        }),
      ).length;
    expect(p1).toBe(render([{ role: 'user', content: 'Tell me a story.' }]));
    expect(p2).toBe(
      render([
        { role: 'user', content: 'Tell me a story.' },
        { role: 'assistant', content: first },
        { role: 'user', content: 'What happened next?' },
      ]),
    );
    await page.getByRole('button', { name: 'New conversation' }).click();
    await expect.poll(() => pane('Base model').locator('li').count()).toBe(0);
  }, 120_000);
});
