/**
 * Spreadsheet workbooks read like a CSV. The workbooks in fixtures/data were written by openpyxl and saved
 * again by LibreOffice (fixtures/data/make_spreadsheets.py); what each cell should read is what LibreOffice
 * shows in it, from its own CSV export "as shown" (sheets.xlsx-<sheet>.csv, sheets.ods-<sheet>.csv).
 */
import fs from 'node:fs';
import Papa from 'papaparse';
import { strToU8, zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { DatasetError, mappingFromColumns, plainFormat, renderDataset } from '../src/data';
import { readDatasetFile } from '../src/formats/dataset-file';
import { readSpreadsheet } from '../src/formats/spreadsheet';
import { dataFile } from './helpers/paths';
import { handZip, zeroBomb } from './helpers/zip-bomb';

const bytes = (name: string) => new Uint8Array(fs.readFileSync(dataFile(name)));

/** LibreOffice's reading of a sheet: its column names, and each row with text by its sheet row number. */
function shownByLibreOffice(csvName: string) {
  const records = Papa.parse<string[]>(fs.readFileSync(dataFile(csvName), 'utf8'), { header: false }).data;
  const numbered = records
    .map((cells, i) => ({ row: i + 1, cells }))
    .filter((r) => r.cells.some((cell) => cell !== ''));
  const [header, ...body] = numbered;
  return {
    columns: header.cells,
    rowLines: body.map((r) => r.row),
    rows: body.map((r) => Object.fromEntries(header.cells.map((name, i) => [name, r.cells[i] ?? '']))),
  };
}

/** A dataset's rows with every column present (an empty cell reads as empty text). */
const filled = (columns: string[], rows: Record<string, unknown>[]) =>
  rows.map((row) => Object.fromEntries(columns.map((c) => [c, row[c] ?? ''])));

describe('an .xlsx workbook', () => {
  it('reads the first sheet as LibreOffice shows it: dates, percentages, numbers, formulas, empty cells', () => {
    const { dataset, sheets, sheet } = readSpreadsheet(bytes('sheets.xlsx'), 'sheets.xlsx');
    const expected = shownByLibreOffice('sheets.xlsx-Questions.csv');
    expect(sheets).toEqual(['Questions', 'Tickets', 'Empty']);
    expect(sheet).toBe('Questions');
    expect(dataset.format).toBe('xlsx');
    expect(dataset.columns).toEqual(expected.columns);
    expect(filled(dataset.columns, dataset.rows)).toEqual(expected.rows);
    // The sheet's own row numbers: row 4 is empty, so the rows after it keep their numbers.
    expect(dataset.rowLines).toEqual(expected.rowLines);
    expect(dataset.rowLines).toEqual([2, 3, 5, 6, 7, 8]);
    // The cases the fixture was made for, as LibreOffice's CSV has them.
    expect(dataset.rows[0]).toMatchObject({
      asked: '2024-03-01',
      score: '25%',
      price: '1,234.50',
      total: '84',
    });
    expect(dataset.rows[1]).toMatchObject({ asked: '3/2/2024', score: '12.5%', checked: 'FALSE' });
    expect(dataset.rows[3]).toMatchObject({ asked: '2024-03-05 14:30', total: 'xBlue' });
    // A merged range (A7:B7) holds its text in its first cell; the others are empty.
    expect(dataset.rows[4]).toEqual({ question: 'A merged cell' });
  });

  it("names a skipped row by the sheet's own row number", () => {
    const { dataset } = readSpreadsheet(bytes('sheets.xlsx'), 'sheets.xlsx');
    const mapping = mappingFromColumns('question', 'answer');
    const { skipped } = renderDataset(dataset, mapping, plainFormat());
    // Row 7 is the merged cell: its answer (B7) is covered by the merge, so the row has nothing to learn.
    expect(skipped.map((s) => s.reason)).toEqual([
      'Row 7: the completion is empty, so there is nothing to learn from this row.',
    ]);
  });

  it('reads another sheet by name (the picker and --sheet), and names the sheets when the name is wrong', () => {
    const expected = shownByLibreOffice('sheets.xlsx-Tickets.csv');
    for (const name of ['Tickets', 'tickets']) {
      const { dataset, sheet } = readSpreadsheet(bytes('sheets.xlsx'), 'sheets.xlsx', name);
      expect(sheet).toBe('Tickets');
      expect(dataset.columns).toEqual(expected.columns);
      expect(filled(dataset.columns, dataset.rows)).toEqual(expected.rows);
      expect(dataset.rowLines).toEqual(expected.rowLines);
    }
    expect(() => readSpreadsheet(bytes('sheets.xlsx'), 'sheets.xlsx', 'Answers')).toThrow(
      "sheets.xlsx has no sheet named 'Answers'. Its sheets are: 'Questions', 'Tickets', 'Empty'.",
    );
  });

  it('says an empty sheet is empty and what to do', () => {
    expect(fs.readFileSync(dataFile('sheets.xlsx-Empty.csv'), 'utf8').trim()).toBe('');
    expect(() => readSpreadsheet(bytes('sheets.xlsx'), 'sheets.xlsx', 'Empty')).toThrow(
      /^The sheet 'Empty' is empty\. Pick another sheet, or put column names in its first row/,
    );
  });
});

describe('an .ods workbook', () => {
  it('reads each sheet as LibreOffice shows it', () => {
    for (const name of ['Questions', 'Tickets']) {
      const { dataset, sheets } = readSpreadsheet(bytes('sheets.ods'), 'sheets.ods', name);
      const expected = shownByLibreOffice(`sheets.ods-${name}.csv`);
      expect(sheets).toEqual(['Questions', 'Tickets', 'Empty']);
      expect(dataset.format).toBe('ods');
      expect(dataset.columns).toEqual(expected.columns);
      expect(dataset.rowLines).toEqual(expected.rowLines);
      const rows = filled(dataset.columns, dataset.rows);
      if (name === 'Questions') {
        // One difference, LibreOffice's own: saving the .ods, it wrote TRUE and FALSE as the cells' shown
        // text (what webtune reads); its CSV export of the saved file gives the formula =TRUE()'s value, 1.
        expect(expected.rows.map((r) => r.checked)).toEqual(['1', '0', '', '', '', '']);
        const xlsx = shownByLibreOffice('sheets.xlsx-Questions.csv');
        expected.rows.forEach((row, i) => (row.checked = xlsx.rows[i].checked));
      }
      expect(rows).toEqual(expected.rows);
    }
  });

  it('refuses a password-protected .ods, saying to save a copy without the password', () => {
    expect(() => readSpreadsheet(bytes('sheets-password.ods'), 'sheets-password.ods')).toThrow(
      /^sheets-password\.ods is protected with a password, so its cells are encrypted\. Open it in your spreadsheet app, save a copy without the password/,
    );
  });
});

describe('files that are not a readable workbook', () => {
  const refusal = async (file: Uint8Array, name: string) => {
    const error = await readDatasetFile(file, name).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DatasetError);
    return (error as Error).message;
  };

  it('a password-protected .xlsx (encrypted by officecrypto-tool, opened by msoffcrypto-tool)', async () => {
    expect(await refusal(bytes('sheets-password.xlsx'), 'sheets-password.xlsx')).toMatch(
      /^sheets-password\.xlsx is protected with a password, so its cells are encrypted\./,
    );
  });

  it('a legacy .xls (saved by LibreOffice as Excel 97), also under another name', async () => {
    for (const name of ['sheets.xls', 'data.csv']) {
      expect(await refusal(bytes('sheets.xls'), name)).toBe(
        `${name} is a legacy Excel 97–2003 workbook (.xls), which webtune cannot read. In your spreadsheet app choose ` +
          'Save As → "Excel Workbook (.xlsx)" or "CSV UTF-8", then open that file.',
      );
    }
  });

  it('a workbook cut short, or with its sheet damaged', async () => {
    const whole = bytes('sheets.xlsx');
    expect(await refusal(whole.subarray(0, whole.length - 200), 'cut.xlsx')).toMatch(
      /^cut\.xlsx could not be read as a spreadsheet: it is not a complete zip \(.*\)\. The file may be damaged; open it in your spreadsheet app and save it again/,
    );
    const damaged = zipSync({
      '[Content_Types].xml': strToU8('<Types/>'),
      'xl/workbook.xml': strToU8('<workbook><sheets><sheet name="A" r:id="rId1"/></sheets></workbook>'),
      'xl/_rels/workbook.xml.rels': strToU8(
        '<Relationships><Relationship Id="rId1" Type="x/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
      ),
      'xl/worksheets/sheet1.xml': strToU8('<worksheet><sheetData><row r="1"><c r="A1" t="s"'),
    });
    expect(await refusal(damaged, 'damaged.xlsx')).toMatch(
      /^damaged\.xlsx could not be read as a spreadsheet: xl\/worksheets\/sheet1\.xml: a tag is never closed\./,
    );
  });

  it('a sheet with no header row: its first row looks like an example, and it says to add column names', async () => {
    // A minimal SpreadsheetML package (ECMA-376) whose sheet starts with an example, inline strings; the
    // rule is the CSV path's: every cell of the first row reads like data (a number, a sentence).
    const cell = (ref: string, text: string) => `<c r="${ref}" t="inlineStr"><is><t>${text}</t></is></c>`;
    const row = (r: number, a: string, b: string) =>
      `<row r="${r}">${cell(`A${r}`, a)}${cell(`B${r}`, b)}</row>`;
    const ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"';
    const rels = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"';
    const book = zipSync({
      '[Content_Types].xml': strToU8('<Types/>'),
      'xl/workbook.xml': strToU8(
        `<workbook ${ns} ${rels}><sheets><sheet name="Data" sheetId="1" r:id="rId1"/></sheets></workbook>`,
      ),
      'xl/_rels/workbook.xml.rels': strToU8(
        '<Relationships><Relationship Id="rId1" Type="x/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
      ),
      'xl/worksheets/sheet1.xml': strToU8(
        `<worksheet ${ns}><sheetData>` +
          row(1, 'What is the capital of France?', 'The capital of France is Paris.') +
          row(2, 'How many legs does a spider have?', 'A spider has eight legs.') +
          '</sheetData></worksheet>',
      ),
    });
    expect(await refusal(book, 'no-header.xlsx')).toMatch(
      /looks like an example, not column names\. Add a header row/,
    );
  });

  it('a zip that holds no workbook', async () => {
    const zip = zipSync({ 'data.csv': strToU8('prompt,completion\na,b\n') });
    expect(await refusal(zip, 'data.zip')).toMatch(/^data\.zip is a zip file but not a spreadsheet workbook/);
  });

  const stored = (name: string, text: string) => {
    const data = strToU8(text);
    return { name, data, method: 0 as const, declared: data.length };
  };
  const bombBook = (sheet: Uint8Array, declared: number) =>
    handZip([
      stored('[Content_Types].xml', '<Types/>'),
      stored('xl/workbook.xml', '<workbook><sheets><sheet name="A" r:id="rId1"/></sheets></workbook>'),
      stored(
        'xl/_rels/workbook.xml.rels',
        '<Relationships><Relationship Id="rId1" Type="x/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
      ),
      { name: 'xl/worksheets/sheet1.xml', data: sheet, declared },
    ]);

  it('a zip bomb that declares what it unpacks to: refused before anything is inflated', async () => {
    // About 1 MB that inflates to 4 GiB of zeros, and says so.
    const bomb = zeroBomb(Math.ceil(2 ** 32 / 258));
    const heap = process.memoryUsage().heapUsed;
    const started = performance.now();
    expect(await refusal(bombBook(bomb, 2 ** 32), 'bomb.xlsx')).toMatch(
      /^bomb\.xlsx: its part 'xl\/worksheets\/sheet1\.xml' unpacks to 4\.3 GB, more than the 209\.7 MB webtune reads from a workbook, so it was not unpacked/,
    );
    expect(performance.now() - started).toBeLessThan(1000);
    expect(process.memoryUsage().heapUsed - heap).toBeLessThan(50 * 1024 * 1024);
  });

  it('a zip bomb that lies about its size: inflating stops where the declared size ends', async () => {
    const bomb = zeroBomb(Math.ceil(2 ** 32 / 258));
    const started = performance.now();
    expect(await refusal(bombBook(bomb, 1000), 'liar.xlsx')).toMatch(
      /^liar\.xlsx could not be read as a spreadsheet: 'xl\/worksheets\/sheet1\.xml' unpacks to more than the 1000 bytes the zip declares\./,
    );
    expect(performance.now() - started).toBeLessThan(1000);
  });
});

describe('readDatasetFile', () => {
  it('reads text files as before, with no sheets', async () => {
    const read = await readDatasetFile(bytes('support-tickets.csv'), 'support-tickets.csv');
    expect(read.sheets).toBeNull();
    expect(read.sheet).toBeNull();
    expect(read.dataset.format).toBe('csv');
    expect(read.dataset.columns).toEqual(['ticket', 'department']);
  });

  it('recognises a workbook by its bytes when its name does not say', async () => {
    const read = await readDatasetFile(bytes('sheets.xlsx'), 'download', 'Tickets');
    expect(read.sheets).toEqual(['Questions', 'Tickets', 'Empty']);
    expect(read.dataset.columns).toEqual(['ticket', 'department']);
  });
});
