// Evaluate, as a person does it: train on a small label dataset (support tickets → department), then
// press Evaluate and read base, base + 3 examples and fine-tuned side by side, with label accuracy and a
// confusion matrix; the loss chart marks the validation point whose weights the adapter keeps. Changing the
// validation split afterwards does not change which rows the adapter is evaluated on: the ones it held out.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { dataFile } from '../helpers/shared';
import { dropFile, SCREENSHOTS, useHarness } from './browser';

const departments = fs
  .readFileSync(dataFile('support-tickets.csv'), 'utf8')
  .trim()
  .split(/\r?\n/)
  .slice(1)
  .map((line) => line.split(',').at(-1)!.trim());

describe('the Evaluate step', () => {
  const harness = useHarness();

  it('shows base, few-shot and fine-tuned figures with label accuracy and a confusion matrix', async () => {
    const { page } = harness;
    await page.goto(`${harness.baseUrl}/?model=/models/stories260K`);
    await page.getByText('260K parameters').waitFor({ timeout: 60_000 });
    await dropFile(page, 'support-tickets.csv', fs.readFileSync(dataFile('support-tickets.csv'), 'utf8'));

    // ticket/department are not names of a known layout: webtune guesses department as the answer (a few
    // labels), and the person confirms the columns.
    await page.getByText('Guessed: ticket is the prompt, department the answer').waitFor();
    await page.getByLabel('Prompt column').selectOption('ticket');
    await page.getByLabel('Completion column').selectOption('department');
    await page.getByRole('button', { name: 'Use these columns' }).click();
    await page.getByLabel(/Validation split/).fill('0.25');
    await page.getByLabel(/Validation split/).dispatchEvent('change');
    await page.getByText(/12 for training, 4 for validation/).waitFor({ timeout: 30_000 });

    await page.getByLabel('Epochs').fill('15');
    await page.getByLabel('Learning rate').fill('0.01');
    await page.getByRole('button', { name: 'Start training' }).click();
    await page.getByRole('status').filter({ hasText: 'Training complete' }).waitFor({ timeout: 240_000 });
    // The chart marks the lowest validation loss: the weights the finished adapter keeps.
    await page.locator('section[aria-labelledby="train-heading"] svg circle.best').waitFor();
    const note = page.getByText(/lowest validation loss [\d.]+ at step\s+\d+: the weights the adapter keeps/);
    await note.waitFor();
    const bestLoss = Number(/loss ([\d.]+)/.exec((await note.textContent())!)![1]);
    await page
      .locator('section[aria-labelledby="train-heading"] figure')
      .screenshot({ path: path.join(SCREENSHOTS, 'evaluate-0-best-on-chart.png') });

    const section = page.locator('section[aria-labelledby="evaluate-heading"]');
    const evaluate = section.getByRole('button', { name: 'Evaluate', exact: true });
    await expect.poll(() => evaluate.isEnabled(), { timeout: 30_000 }).toBe(true);
    await evaluate.click();
    const figures = section.getByRole('table', { name: 'Evaluation figures' });
    await figures.waitFor({ timeout: 180_000 });

    const headers = await figures.locator('thead th').allTextContents();
    expect(headers).toEqual(['Figure', 'Base model', 'Base + 3 examples', 'Fine-tuned']);
    const rowNames = await figures
      .locator('tbody th')
      .evaluateAll((cells) => cells.map((c) => c.firstChild?.textContent ?? ''));
    expect(rowNames).toEqual([
      'Exact match',
      'Token accuracy',
      'Label accuracy',
      'Held-out loss',
      'General-text perplexity',
    ]);
    const label = await figures.locator('tbody tr').nth(2).locator('td').allTextContents();
    expect(label).toHaveLength(3);
    for (const cell of label) expect(cell).toMatch(/^\d+%$/);
    // The adapter evaluated is the one the chart marks: its held-out loss is that best validation loss.
    const heldOut = await figures.locator('tbody tr').nth(3).locator('td').allTextContents();
    expect(Number(heldOut[2])).toBeCloseTo(bestLoss, 1);
    await section.getByText('Evaluated on the 4 rows this adapter held out when it was trained').waitFor();

    // Four departments: the matrix has a row for each, and its counts add up to the examples.
    const matrix = section.getByRole('table', { name: 'Confusion matrix of the fine-tuned model' });
    const expectedRows = await matrix.locator('tbody th').allTextContents();
    expect(expectedRows).toEqual([...new Set(departments)].sort());
    const counts = (await matrix.locator('tbody td').allTextContents()).map(Number);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(4);

    // One row per example, an answer from each of the three, mismatches marked.
    const examples = section.getByRole('table', { name: 'Answers per example' });
    expect(await examples.locator('tbody tr').count()).toBe(4);
    expect(await examples.locator('tbody tr').first().locator('td').count()).toBe(5);
    const misses = await examples.locator('td.miss').count();
    expect(await examples.locator('td.miss [aria-label="differs"]').count()).toBe(misses);

    await section.screenshot({ path: path.join(SCREENSHOTS, 'evaluate-1-section.png') });
    await harness.shot('evaluate-2-page');

    // The figures are kept with the adapter in the library, and stay after a reload.
    const tokens = await figures.locator('tbody tr').nth(1).locator('td').allTextContents();
    const line = `Evaluated on the 4 rows this adapter held out when it was trained: label accuracy ${label[2]} (base ${label[0]}, 3-shot ${label[1]}), token accuracy ${tokens[2]}`;
    const library = page.locator('section[aria-labelledby="library-heading"]');
    await library.getByText(line).waitFor({ timeout: 30_000 });

    // Another split now holds out 8 rows, 4 of them trained on: the adapter is still scored on its own 4.
    await page.getByLabel(/Validation split/).fill('0.5');
    await page.getByLabel(/Validation split/).dispatchEvent('change');
    await page.getByText(/8 for training, 8 for validation/).waitFor({ timeout: 30_000 });
    await expect.poll(() => evaluate.isEnabled(), { timeout: 30_000 }).toBe(true);
    await evaluate.click();
    await expect.poll(() => evaluate.isEnabled(), { timeout: 180_000 }).toBe(true);
    expect(await examples.locator('tbody tr').count()).toBe(4);
    await section.getByText('Evaluated on the 4 rows this adapter held out when it was trained').waitFor();
    const again = await figures.locator('tbody tr').nth(3).locator('td').allTextContents();
    expect(again).toEqual(heldOut);
    await library.getByText(line).waitFor({ timeout: 30_000 });
    await page.reload();
    await library.getByText(line).waitFor({ timeout: 60_000 });
    expect(await library.locator('p.evaluated').count()).toBe(1);
    await library.screenshot({ path: path.join(SCREENSHOTS, 'evaluate-3-library.png') });
  }, 600_000);
});
