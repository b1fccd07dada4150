/**
 * A spreadsheet workbook (.xlsx, .xlsm, .ods) into the same Dataset a CSV gives: one sheet (the first
 * visible one unless another is named), its first row as the column names, each cell as the sheet shows it.
 *
 * The workbook is a zip of XML, read here with the adapter's zip reader (zip-entries.ts): the central
 * directory is checked first, so a zip bomb is refused from what it declares before anything is inflated,
 * and no part may inflate past what it declared. The page loads this module only when a workbook arrives
 * (see dataset-file.ts), so its number formatter stays out of the main bundle.
 */
import { DatasetError, type Dataset } from '../data/dataset';
import { MAX_DATASET_BYTES, checkDatasetSize } from '../data/decode';
import { datasetFromSheet, type SheetFormat } from '../data/sheet';
import { formatSize } from './adapter-limits';
import { openOds, passwordProtected } from './ods';
import { SheetLimits, type PartReader, type WorkbookReader } from './spreadsheet-limits';
import { openXlsx } from './xlsx';
import { XmlError } from './xml-scan';
import { ZipError, inflateEntry, zipEntries, type ZipEntry } from './zip-entries';

/** Most entries a workbook's zip may list (a real one has a few dozen: each sheet, image, chart is one). */
export const MAX_WORKBOOK_ENTRIES = 10_000;
/** Most XML read from one workbook, inflated, over all its parts: the bound of a CSV dataset. */
export const MAX_WORKBOOK_XML_BYTES = MAX_DATASET_BYTES;

export interface SpreadsheetRead {
  dataset: Dataset;
  /** Every sheet's name, in the workbook's order. */
  sheets: string[];
  /** The sheet the rows come from. */
  sheet: string;
}

const OLE_MAGIC = [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1];

/** The sheet `sheet` (or the first visible one) of the workbook in `bytes`, as a dataset. */
export function readSpreadsheet(bytes: Uint8Array, fileName: string, sheet?: string | null): SpreadsheetRead {
  checkDatasetSize(bytes.byteLength);
  const limits = new SheetLimits(fileName);
  if (OLE_MAGIC.every((b, i) => bytes[i] === b)) throw oleFile(bytes, fileName);
  let entries: ZipEntry[];
  try {
    entries = zipEntries(bytes);
  } catch (error) {
    if (error instanceof ZipError) throw limits.notAWorkbook(`it is not a complete zip (${error.message})`);
    throw error;
  }
  if (entries.length > MAX_WORKBOOK_ENTRIES)
    throw limits.notAWorkbook(
      `its zip lists ${entries.length.toLocaleString('en-US')} parts, more than any workbook has`,
    );
  const byName = new Map(entries.map((entry) => [entry.name, entry]));
  const read = partReader(bytes, byName, fileName, limits);
  const format = workbookFormat(byName, read);
  if (format === null) {
    if (byName.has('xl/workbook.bin'))
      throw new DatasetError(
        `${fileName} is an Excel binary workbook (.xlsb), which webtune cannot read. In your spreadsheet app choose Save As → "Excel Workbook (.xlsx)" or "CSV UTF-8", then open that file.`,
      );
    throw new DatasetError(
      `${fileName} is a zip file but not a spreadsheet workbook (it has neither xl/workbook.xml nor content.xml). Unpack it and open the dataset file inside, or save the sheet as .xlsx or "CSV UTF-8".`,
    );
  }
  try {
    const book: WorkbookReader = format === 'ods' ? openOds(read, limits) : openXlsx(read, limits);
    const names = book.sheets.map((s) => s.name);
    const index = chooseSheet(book, sheet, fileName);
    const rows = book.read(index);
    return { dataset: datasetFromSheet(rows, format, names[index]), sheets: names, sheet: names[index] };
  } catch (error) {
    if (error instanceof XmlError || error instanceof ZipError) throw limits.notAWorkbook(error.message);
    throw error;
  }
}

/** The sheets of the workbook, for a picker; throws like readSpreadsheet on a file that is not one. */
function chooseSheet(book: WorkbookReader, wanted: string | null | undefined, fileName: string): number {
  const { sheets } = book;
  if (sheets.length === 0)
    throw new DatasetError(
      `${fileName} has no sheets. Open it in your spreadsheet app and check it holds a table.`,
    );
  if (wanted === null || wanted === undefined) {
    const visible = sheets.findIndex((s) => !s.hidden);
    return visible >= 0 ? visible : 0;
  }
  const exact = sheets.findIndex((s) => s.name === wanted);
  if (exact >= 0) return exact;
  const loose = sheets.findIndex((s) => s.name.trim().toLowerCase() === wanted.trim().toLowerCase());
  if (loose >= 0) return loose;
  throw new DatasetError(
    `${fileName} has no sheet named '${wanted}'. Its sheets are: ${sheets.map((s) => `'${s.name}'`).join(', ')}.`,
  );
}

function workbookFormat(byName: Map<string, ZipEntry>, read: PartReader): SheetFormat | null {
  if (byName.has('content.xml') && byName.has('mimetype')) {
    const mimetype = read('mimetype') ?? '';
    if (mimetype.trim() === 'application/vnd.oasis.opendocument.spreadsheet') return 'ods';
  }
  if (byName.has('content.xml') && !byName.has('[Content_Types].xml')) return 'ods';
  if (byName.has('xl/workbook.xml') || (byName.has('[Content_Types].xml') && byName.has('_rels/.rels'))) {
    return byName.has('xl/workbook.bin') ? null : 'xlsx';
  }
  return null;
}

/**
 * Reads parts by name: each one's declared size is checked against what is left of MAX_WORKBOOK_XML_BYTES
 * before it is inflated, and inflating stops the moment the output passes that declared size.
 */
function partReader(
  bytes: Uint8Array,
  byName: Map<string, ZipEntry>,
  fileName: string,
  limits: SheetLimits,
): PartReader {
  let left = MAX_WORKBOOK_XML_BYTES;
  const cache = new Map<string, string>();
  return (path) => {
    const cached = cache.get(path);
    if (cached !== undefined) return cached;
    const entry = byName.get(path);
    if (!entry) return null;
    if (entry.encrypted) throw passwordProtected(fileName);
    if (entry.originalSize > left) {
      throw new DatasetError(
        `${fileName}: its part '${path}' unpacks to ${formatSize(entry.originalSize)}, more than the ${formatSize(MAX_WORKBOOK_XML_BYTES)} ` +
          'webtune reads from a workbook, so it was not unpacked (a file this small that claims this much is a zip bomb). ' +
          'Save a smaller sheet, or export it as "CSV UTF-8", and open that file.',
      );
    }
    let data: Uint8Array;
    try {
      data = inflateEntry(bytes, entry);
    } catch (error) {
      if (error instanceof ZipError) throw limits.notAWorkbook(error.message);
      throw error;
    }
    left -= data.byteLength;
    const text = decodeXml(data);
    // Only the small shared parts are kept; a sheet's XML is read once.
    if (data.byteLength < 1_000_000) cache.set(path, text);
    return text;
  };
}

/** XML parts are UTF-8, or UTF-16 with a byte-order mark. */
function decodeXml(data: Uint8Array): string {
  if (data[0] === 0xff && data[1] === 0xfe) return new TextDecoder('utf-16le').decode(data.subarray(2));
  if (data[0] === 0xfe && data[1] === 0xff) return new TextDecoder('utf-16be').decode(data.subarray(2));
  return new TextDecoder('utf-8').decode(data);
}

/**
 * An OLE compound file: an encrypted .xlsx (Office keeps the encrypted package in one) or a legacy binary
 * .xls. The stream name tells them apart.
 */
function oleFile(bytes: Uint8Array, fileName: string): DatasetError {
  const utf16 = (text: string) => Array.from(text, (c) => [c.charCodeAt(0), 0]).flat();
  if (contains(bytes, utf16('EncryptedPackage'))) return passwordProtected(fileName);
  return new DatasetError(
    `${fileName} is a legacy Excel 97–2003 workbook (.xls), which webtune cannot read. In your spreadsheet app choose ` +
      'Save As → "Excel Workbook (.xlsx)" or "CSV UTF-8", then open that file.',
  );
}

function contains(bytes: Uint8Array, pattern: number[]): boolean {
  outer: for (let i = 0; i + pattern.length <= bytes.length; i++) {
    for (let k = 0; k < pattern.length; k++) if (bytes[i + k] !== pattern[k]) continue outer;
    return true;
  }
  return false;
}
