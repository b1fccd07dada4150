/**
 * A record in the adapter library that no webtune version would write (an old bug, a hostile import,
 * a hand-edited database) is shown with its odd values left out; the page and its other sections work.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SCREENSHOTS, useHarness } from './browser';

describe('the adapter library with a corrupt record', () => {
  const harness = useHarness();

  it('lists it without the odd values, and every section still renders', async () => {
    const { page } = harness;
    await page.goto(`${harness.baseUrl}/?model=/models/stories260K`);
    await page.getByText('260K parameters').waitFor({ timeout: 60_000 });
    // Written straight into the page's database, as no webtune version would.
    await page.evaluate(
      () =>
        new Promise<void>((resolve, reject) => {
          const open = indexedDB.open('webtune');
          open.onerror = () => reject(open.error);
          open.onsuccess = () => {
            const tx = open.result.transaction(['adapters', 'adapterZips'], 'readwrite');
            tx.objectStore('adapters').put({
              id: 'corrupt',
              name: 'odd record',
              createdAt: Date.now(),
              byteLength: 4,
              modelName: 5,
              datasetId: '',
              datasetName: null,
              settings: { rank: 'eight', targets: 5 },
              trainLoss: 'low',
              valLoss: null,
              origin: 'imported',
              promptStyle: 7,
              lossHistory: [
                { step: 1, loss: 2 },
                { step: 1, loss: 2 },
                { step: 2, loss: null },
                { step: 3, loss: 1.5 },
              ],
            });
            tx.objectStore('adapterZips').put({ id: 'corrupt', zip: new Uint8Array([80, 75, 3, 4]) });
            tx.oncomplete = () => resolve();
            tx.onerror = () => reject(tx.error);
          };
        }),
    );
    await page.reload();
    await page.getByText('260K parameters').waitFor({ timeout: 60_000 });
    const entry = page.getByRole('listitem', { name: 'Adapter odd record' });
    await entry.waitFor();
    await expect(entry.textContent()).resolves.not.toMatch(/low|eight|NaN|undefined/);
    await expect(page.getByText('This part of the page stopped working').count()).resolves.toBe(0);
    for (const heading of [
      '1 · Model',
      '2 · Data',
      '3 · Train',
      '4 · Evaluate',
      '5 · Compare',
      '6 · Export',
    ]) {
      await expect(page.getByRole('heading', { name: heading, exact: true }).count(), heading).resolves.toBe(
        1,
      );
    }
    await page.screenshot({ path: path.join(SCREENSHOTS, '13-corrupt-library-record.png'), fullPage: true });
  });
});
