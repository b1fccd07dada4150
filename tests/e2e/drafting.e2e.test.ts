// Questions drafted from a document on the page: a Markdown file dropped on the Data step offers "Draft
// questions"; the loaded model (stories260K-chat: it writes children's stories, so what is tested is the
// flow, not the questions) drafts chunk by chunk with progress and can be cancelled; the table is edited (a
// row added, changed, deleted, one unticked); "Save as dataset" stores the kept pairs as JSON Lines on the
// device, listed among the saved datasets and opened like a dropped file. Readable at phone width.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { chunkDocument } from '../../src/data/drafting';
import { dataFile } from '../helpers/shared';
import { dropFile, SCREENSHOTS, useHarness } from './browser';

const DOCUMENT = fs.readFileSync(dataFile('lamp-manual.md'), 'utf8');
const CHUNKS = chunkDocument(DOCUMENT, 600).length;

/** The stored files of the saved datasets, by name, read from the page's database as text. */
function storedFiles(page: import('playwright-core').Page): Promise<Record<string, string>> {
  return page.evaluate(
    () =>
      new Promise<Record<string, string>>((resolve, reject) => {
        const open = indexedDB.open('webtune');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const tx = open.result.transaction(['datasets', 'datasetFiles']);
          const summaries = tx.objectStore('datasets').getAll();
          const files = tx.objectStore('datasetFiles').getAll();
          tx.oncomplete = () => {
            open.result.close();
            const bytes = new Map(
              (files.result as { id: string; bytes: Uint8Array }[]).map((f) => [f.id, f.bytes]),
            );
            const named = (summaries.result as { id: string; name: string }[]).map((s) => [
              s.name,
              new TextDecoder().decode(bytes.get(s.id)),
            ]);
            resolve(Object.fromEntries(named));
          };
          tx.onerror = () => reject(tx.error);
        };
      }),
  );
}

describe('drafting questions from a document', () => {
  const harness = useHarness({ fresh: true });

  it('drafts, is edited, and is saved and opened as a dataset', async () => {
    const { page } = harness;
    await page.goto(`${harness.baseUrl}/?model=/models/stories260K-chat`);
    await page.getByText('has a chat template').waitFor({ timeout: 60_000 });
    await dropFile(page, 'lamp-manual.md', DOCUMENT, 'text/markdown');

    const draft = page.getByRole('region', { name: 'Draft questions from this document' });
    await draft.waitFor();
    await draft.getByText('A small model drafts weak questions').waitFor();
    await draft.getByText('nothing is sent anywhere').waitFor();
    await draft.getByLabel('Chunk size (characters)').fill('600');

    // As many tokens as the model has room for: slow enough to cancel while it writes.
    await draft.getByLabel('Most tokens per chunk').fill('2048');
    await draft.getByRole('button', { name: 'Draft questions' }).click();
    const progress = draft.getByRole('status').filter({ hasText: /Chunk \d of \d · \d+ tokens written/ });
    await progress.waitFor();
    expect(await progress.textContent()).toMatch(new RegExp(`Chunk 1 of ${CHUNKS}`));
    await draft.getByRole('button', { name: 'Cancel' }).click();
    await draft
      .getByRole('status')
      .filter({ hasText: new RegExp(`^Cancelled after [0-${CHUNKS - 1}] of ${CHUNKS} chunks`) })
      .waitFor({ timeout: 60_000 });

    // To its end, with a few tokens a chunk.
    await draft.getByLabel('Most tokens per chunk').fill('16');
    await draft.getByRole('button', { name: 'Draft questions' }).click();
    const done = draft.getByRole('status').filter({ hasText: /^Drafted \d+ pairs? from \d+ chunks/ });
    await done.waitFor({ timeout: 120_000 });
    expect(await done.textContent()).toContain(`from ${CHUNKS} chunks`);
    // What a story model writes holds no pairs: the page shows what it wrote instead.
    const drafted = Number(/Drafted (\d+)/.exec((await done.textContent())!)![1]);
    if (drafted < CHUNKS) await draft.getByText(/^No pair could be read in \d+ chunks?/).waitFor();

    // Whatever it drafted is deleted; three rows are written by hand, one changed, one deleted, one unticked.
    while ((await draft.getByRole('button', { name: /^Delete row/ }).count()) > 0)
      await draft.getByRole('button', { name: 'Delete row 1' }).click();
    for (let i = 0; i < 4; i++) await draft.getByRole('button', { name: 'Add a row' }).click();
    const pairs = [
      ['How do you switch the lamp on?', 'Touch the ring once.'],
      ['What does a warm light suit?', 'Reading late in the evening.'],
      ['How long does charging take?', 'Two and a half hours.'],
      ['Can you clean it with water?', 'No.'],
    ];
    for (const [i, [question, answer]] of pairs.entries()) {
      await draft.getByLabel(`Question ${i + 1}`).fill(question);
      await draft.getByLabel(`Answer ${i + 1}`).fill(answer);
    }
    await draft.getByLabel('Answer 1').fill('Touch the ring on the base once.');
    await draft.getByRole('button', { name: 'Delete row 2' }).click();
    await draft.getByLabel('Keep row 3').uncheck();
    await draft.getByText('3 pairs, 2 kept').waitFor();
    expect(await draft.getByLabel('Question 2').inputValue()).toBe('How long does charging take?');

    // An emptied answer is named before anything is saved.
    await draft.getByLabel('Answer 2').fill('');
    await draft.getByRole('button', { name: 'Save as dataset' }).click();
    await draft
      .getByRole('alert')
      .filter({ hasText: 'Row 2 has no answer. Write one, or delete the row (or untick Keep).' })
      .waitFor();
    await draft.getByLabel('Answer 2').fill('Two and a half hours.');

    // Readable at phone width: nothing wider than the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    await draft.scrollIntoViewIfNeeded();
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await draft.screenshot({ path: path.join(SCREENSHOTS, 'drafting-1-phone.png') });
    await page.setViewportSize({ width: 1280, height: 900 });
    await harness.shot('drafting-2-table');

    await draft.getByRole('button', { name: 'Save as dataset' }).click();
    const data = page.locator('section[aria-labelledby="data-heading"]');
    await data
      .getByText(/lamp-manual-questions\.jsonl: 2 rows, 2 examples, \d+ tokens/)
      .waitFor({ timeout: 30_000 });
    // Opened as a dropped file is: the layout detected, the first pair previewed with its answer trained on.
    expect(await data.getByLabel('Prompt template').inputValue()).toBe('{prompt}');
    expect(await data.getByLabel('Completion template').inputValue()).toBe('{completion}');
    const first = data.locator('.preview li').first();
    expect(await first.locator('mark.completion').textContent()).toContain(
      'Touch the ring on the base once.',
    );
    expect(await draft.count()).toBe(0); // the open file is no longer a document

    // Kept on this device, listed among the saved datasets, and it is the open one.
    const saved = data.locator('details.saved-datasets');
    await saved.locator('summary').click();
    const item = saved.locator('li', { hasText: 'lamp-manual-questions.jsonl' });
    await item.waitFor();
    expect(await item.getByRole('button', { name: 'Open' }).isDisabled()).toBe(true);
    const stored = await storedFiles(page);
    expect(
      stored['lamp-manual-questions.jsonl']
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as unknown),
    ).toEqual([
      { prompt: 'How do you switch the lamp on?', completion: 'Touch the ring on the base once.' },
      { prompt: 'How long does charging take?', completion: 'Two and a half hours.' },
    ]);
    await harness.shot('drafting-3-saved');
  }, 300_000);
});
