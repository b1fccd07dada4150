// A workbook dropped on the page, as a person drops one: its reader (a chunk of its own) is fetched only
// then, the first sheet is previewed, the sheet picker lists the sheets, and picking the second shows its
// rows, as LibreOffice shows them (fixtures/data/sheets.xlsx-Tickets.csv). Reopened from the device, the
// dataset keeps the sheet chosen.
import fs from 'node:fs';
import Papa from 'papaparse';
import { describe, expect, it } from 'vitest';
import { dataFile } from '../helpers/shared';
import { useHarness } from './browser';

describe('a spreadsheet workbook dropped on the page', () => {
  const harness = useHarness({ fresh: true });

  it('opens its first sheet, and the picker opens the second, which reopening keeps', async () => {
    const { page } = harness;
    const scripts: string[] = [];
    page.on('request', (request) => {
      if (request.url().endsWith('.js')) scripts.push(request.url());
    });
    await page.goto(`${harness.baseUrl}/?model=/models/stories260K`);
    await page.getByText('260K parameters').waitFor({ timeout: 60_000 });
    await page.getByText('Drop a CSV, TSV, JSONL or JSON file of examples here').waitFor();
    const readerChunk = () => scripts.filter((url) => /\/spreadsheet-[\w-]+\.js$/.test(url));
    expect(readerChunk()).toEqual([]);

    const bytes = fs.readFileSync(dataFile('sheets.xlsx')).toString('base64');
    const transfer = await page.evaluateHandle((base64) => {
      const data = new DataTransfer();
      const binary = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      data.items.add(new File([binary], 'sheets.xlsx', { type: 'application/vnd.ms-excel' }));
      return data;
    }, bytes);
    await page.dispatchEvent('main', 'dragover', { dataTransfer: transfer });
    await page.dispatchEvent('main', 'drop', { dataTransfer: transfer });

    const data = page.locator('section[aria-labelledby="data-heading"]');
    await data.getByText('What the model will see').waitFor({ timeout: 30_000 });
    expect(readerChunk()).toHaveLength(1);
    const sheet = data.getByRole('combobox', { name: 'Sheet', exact: true });
    expect(await sheet.inputValue()).toBe('Questions');
    expect(await sheet.locator('option').allTextContents()).toEqual(['Questions', 'Tickets', 'Empty']);
    expect(await data.locator('.preview').textContent()).toContain('What is the capital of France?');

    await sheet.selectOption('Tickets');
    const tickets = Papa.parse<string[]>(fs.readFileSync(dataFile('sheets.xlsx-Tickets.csv'), 'utf8'), {
      skipEmptyLines: true,
    }).data.slice(1);
    await data.getByText(`sheets.xlsx: ${tickets.length} rows`).waitFor({ timeout: 30_000 });
    const preview = (await data.locator('.preview').textContent()) ?? '';
    for (const [ticket, department] of tickets) {
      expect(preview).toContain(ticket);
      expect(preview).toContain(department);
    }
    await harness.shot('spreadsheet-1-second-sheet');

    // The empty sheet says so, and the picker stays to choose another.
    await sheet.selectOption('Empty');
    await data.getByText("The sheet 'Empty' is empty. Pick another sheet").waitFor({ timeout: 30_000 });
    await sheet.selectOption('Tickets');
    await data.getByText(`sheets.xlsx: ${tickets.length} rows`).waitFor({ timeout: 30_000 });

    // Reopened after a reload, from the datasets kept on this device: the chosen sheet again.
    await page.reload();
    await data.getByText('Your datasets on this device (1)').click();
    await data.getByRole('button', { name: 'Open', exact: true }).first().click();
    await data.getByText(`sheets.xlsx: ${tickets.length} rows`).waitFor({ timeout: 30_000 });
    expect(await data.getByRole('combobox', { name: 'Sheet', exact: true }).inputValue()).toBe('Tickets');

    // And the second sheet trains, to the end.
    await page.getByText('260K parameters').waitFor({ timeout: 60_000 });
    await page.getByLabel('Epochs').fill('1');
    await page.getByRole('button', { name: 'Start training' }).click();
    await page.getByRole('status').filter({ hasText: 'Training complete' }).waitFor({ timeout: 120_000 });
  });
});
