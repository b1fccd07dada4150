/**
 * What the workbook readers (xlsx.ts, ods.ts) share: how they are handed the zip's parts, what they give
 * back, and the bounds every sheet is read within, with the messages that say what to do instead.
 */
import { DatasetError } from '../data/dataset';
import type { SheetRow } from '../data/sheet';

/** The text of a part of the workbook's zip (XML), or null when the zip has no such part. */
export type PartReader = (path: string) => string | null;

export interface WorkbookReader {
  /** Every sheet in the workbook's order; hidden ones too (they are offered, but not opened by default). */
  sheets: { name: string; hidden: boolean }[];
  /** The rows with text of the sheet at `index`. */
  read(index: number): SheetRow[];
}

/**
 * Most cells with text one sheet may have. A sheet's XML is bounded by MAX_DATASET_BYTES, but a cell takes
 * a few bytes of it: this keeps what is held in memory to what a dataset of that size would hold.
 */
export const MAX_SHEET_CELLS = 5_000_000;
/** Columns a spreadsheet can have (Excel's XFD, LibreOffice's default); a cell further right is damage. */
export const MAX_SHEET_COLUMNS = 16_384;

export class SheetLimits {
  private cells = 0;

  constructor(readonly fileName: string) {}

  /** Puts a cell's text in its row, refusing a sheet past MAX_SHEET_CELLS or a column no app has. */
  addCell(row: SheetRow, column: number, text: string): void {
    if (column >= MAX_SHEET_COLUMNS)
      throw this.notAWorkbook(
        `row ${row.row} has a cell in column ${column + 1}, past the last column any spreadsheet has`,
      );
    if (++this.cells > MAX_SHEET_CELLS) {
      throw new DatasetError(
        `The sheet has more than ${MAX_SHEET_CELLS.toLocaleString('en-US')} cells with text (at row ${row.row}), more than webtune reads. ` +
          'Use a sample of the rows instead: a few thousand good examples are plenty for LoRA.',
        row.row,
      );
    }
    row.cells[column] = text;
  }

  /** The file is damaged or is not a workbook after all. */
  notAWorkbook(problem: string): DatasetError {
    return new DatasetError(
      `${this.fileName} could not be read as a spreadsheet: ${problem}. The file may be damaged; open it in your ` +
        'spreadsheet app and save it again as .xlsx (or as "CSV UTF-8"), then open that file.',
    );
  }

  /** The sheet holds no cells (a chart sheet, a dialog sheet). */
  notATable(sheet: string, what: string): DatasetError {
    return new DatasetError(
      `The sheet '${sheet}' of ${this.fileName} is ${what}, not a table of cells. Pick another sheet.`,
    );
  }
}
