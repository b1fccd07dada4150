// A large dataset on the page (issue 10, finding 4): while the worker tokenises it the data panel says
// "Preparing… N of M rows", Cancel stops it with a sentence saying how far it got, and the page goes on
// working (another file is prepared at once).
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { dataFile } from '../helpers/shared';
import { useHarness } from './browser';

const ROWS = 20_000;

describe('preparing a large dataset on the page', () => {
  const harness = useHarness();
  const shot = harness.shot;

  const drop = async (name: string, text: string | { rows: number }) => {
    const transfer = await harness.page.evaluateHandle(
      ({ name, text }) => {
        const body =
          typeof text === 'string'
            ? text
            : [
                'question,answer',
                ...Array.from(
                  { length: text.rows },
                  (_, i) =>
                    `Who is friend ${i}?,"Friend ${i} is ${'a very good friend who likes to play. '.repeat(10)}"`,
                ),
              ].join('\n');
        const data = new DataTransfer();
        data.items.add(new File([body], name, { type: 'text/csv' }));
        return data;
      },
      { name, text },
    );
    await harness.page.dispatchEvent('main', 'drop', { dataTransfer: transfer });
  };

  it('shows "Preparing… N of M rows" while it tokenises, and Cancel stops it', async () => {
    const { page } = harness;
    await page.goto(`${harness.baseUrl}/?model=/models/stories260K`);
    await page.getByText('260K parameters').waitFor({ timeout: 60_000 });

    await drop('many-friends.csv', { rows: ROWS });
    const status = page.getByText(/^Preparing… [\d,]+ of 20,000 rows/);
    await status.waitFor({ timeout: 30_000 });
    // It moves: some rows are done and more follow.
    await expect
      .poll(
        async () =>
          Number(
            /Preparing… ([\d,]+) of/.exec((await status.textContent()) ?? '')?.[1].replaceAll(',', '') ?? 0,
          ),
        { timeout: 30_000 },
      )
      .toBeGreaterThan(0);
    await shot('data-prepare-1-progress');

    await page.getByRole('button', { name: 'Cancel' }).click();
    const alert = page.getByRole('alert').filter({ hasText: 'Preparing the examples was cancelled after' });
    await alert.waitFor({ timeout: 10_000 });
    expect(await alert.textContent()).toMatch(/cancelled after [\d,]+ of 20,000 rows\./);
    expect(await page.getByText(/^Preparing…/).count()).toBe(0);
    await shot('data-prepare-2-cancelled');

    // The engine is free again: a small file is prepared and counted straight away.
    await drop('best-friends.csv', fs.readFileSync(dataFile('best-friends.csv'), 'utf8'));
    await page.getByText(/36 rows, 36 examples, \d+ tokens/).waitFor({ timeout: 30_000 });
    expect(await page.getByText('Preparing the examples was cancelled').count()).toBe(0);
    await shot('data-prepare-3-next-file');
  });
});
