// The page as a person uses it: open with a model, pick a dataset, see what will be learned, train.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { dataFile, modelDir } from '../helpers/shared';
import type { Page } from 'playwright-core';
import { checkpointSteps, dropFile, useHarness } from './browser';

/** The step counts the page has shown in a run's progress bar (its value, then its max). */
async function progressOf(page: Page): Promise<{ value: number; max: number }> {
  const progress = page.getByRole('progressbar', { name: 'Training progress' });
  return {
    value: Number(await progress.getAttribute('value')),
    max: Number(await progress.getAttribute('max')),
  };
}

// Each test starts from emptied site storage and opens the page it needs: they pass in any order and alone.
describe('the page', () => {
  const harness = useHarness({ fresh: true });
  const shot = harness.shot;

  it('loads stories260K, previews best-friends.csv and trains it to completion', async () => {
    const { page } = harness;
    await page.goto(`${harness.baseUrl}/?model=/models/stories260K`);
    await page.getByText('260K parameters').waitFor({ timeout: 60_000 });
    await expect(page.getByText('Compute: wasm').textContent()).resolves.toContain('wasm');
    await shot('1-model-loaded');

    // Dropped anywhere on the page, as a person drags a file from their desktop.
    await dropFile(page, 'best-friends.csv', fs.readFileSync(dataFile('best-friends.csv'), 'utf8'));
    await page.getByText('What the model will see').waitFor();
    // The first preview row: the question as context, the answer highlighted as the trained completion.
    const first = page.locator('.preview li').first();
    expect(await first.locator('.context').textContent()).toMatch(/^Who is \w+\?\n$/);
    expect(await first.locator('mark.completion').textContent()).toMatch(/^\w+ is my best friend\.$/);
    await expect(page.getByText(/36 examples/).count()).resolves.toBe(1);
    await shot('2-data-preview');

    await page.getByRole('button', { name: 'Start training' }).click();
    await page.getByRole('progressbar', { name: 'Training progress' }).waitFor();
    const status = page.getByRole('status').filter({ hasText: 'Training complete' });
    await status.waitFor({ timeout: 240_000 });
    const text = (await status.textContent())!;
    const [, trainLoss, valLoss] = /train loss (\d+\.\d+), validation loss (\d+\.\d+)/.exec(text)!;
    await shot('3-training-complete');
    await page.setViewportSize({ width: 390, height: 844 });
    await page.emulateMedia({ colorScheme: 'dark' });
    await shot('3-training-complete-phone-dark');
    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize({ width: 1280, height: 800 });
    // The built site runs under its Content-Security-Policy, and nothing it does is blocked by it.
    const response = await page.request.get(`${harness.baseUrl}/`);
    expect(response.headers()['content-security-policy']).toMatch(
      /script-src 'self' blob: 'wasm-unsafe-eval' 'unsafe-eval';/,
    );
    expect(harness.cspViolations).toEqual([]);
    // The untrained model's loss on these answers is above 4 (see tests/train.test.ts); training must cut it.
    expect(Number(trainLoss)).toBeLessThan(2);
    expect(Number(valLoss)).toBeLessThan(2.5);
  });

  it('trains on WebGPU when chosen, flagging the software adapter', async () => {
    const { page } = harness;
    await page.goto(`${harness.baseUrl}/?model=/models/stories260K`);
    await page.getByText('260K parameters').waitFor({ timeout: 60_000 });
    await page.getByLabel('Dataset file').setInputFiles(dataFile('best-friends.csv'));
    await page.getByText('What the model will see').waitFor();
    await page.getByText('Advanced').click();
    await page.getByLabel('Backend').selectOption('webgpu');
    // Automatic leaves recomputing off for a model this small; turned on, the estimate follows and the
    // run recomputes its layers on WebGPU.
    const memoryHint = page.getByText(/Training this model needs about/);
    await expect(memoryHint.textContent()).resolves.toMatch(/activations kept\)/);
    await page.getByLabel('Recompute activations').selectOption('on');
    await expect.poll(() => memoryHint.textContent()).toMatch(/activations recomputed\)/);
    await page.getByLabel('Epochs').fill('1');
    await page.getByRole('button', { name: 'Start training' }).click();
    await page.getByText('Compute: webgpu (software adapter: slow)').waitFor({ timeout: 30_000 });
    const status = page.getByRole('status').filter({ hasText: 'Training complete' });
    await status.waitFor({ timeout: 280_000 });
    await shot('4-webgpu-training-complete');
    expect(harness.cspViolations).toEqual([]);
    const [, trainLoss] = /train loss (\d+\.\d+)/.exec((await status.textContent())!)!;
    // One epoch from a fresh adapter: clearly below the untrained loss of about 4.4.
    expect(Number(trainLoss)).toBeLessThan(3.5);
  });

  it('says what is wrong with a malformed file, and guesses two columns, which the person can change', async () => {
    const { page } = harness;
    await page.goto(`${harness.baseUrl}/?model=/models/stories260K`);
    await page.getByText('260K parameters').waitFor({ timeout: 60_000 });
    const input = page.getByLabel('Dataset file');
    const bad =
      '{"prompt": "a", "completion": "b"}\n{"prompt": "c", "completion": "d"}\n{"prompt": "e", completion: f}\n';
    await input.setInputFiles({
      name: 'broken.jsonl',
      mimeType: 'application/jsonl',
      buffer: Buffer.from(bad),
    });
    const alert = page.getByRole('alert').filter({ hasText: /line 3/i });
    await alert.waitFor();
    await shot('5-malformed-file');

    const csv =
      'ticket,team\nMy card was charged twice.,billing\nThe app crashes on start.,tech\nWhere is my parcel?,shipping\n';
    await input.setInputFiles({ name: 'tickets.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    // Names that say nothing: webtune guesses (three different teams are no labels yet, so by the column
    // order) and offers the columns to change it.
    await page.getByText('Guessed: ticket is the prompt, team the answer').waitFor();
    await page.getByLabel('Prompt column').selectOption('ticket');
    await page.getByLabel('Completion column').selectOption('team');
    await page.getByRole('button', { name: 'Use these columns' }).click();
    await page.getByText('What the model will see').waitFor();
    expect(await page.locator('.preview mark.completion').allTextContents()).toEqual(
      expect.arrayContaining(['billing']),
    );
    await shot('6-columns-chosen');

    // Datasets stay on the device across a reload, and can be deleted; the broken file was never stored.
    await page.reload();
    await page.getByText('260K parameters').waitFor({ timeout: 60_000 });
    await page.getByText(/Your datasets on this device/).click();
    const list = page.locator('.saved-datasets li');
    await expect(list.filter({ hasText: 'tickets.csv' }).count()).resolves.toBe(1);
    await expect(list.filter({ hasText: 'broken.jsonl' }).count()).resolves.toBe(0);
    // Reopened with the columns chosen before the reload.
    await list.filter({ hasText: 'tickets.csv' }).getByRole('button', { name: 'Open' }).click();
    await page.locator('.preview mark.completion', { hasText: 'billing' }).waitFor();
    page.once('dialog', (dialog) => void dialog.accept());
    await page.getByRole('button', { name: 'Delete tickets.csv' }).click();
    await list.filter({ hasText: 'tickets.csv' }).waitFor({ state: 'detached' });
  });

  it('loads a model from its files dropped on the page', async () => {
    const { page } = harness;
    await page.goto(`${harness.baseUrl}/`);
    const files = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors'].map(
      (name) => ({
        name,
        base64: fs.readFileSync(path.join(modelDir('stories260K-chat'), name)).toString('base64'),
      }),
    );
    const transfer = await page.evaluateHandle((list) => {
      const data = new DataTransfer();
      for (const { name, base64 } of list)
        data.items.add(new File([Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))], name));
      return data;
    }, files);
    await page.dispatchEvent('main', 'drop', { dataTransfer: transfer });
    await page.getByText('has a chat template').waitFor({ timeout: 60_000 });
    expect(await page.getByText('260K parameters').count()).toBe(1);
  });

  it('pauses between steps and resumes to completion', async () => {
    const { page } = harness;
    await page.goto(`${harness.baseUrl}/?model=/models/stories260K`);
    await page.getByText('260K parameters').waitFor({ timeout: 60_000 });
    await page.getByLabel('Dataset file').setInputFiles(dataFile('animal-sounds.jsonl'));
    await page.getByText('What the model will see').waitFor();
    await page.getByLabel('Epochs').fill('30');
    await page.getByRole('button', { name: 'Start training' }).click();
    // A few steps in (read from the progress bar, which no step can skip past as a text match could).
    await expect
      .poll(async () => (await progressOf(page)).value, { timeout: 60_000 })
      .toBeGreaterThanOrEqual(3);
    await page.getByRole('button', { name: 'Pause' }).click();
    const paused = page.getByRole('status').filter({ hasText: 'Paused after step' });
    await paused.waitFor();
    const pausedAt = Number(/step (\d+)/.exec((await paused.textContent())!)![1]);
    expect((await progressOf(page)).value).toBe(pausedAt);
    // The run's loop has ended rather than merely gone quiet: Pause is gone, Resume offered, and the
    // checkpoint the worker writes once the loop has returned holds that same step. Then the bar still does.
    await page.getByRole('button', { name: 'Pause' }).waitFor({ state: 'detached' });
    await page.getByRole('button', { name: 'Resume' }).waitFor();
    await expect(checkpointSteps(page)).resolves.toEqual([pausedAt]);
    expect((await progressOf(page)).value).toBe(pausedAt);
    await shot('7-paused');
    await page.getByRole('button', { name: 'Resume' }).click();
    const done = page.getByRole('status').filter({ hasText: 'Training complete' });
    await done.waitFor({ timeout: 120_000 });
    const { value, max } = await progressOf(page);
    expect(value).toBe(max);
  });

  it('resumes after a reload from the last checkpoint to the result an uninterrupted run reaches', async () => {
    const { page } = harness;
    const train = async () => {
      await page.goto(`${harness.baseUrl}/?model=/models/stories260K`);
      await page.getByText('260K parameters').waitFor({ timeout: 60_000 });
      await page.getByLabel('Dataset file').setInputFiles(dataFile('best-friends.csv'));
      await page.getByText('What the model will see').waitFor();
      await page.getByLabel('Epochs').fill('8');
      await page.getByLabel('Learning rate').fill('0.01');
      await page.getByRole('button', { name: 'Start training' }).click();
    };
    const finalStatus = async () => {
      const status = page.getByRole('status').filter({ hasText: 'Training complete' });
      await status.waitFor({ timeout: 240_000 });
      return (await status.textContent())!;
    };
    await train();
    const uninterrupted = await finalStatus();

    await train();
    // Checkpoints are saved every 5 steps: wait until the second one is in the database, then reload mid-run.
    await expect
      .poll(async () => Math.max(0, ...(await checkpointSteps(page))), { timeout: 60_000 })
      .toBeGreaterThanOrEqual(10);
    await page.reload();
    const offer = page.getByRole('region', { name: 'Unfinished training run' });
    await offer.waitFor();
    // A checkpoint (a multiple of 5), at least the second, and short of the end.
    const [, savedAt] = /saved at step (\d+) of 64/.exec((await offer.textContent()) ?? '') ?? [];
    expect(Number(savedAt) % 5).toBe(0);
    expect(Number(savedAt)).toBeGreaterThanOrEqual(10);
    expect(Number(savedAt)).toBeLessThan(64);
    await shot('8-resume-offer');
    await page.getByRole('button', { name: 'Resume training' }).click();
    const resumed = await finalStatus();
    await shot('9-resumed-complete');
    expect(resumed).toBe(uninterrupted);
    // Once finished, nothing is left to resume.
    await page.reload();
    await page.getByText('260K parameters').waitFor({ timeout: 60_000 });
    expect(await page.getByRole('region', { name: 'Unfinished training run' }).count()).toBe(0);
  });
});
