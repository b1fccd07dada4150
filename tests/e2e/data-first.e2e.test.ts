// Data before the model: a dataset dropped while the model is still downloading is previewed and stored at
// once; its tokens are counted as soon as the model is in, and it trains with no further click on the data.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { dataFile } from '../helpers/shared';
import { dropFile, useHarness } from './browser';

describe('a dataset dropped before the model has loaded', () => {
  const harness = useHarness();
  const shot = harness.shot;

  it('is previewed and stored at once, counted when the model arrives, and trains', async () => {
    const { page } = harness;
    // Hold the weights back until the preview has been checked, so the model is certainly not loaded yet.
    let release!: () => void;
    const weightsHeld = new Promise<void>((resolve) => (release = resolve));
    let weightsRequested = false;
    await page.context().route('**/models/stories260K/model.safetensors', async (route) => {
      weightsRequested = true;
      await weightsHeld;
      await route.continue();
    });

    // Every message to the worker, by type, with the size of any file it carries.
    await page.addInitScript(() => {
      const sent: { type: string; bytes: number }[] = [];
      Object.assign(window, { sentToWorker: sent });
      const post = Worker.prototype.postMessage;
      Worker.prototype.postMessage = function (
        this: Worker,
        message: { type: string; params?: { bytes?: Uint8Array } },
        ...rest: [StructuredSerializeOptions?]
      ) {
        sent.push({ type: message.type, bytes: message.params?.bytes?.byteLength ?? 0 });
        return post.call(this, message, ...rest);
      } as Worker['postMessage'];
    });
    const datasetMessages = () =>
      page.evaluate(() =>
        (window as unknown as { sentToWorker: { type: string; bytes: number }[] }).sentToWorker.filter((m) =>
          /Dataset$/.test(m.type),
        ),
      );

    await page.goto(`${harness.baseUrl}/?model=/models/stories260K`);
    const csv = fs.readFileSync(dataFile('best-friends.csv'), 'utf8');
    await dropFile(page, 'best-friends.csv', csv);

    await page.getByText('What the model will see').waitFor();
    expect(await page.getByText('260K parameters').count()).toBe(0);
    const first = page.locator('.preview li').first();
    expect(await first.locator('.context').textContent()).toMatch(/^Who is \w+\?\n$/);
    expect(await first.locator('mark.completion').textContent()).toMatch(/^\w+ is my best friend\.$/);
    expect(await page.locator('.preview li').count()).toBe(5);
    await page.getByText('36 rows, 36 examples · 32 for training, 4 for validation').waitFor();
    await page.getByText('Tokens are counted as soon as the model has loaded').waitFor();
    expect(await page.getByRole('button', { name: 'Start training' }).isDisabled()).toBe(true);
    // Stored as soon as it parsed: nothing is lost if the page closes before the model loads.
    await page.getByText('Your datasets on this device (1)').waitFor();
    await shot('data-first-1-preview-before-model');

    // The worker's request for the weights is the one held (so the model could not have loaded).
    await expect.poll(() => weightsRequested, { timeout: 30_000 }).toBe(true);
    expect(await page.getByText('260K parameters').count()).toBe(0);
    release();
    await page.getByText('260K parameters').waitFor({ timeout: 60_000 });
    // No click: the model's tokenizer counts the tokens, and training can start.
    const stats = page.getByText(/36 rows, 36 examples, \d+ tokens/);
    await stats.waitFor({ timeout: 30_000 });
    expect(Number(/(\d+) tokens/.exec((await stats.textContent())!)![1])).toBeGreaterThan(36 * 5);
    expect(await page.getByText('Tokens are counted as soon as the model has loaded').count()).toBe(0);
    await shot('data-first-2-counted-after-model');

    // A change of settings sends the settings only; the file crossed once, and is stored once.
    await page.getByLabel(/Validation split/).fill('0.2');
    await page.getByLabel(/Validation split/).dispatchEvent('change');
    await page.getByText(/29 for training, 7 for validation/).waitFor();
    const size = Buffer.byteLength(csv);
    expect(await datasetMessages()).toEqual([
      { type: 'openDataset', bytes: size },
      { type: 'configureDataset', bytes: 0 },
      { type: 'configureDataset', bytes: 0 },
    ]);
    expect(await page.getByText('Your datasets on this device (1)').count()).toBe(1);

    await page.getByLabel('Epochs').fill('2');
    const start = page.getByRole('button', { name: 'Start training' });
    expect(await start.isEnabled()).toBe(true);
    await start.click();
    const status = page.getByRole('status').filter({ hasText: 'Training complete' });
    await status.waitFor({ timeout: 240_000 });
    expect(await status.textContent()).toMatch(/after 16 steps/);
    await shot('data-first-3-trained');
    await page.context().unroute('**/models/stories260K/model.safetensors');
  });
});
