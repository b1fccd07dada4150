// Documents on the page, as a person does it: drop notes.md and garden-story.txt together, see them counted
// and cut into windows once the model is in (where each window starts, its overlap), train a few steps on
// stories260K, and read the held-out windows' perplexity before and after on the Evaluate step.
import fs from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { parseDocuments } from '../../src/data/document-files';
import { buildDocumentSplit, type TextMapping } from '../../src/data/documents';
import { detectLayout } from '../../src/data';
import { loadTokenizer } from '../fixtures/data/shared';
import { dataFile } from '../helpers/shared';
import { SCREENSHOTS, useHarness } from './browser';

const files = ['notes.md', 'garden-story.txt'].map((name) => ({
  name,
  text: fs.readFileSync(dataFile(name), 'utf8'),
}));

/** Drops several files at once, as a person dragging a selection from a file manager. */
async function dropFiles(page: Page, dropped: { name: string; text: string }[]): Promise<void> {
  const transfer = await page.evaluateHandle((list) => {
    const data = new DataTransfer();
    for (const { name, text } of list) data.items.add(new File([text], name, { type: 'text/plain' }));
    return data;
  }, dropped);
  await page.dispatchEvent('main', 'dragover', { dataTransfer: transfer });
  await page.dispatchEvent('main', 'drop', { dataTransfer: transfer });
}

describe('documents on the page', () => {
  const harness = useHarness();

  it('drops two files, shows their windows, trains, and evaluates the held-out perplexity', async () => {
    const { page } = harness;
    await page.goto(`${harness.baseUrl}/?model=/models/stories260K`);
    await page.getByText('260K parameters').waitFor({ timeout: 60_000 });
    await dropFiles(page, files);

    // The same windows as the data module cuts in Node with the page's defaults (max length 256, overlap 32,
    // a 0.1 split with seed 0).
    const dataset = parseDocuments(files);
    const split = buildDocumentSplit(
      dataset,
      detectLayout(dataset.columns) as TextMapping,
      loadTokenizer('stories260K'),
      {
        maxLength: 256,
        valSplit: 0.1,
        seed: 0,
      },
    );
    const chars = files.reduce((n, f) => n + f.text.length, 0).toLocaleString('en-US');
    const panel = page.getByLabel('Documents');
    await panel
      .getByText(
        `2 documents, ${chars} characters · ${split.windows.length} windows of at most 256 tokens (each repeating 32 of the one before), ${split.validation.length} held out`,
      )
      .waitFor({ timeout: 60_000 });
    const places = await panel.locator('.where').allTextContents();
    expect(places[0]).toMatch(/^notes\.md, tokens 1–\d+/);
    const [, end] = /tokens 1–(\d+)/.exec(places[0])!;
    expect(places[1]).toMatch(
      new RegExp(`^notes\\.md, tokens ${Number(end) + 1}–\\d+, after 32 tokens of overlap`),
    );
    await page
      .locator('section[aria-labelledby="data-heading"]')
      .screenshot({ path: path.join(SCREENSHOTS, 'documents-0-windows.png') });

    await page.getByLabel('Epochs').fill('4');
    await page.getByLabel('Learning rate').fill('0.01');
    await page.getByRole('button', { name: 'Start training' }).click();
    await page.getByRole('status').filter({ hasText: 'Training complete' }).waitFor({ timeout: 240_000 });

    const section = page.locator('section[aria-labelledby="evaluate-heading"]');
    const evaluate = section.getByRole('button', { name: 'Evaluate', exact: true });
    await expect.poll(() => evaluate.isEnabled(), { timeout: 30_000 }).toBe(true);
    await evaluate.click();
    const figures = section.getByRole('table', { name: 'Evaluation figures' });
    await figures.waitFor({ timeout: 180_000 });
    const rowNames = await figures
      .locator('tbody th')
      .evaluateAll((cells) => cells.map((c) => c.firstChild?.textContent ?? ''));
    expect(rowNames).toEqual([
      'Held-out perplexity',
      'Held-out loss',
      'Token accuracy',
      'General-text perplexity',
    ]);
    const headers = await figures.locator('thead th').allTextContents();
    expect(headers).toEqual(['Figure', 'Base model', 'Fine-tuned']);
    const [base, tuned] = await figures.locator('tbody tr').first().locator('td').allTextContents();
    expect(Number(tuned)).toBeLessThan(Number(base));
    // Perplexity is the exponential of the loss in the row below.
    const loss = await figures.locator('tbody tr').nth(1).locator('td').allTextContents();
    expect(Number(base)).toBeCloseTo(Math.exp(Number(loss[0])), 0);
    await section.getByText(/windows? of your text it was not trained on/).waitFor();
    expect(await section.getByRole('table', { name: 'Answers per example' }).count()).toBe(0);
    await section.screenshot({ path: path.join(SCREENSHOTS, 'documents-1-evaluate.png') });
  }, 600_000);
});
