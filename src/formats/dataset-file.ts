/**
 * Any dataset file from its bytes: text (CSV, TSV, JSON, JSON Lines) through src/data, or a spreadsheet
 * workbook through spreadsheet.ts, which is imported only when a workbook arrives (in the page's build it is
 * a chunk of its own, with its number formatter).
 */
import { decodeDatasetBytes, parseDataset, type Dataset } from '../data';

export interface DatasetFile {
  dataset: Dataset;
  /** A workbook's sheets, in order; null for a text file. */
  sheets: string[] | null;
  /** The sheet read; null for a text file. */
  sheet: string | null;
}

const WORKBOOK_EXTENSIONS = new Set(['xlsx', 'xlsm', 'xltx', 'xltm', 'xlsb', 'xls', 'ods', 'ots']);

/**
 * Whether the file is read as a workbook: by its extension, or by its first bytes (a zip, or an OLE file
 * such as a legacy .xls), so a workbook saved under another name is still recognised.
 */
export function isWorkbookFile(bytes: Uint8Array, fileName: string): boolean {
  const extension = /\.([a-z0-9]+)$/i.exec(fileName)?.[1].toLowerCase() ?? '';
  if (WORKBOOK_EXTENSIONS.has(extension)) return true;
  if (extension === 'numbers') return false; // parse.ts says how to export it
  const zip = bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
  const ole = bytes[0] === 0xd0 && bytes[1] === 0xcf && bytes[2] === 0x11 && bytes[3] === 0xe0;
  return zip || ole;
}

/** The file as a dataset; `sheet` picks a workbook's sheet by name (the first visible one when absent). */
export async function readDatasetFile(
  bytes: Uint8Array,
  fileName: string,
  sheet?: string | null,
): Promise<DatasetFile> {
  if (isWorkbookFile(bytes, fileName)) {
    const { readSpreadsheet } = await import('./spreadsheet');
    return readSpreadsheet(bytes, fileName, sheet);
  }
  return { dataset: parseDataset(decodeDatasetBytes(bytes), fileName), sheets: null, sheet: null };
}
