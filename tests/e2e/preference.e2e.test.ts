// Preference tuning through the page, as a person does it: happy-endings.csv (each story with a happy ending
// chosen and a sad one rejected) is dropped, detected as pairs and previewed with the chosen answer in green
// and the rejected one in red; DPO is chosen and trained on stories260K; the chart shows reward accuracy,
// and the Evaluate step finds the fine-tuned model preferring the chosen endings of the held-out pairs more
// often than the base model. A second run, reloaded mid-way and resumed, ends on the same losses.
import fs from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { dataFile } from '../helpers/shared';
import { checkpointSteps, dropFile, SCREENSHOTS, useHarness } from './browser';

const CSV = fs.readFileSync(dataFile('happy-endings.csv'), 'utf8');
/** The file's rows, split here (no cell holds a comma or a quote). */
const ROWS = CSV.trim()
  .split('\n')
  .slice(1)
  .map((line) => line.split(','));

/** The settings tests/data-pairs.test.ts trains this file with: 3 epochs of 4 steps. */
async function chooseDpo(page: Page): Promise<void> {
  const train = page.locator('section[aria-labelledby="train-heading"]');
  await train.getByLabel('Preferences (DPO)').check();
  await train.getByLabel('Epochs').fill('3');
  await train.getByLabel('Learning rate').fill('0.005');
  await train.getByText('Advanced').click();
  await train.getByLabel('Rank').fill('8');
  await train.getByLabel('Alpha').fill('16');
  await train.getByLabel('Dropout').fill('0');
  await train.getByLabel('Batch size').fill('4');
  for (const target of ['q_proj', 'k_proj', 'v_proj', 'o_proj'])
    await train.getByLabel(target, { exact: true }).check();
  for (const target of ['gate_proj', 'up_proj', 'down_proj'])
    await train.getByLabel(target, { exact: true }).uncheck();
  await train.getByLabel('Seed').fill('11');
  await train.getByLabel('Seed').dispatchEvent('change');
  await page.getByLabel(/Validation split/).fill('0.25');
  await page.getByLabel(/Validation split/).dispatchEvent('change');
  await page.getByText(/15 for training, 5 for validation/).waitFor({ timeout: 30_000 });
}

async function open(page: Page, baseUrl: string): Promise<void> {
  await page.goto(`${baseUrl}/?model=/models/stories260K`);
  await page.getByText('260K parameters').waitFor({ timeout: 60_000 });
  await dropFile(page, 'happy-endings.csv', CSV);
  await page.getByText('Detected: preference pairs, 20 rows').waitFor({ timeout: 30_000 });
}

async function finalStatus(page: Page): Promise<string> {
  const status = page.getByRole('status').filter({ hasText: 'Training complete' });
  await status.waitFor({ timeout: 240_000 });
  return (await status.textContent())!;
}

describe('preference pairs on the page', () => {
  const harness = useHarness({ fresh: true });
  const element = (page: Page, selector: string, name: string) =>
    page
      .locator(selector)
      .first()
      .screenshot({ path: path.join(SCREENSHOTS, `${name}.png`) });

  it('previews pairs, trains DPO, charts reward accuracy, evaluates, and resumes after a reload', async () => {
    const { page, baseUrl } = harness;
    // Column names no layout knows: the person reads the rows as pairs by choosing the three columns.
    await page.goto(`${baseUrl}/?model=/models/stories260K`);
    await page.getByText('260K parameters').waitFor({ timeout: 60_000 });
    await dropFile(
      page,
      'mine.csv',
      'story,good,bad\nTom took a ball.,He smiled.,He cried.\nAnn ran.,She won.,She fell.\nMax sat.,He sat.,He sat.\n',
    );
    await page.getByLabel('Prompt of the pair').selectOption('story');
    await page.getByLabel('Chosen answer').selectOption('good');
    await page.getByLabel('Rejected answer').selectOption('bad');
    await page.getByRole('button', { name: 'Read the rows as pairs' }).click();
    await expect
      .poll(() => page.locator('.preview.pairs mark.rejected').allTextContents(), { timeout: 30_000 })
      .toEqual(['He cried.', 'She fell.']);
    // A row that teaches no preference is listed with its line and why.
    await page
      .getByRole('note', { name: 'Rows left out' })
      .getByText(
        'Line 4: the chosen and the rejected answer are the same ("He sat."), so the pair teaches no',
      )
      .waitFor();

    await open(page, baseUrl);
    const data = page.locator('section[aria-labelledby="data-heading"]');
    await data.getByText(/20 rows, 20 pairs, \d+ tokens/).waitFor({ timeout: 30_000 });
    // Each previewed prompt with its chosen answer (green) and its rejected one (red), from the file.
    const items = data.locator('.preview.pairs li');
    await expect(items.count()).resolves.toBe(5);
    for (let i = 0; i < 5; i++) {
      const prompt = (await items.nth(i).locator('.context').first().textContent())!;
      const row = ROWS.find((r) => prompt.includes(r[0]));
      expect(row, prompt).toBeDefined();
      await expect(items.nth(i).locator('mark.chosen').textContent()).resolves.toBe(row![1]);
      await expect(items.nth(i).locator('mark.rejected').textContent()).resolves.toBe(row![2]);
    }
    const green = await data
      .locator('mark.chosen')
      .first()
      .evaluate((m) => getComputedStyle(m).backgroundColor);
    const red = await data
      .locator('mark.rejected')
      .first()
      .evaluate((m) => getComputedStyle(m).backgroundColor);
    expect([green, red]).toEqual(['rgb(187, 247, 208)', 'rgb(254, 202, 202)']);
    await element(page, 'section[aria-labelledby="data-heading"]', 'preference-1-data-pairs');

    // The Train step offers preferences for pairs; choosing DPO moves the preset's learning rate to a tenth.
    const lr = page.getByLabel('Learning rate');
    const sftRate = Number(await lr.inputValue());
    await page.getByLabel('Preferences (DPO)').check();
    await expect.poll(async () => Number(await lr.inputValue())).toBeCloseTo(sftRate / 10, 10);
    await page.getByLabel(/β/).waitFor();
    await element(page, 'fieldset.objective', 'preference-2-objective');
    await chooseDpo(page);
    await page.getByRole('button', { name: 'Start training' }).click();
    const uninterrupted = await finalStatus(page);
    const rewards = page.getByTestId('reward-accuracy');
    const [, heldOut] = /held-out pairs (\d+)%/.exec((await rewards.textContent())!)!;
    expect(Number(heldOut)).toBeGreaterThanOrEqual(80);
    await element(
      page,
      'section[aria-labelledby="train-heading"] .progress-pane',
      'preference-3-reward-chart',
    );

    const section = page.locator('section[aria-labelledby="evaluate-heading"]');
    const evaluate = section.getByRole('button', { name: 'Evaluate', exact: true });
    // No general text (what the model forgot): the pairs' figures are what this test is about.
    await section.getByText('General text').click();
    await section.getByLabel('Text the adapter was not trained on').fill('');
    await expect.poll(() => evaluate.isEnabled(), { timeout: 30_000 }).toBe(true);
    await evaluate.click();
    const figures = section.getByRole('table', { name: 'Evaluation figures' });
    await figures.waitFor({ timeout: 180_000 });
    const preferred = figures.locator('tbody tr').filter({ hasText: 'Chosen answer preferred' });
    const [base, fewShot, tuned] = (await preferred.locator('td').allTextContents()).map((t) => t.trim());
    expect(fewShot).toBe('–');
    // The chosen endings repeat, but they are answers, not labels to classify.
    await expect(figures.locator('tbody th').allTextContents()).resolves.not.toContainEqual(
      expect.stringContaining('Label accuracy'),
    );
    expect(Number.parseInt(tuned)).toBeGreaterThan(Number.parseInt(base));
    await expect(section.getByText(/Evaluated on the 5 rows this adapter held out/).count()).resolves.toBe(1);
    await element(page, 'section[aria-labelledby="evaluate-heading"]', 'preference-4-evaluate');
    await page.setViewportSize({ width: 390, height: 844 });
    await page.emulateMedia({ colorScheme: 'dark' });
    await element(page, 'section[aria-labelledby="evaluate-heading"]', 'preference-4-evaluate-phone-dark');
    await element(page, 'section[aria-labelledby="data-heading"]', 'preference-1-data-pairs-phone-dark');
    await element(page, 'fieldset.objective', 'preference-2-objective-phone-dark');
    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize({ width: 1280, height: 800 });

    // The same run again, reloaded once its first checkpoint is stored, resumes to the same losses.
    await open(page, baseUrl);
    await chooseDpo(page);
    await page.getByRole('button', { name: 'Start training' }).click();
    await expect
      .poll(async () => Math.max(0, ...(await checkpointSteps(page))), { timeout: 60_000 })
      .toBeGreaterThanOrEqual(5);
    await page.reload();
    const offer = page.getByRole('region', { name: 'Unfinished training run' });
    await offer.waitFor();
    const [, savedAt] = /saved at step (\d+) of 12/.exec((await offer.textContent()) ?? '') ?? [];
    expect(Number(savedAt)).toBeGreaterThanOrEqual(5);
    expect(Number(savedAt)).toBeLessThan(12);
    await page.getByRole('button', { name: 'Resume training' }).click();
    const resumed = await finalStatus(page);
    await expect(page.getByLabel('Preferences (DPO)').isChecked()).resolves.toBe(true);
    expect(resumed).toBe(uninterrupted);
    expect(harness.cspViolations).toEqual([]);
  }, 600_000);
});
