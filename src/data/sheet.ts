/**
 * A spreadsheet's sheet, as its cells show it, into rows: the first row with text names the columns, as in
 * a CSV file, and every row keeps the number the spreadsheet gives it, so messages point at "row 14".
 * Reading the workbook file itself (a zip of XML) is src/formats/spreadsheet.ts's job.
 */
import { checkHeader } from './csv';
import { DatasetError, MAX_COLUMNS, checkCellSize, tooManyColumns, type Dataset, type Row } from './dataset';

export type SheetFormat = 'xlsx' | 'ods';

/** One row of a sheet: its number (1-based, as the spreadsheet shows it) and its cells' text by column. */
export interface SheetRow {
  row: number;
  /** Index 0 is column A; a missing or empty entry is an empty cell. */
  cells: string[];
}

/** Spreadsheet-style name of a 0-based column index: 0 → A, 26 → AA. */
export function columnLetters(index: number): string {
  let name = '';
  for (let n = index + 1; n > 0; n = Math.floor((n - 1) / 26))
    name = String.fromCharCode(65 + ((n - 1) % 26)) + name;
  return name;
}

export function datasetFromSheet(rows: SheetRow[], format: SheetFormat, sheet: string): Dataset {
  const withText = rows.filter((r) => r.cells.some((cell) => cell !== undefined && cell.trim() !== ''));
  const [headerRow, ...body] = withText;
  if (!headerRow) {
    throw new DatasetError(
      `The sheet '${sheet}' is empty. Pick another sheet, or put column names in its first row and one example per row below them.`,
    );
  }
  const header = Array.from(headerRow.cells, (cell) => (cell ?? '').trim());
  checkHeader(header, headerRow.row, 'csv');
  // The first row below the header with text in each column (a column is kept when named or used).
  const firstUse: number[] = [];
  for (const record of body)
    record.cells.forEach((cell, i) => {
      if (firstUse[i] === undefined && cell !== undefined && cell.trim() !== '') firstUse[i] = record.row;
    });
  const kept: number[] = [];
  for (let i = 0; i < Math.max(header.length, firstUse.length); i++) {
    const named = (header[i] ?? '') !== '';
    if (!named && firstUse[i] === undefined) continue;
    if (!named) {
      throw new DatasetError(
        `Column ${columnLetters(i)} of the sheet '${sheet}' has no name in its first row (row ${headerRow.row}) but holds values, ` +
          `for example in row ${firstUse[i]}. Give every column a name in the first row (for example prompt and completion).`,
        headerRow.row,
      );
    }
    kept.push(i);
  }
  const columns = kept.map((i) => header[i]);
  if (columns.length > MAX_COLUMNS)
    throw tooManyColumns('The first row', columns[MAX_COLUMNS], headerRow.row);

  const dataRows: Row[] = [];
  const rowLines: number[] = [];
  for (const record of body) {
    const row: Row = {};
    kept.forEach((i, k) => {
      const text = record.cells[i];
      if (text === undefined || text === '') return; // an empty cell reads as empty text
      checkCellSize(text, () => `Row ${record.row}, column '${columns[k]}'`, record.row);
      row[columns[k]] = text.replace(/\r\n?/g, '\n');
    });
    dataRows.push(row);
    rowLines.push(record.row);
  }
  if (dataRows.length === 0) {
    throw new DatasetError(
      `The sheet '${sheet}' has column names in row ${headerRow.row} (${columns.join(', ')}) but no rows below them. Add at least one example, or pick another sheet.`,
      headerRow.row,
    );
  }
  return { format, columns, rows: dataRows, rowLines, skipped: [] };
}
