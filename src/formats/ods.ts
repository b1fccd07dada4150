/**
 * An OpenDocument spreadsheet (.ods) read as its cells show: every cell carries the text the application
 * displayed (its `<text:p>`, the number format already applied), so nothing is formatted here. Formulas give
 * that displayed (cached) result; a merged range's covered cells are empty. Repeated rows and cells
 * (`number-rows-repeated`, `number-columns-repeated`) are counted, and expanded only when they hold text.
 */
import { DatasetError } from '../data/dataset';
import type { SheetRow } from '../data/sheet';
import { SheetLimits, type PartReader, type WorkbookReader } from './spreadsheet-limits';
import { scanXml } from './xml-scan';

export function openOds(read: PartReader, limits: SheetLimits): WorkbookReader {
  const manifest = read('META-INF/manifest.xml');
  if (manifest?.includes('encryption-data')) throw passwordProtected(limits.fileName);
  const content = read('content.xml');
  if (content === null) throw limits.notAWorkbook('it has no content.xml');
  const sheets: { name: string; hidden: boolean }[] = [];
  scanXml(
    content,
    {
      open(name, attributes) {
        if (name === 'table')
          sheets.push({ name: attributes.get('name') ?? `Sheet${sheets.length + 1}`, hidden: false });
      },
    },
    'content.xml',
  );
  return { sheets, read: (index) => sheetRows(content, index, limits) };
}

/** A workbook saved with a password: its cells are encrypted. */
export function passwordProtected(fileName: string): DatasetError {
  return new DatasetError(
    `${fileName} is protected with a password, so its cells are encrypted. Open it in your spreadsheet app, ` +
      'save a copy without the password (or as "CSV UTF-8"), and open that copy.',
  );
}

const count = (value: string | undefined) => {
  const n = Number(value ?? 1);
  return Number.isInteger(n) && n > 0 ? n : 1;
};

function sheetRows(content: string, wanted: number, limits: SheetLimits): SheetRow[] {
  const rows: SheetRow[] = [];
  let table = -1;
  let depth = 0; // nesting of tables: a sub-table's rows are not the sheet's
  let rowNumber = 0;
  let rowRepeat = 1;
  let row: SheetRow | null = null;
  let column = 0;
  let cell: { repeat: number; paragraphs: string[]; value: string } | null = null;
  let inParagraph = 0;
  let inAnnotation = 0;
  const inTable = () => table === wanted && depth === 1;
  scanXml(
    content,
    {
      open(name, attributes) {
        if (name === 'table') {
          depth++;
          if (depth === 1) table++;
          return;
        }
        if (!inTable()) return;
        if (name === 'table-row') {
          rowRepeat = count(attributes.get('number-rows-repeated'));
          row = { row: rowNumber + 1, cells: [] };
          column = 0;
        } else if ((name === 'table-cell' || name === 'covered-table-cell') && row) {
          const value =
            attributes.get('string-value') ??
            attributes.get('date-value') ??
            attributes.get('time-value') ??
            attributes.get('boolean-value') ??
            attributes.get('value') ??
            '';
          cell = { repeat: count(attributes.get('number-columns-repeated')), paragraphs: [], value };
        } else if (name === 'annotation') inAnnotation++;
        else if (cell && inAnnotation === 0) {
          if (name === 'p' || name === 'h') {
            inParagraph++;
            if (inParagraph === 1) cell.paragraphs.push('');
          } else if (inParagraph > 0) {
            const last = cell.paragraphs.length - 1;
            if (name === 's') cell.paragraphs[last] += ' '.repeat(Math.min(count(attributes.get('c')), 1000));
            else if (name === 'tab') cell.paragraphs[last] += '\t';
            else if (name === 'line-break') cell.paragraphs[last] += '\n';
          }
        }
      },
      text(text) {
        if (cell && inParagraph > 0 && inAnnotation === 0)
          cell.paragraphs[cell.paragraphs.length - 1] += text;
      },
      close(name) {
        if (name === 'table') {
          depth--;
          return;
        }
        if (!inTable()) return;
        if (name === 'annotation') inAnnotation--;
        else if ((name === 'p' || name === 'h') && inParagraph > 0) inParagraph--;
        else if ((name === 'table-cell' || name === 'covered-table-cell') && cell && row) {
          // The displayed text; a file written without it (some tools do) falls back to the stored value.
          const text = cell.paragraphs.length > 0 ? cell.paragraphs.join('\n') : cell.value;
          if (text !== '') for (let k = 0; k < cell.repeat; k++) limits.addCell(row, column + k, text);
          column += cell.repeat;
          cell = null;
        } else if (name === 'table-row' && row) {
          if (row.cells.length > 0) {
            for (let k = 0; k < rowRepeat; k++) {
              const copy = k === 0 ? row : { row: row.row + k, cells: [] };
              if (k > 0) row.cells.forEach((text, i) => limits.addCell(copy, i, text));
              rows.push(copy);
            }
          }
          rowNumber += rowRepeat;
          row = null;
        }
      },
    },
    'content.xml',
  );
  return rows;
}
