/**
 * An Office Open XML workbook (.xlsx, .xlsm) read as its cells show: the workbook lists the sheets, the
 * shared strings hold the text, and the styles give each number its format, which numfmt applies as Excel
 * would (a date cell "2024-03-01" or "3/1/2024", 0.25 as "25%"). Formulas give their cached value (what the
 * spreadsheet app last computed and saved); a merged range holds its text in its first cell only.
 */
import { format as formatNumber, isDateFormat } from 'numfmt';
import { SheetLimits, type PartReader, type WorkbookReader } from './spreadsheet-limits';
import { scanXml } from './xml-scan';
import type { SheetRow } from '../data/sheet';

/**
 * Excel's built-in number formats (ECMA-376 Part 1, 18.8.30), as Excel shows them in the en-US locale:
 * 14, the short date, reads 3/1/2024 there.
 */
const BUILTIN_FORMATS: Record<number, string> = {
  1: '0',
  2: '0.00',
  3: '#,##0',
  4: '#,##0.00',
  5: '"$"#,##0_);\\("$"#,##0\\)',
  6: '"$"#,##0_);[Red]\\("$"#,##0\\)',
  7: '"$"#,##0.00_);\\("$"#,##0.00\\)',
  8: '"$"#,##0.00_);[Red]\\("$"#,##0.00\\)',
  9: '0%',
  10: '0.00%',
  11: '0.00E+00',
  12: '# ?/?',
  13: '# ??/??',
  14: 'm/d/yyyy',
  15: 'd-mmm-yy',
  16: 'd-mmm',
  17: 'mmm-yy',
  18: 'h:mm AM/PM',
  19: 'h:mm:ss AM/PM',
  20: 'h:mm',
  21: 'h:mm:ss',
  22: 'm/d/yyyy h:mm',
  37: '#,##0 ;(#,##0)',
  38: '#,##0 ;[Red](#,##0)',
  39: '#,##0.00;(#,##0.00)',
  40: '#,##0.00;[Red](#,##0.00)',
  45: 'mm:ss',
  46: '[h]:mm:ss',
  47: 'mm:ss.0',
  48: '##0.0E+0',
  49: '@',
};

/** Days from 1899-12-30 to 1904-01-01: a 1904-based workbook's dates are this much earlier as serials. */
const DAYS_1904 = 1462;

const RELATIONSHIP = 'http://schemas.openxmlformats.org/officeDocument/2006/relationships/';

/** A workbook's parts, from the zip's entries; throws (with what to do) on a part it cannot use. */
export function openXlsx(read: PartReader, limits: SheetLimits): WorkbookReader {
  const bookPath = relationships(read, '_rels/.rels', '').find((r) =>
    r.type.endsWith('/officeDocument'),
  )?.target;
  const workbookPath = bookPath ?? 'xl/workbook.xml';
  const workbookXml = read(workbookPath);
  if (workbookXml === null) throw limits.notAWorkbook('it has no workbook part (xl/workbook.xml)');
  const folder = workbookPath.slice(0, workbookPath.lastIndexOf('/') + 1);
  const links = relationships(read, `${folder}_rels/${workbookPath.slice(folder.length)}.rels`, folder);
  const byId = new Map(links.map((link) => [link.id, link]));

  let date1904 = false;
  const sheets: { name: string; hidden: boolean; path: string | null; kind: string }[] = [];
  scanXml(
    workbookXml,
    {
      open(name, attributes) {
        if (name === 'workbookPr') date1904 = ['1', 'true'].includes(attributes.get('date1904') ?? '');
        if (name !== 'sheet') return;
        const link = byId.get(attributes.get('id') ?? '');
        sheets.push({
          name: attributes.get('name') ?? `Sheet${sheets.length + 1}`,
          hidden: (attributes.get('state') ?? 'visible') !== 'visible',
          path: link?.target ?? null,
          kind: link?.type.slice(link.type.lastIndexOf('/') + 1) ?? 'worksheet',
        });
      },
    },
    workbookPath,
  );
  const linked = (type: string) => links.find((link) => link.type === RELATIONSHIP + type)?.target;
  let strings: string[] | null = null;
  let styles: string[] | null = null;

  return {
    sheets: sheets.map(({ name, hidden }) => ({ name, hidden })),
    read(index) {
      const sheet = sheets[index];
      if (sheet.kind !== 'worksheet')
        throw limits.notATable(sheet.name, `a ${sheet.kind === 'chartsheet' ? 'chart' : sheet.kind}`);
      const xml = sheet.path === null ? null : read(sheet.path);
      if (xml === null) throw limits.notAWorkbook(`the part of the sheet '${sheet.name}' is missing`);
      strings ??= sharedStrings(read, linked('sharedStrings'));
      styles ??= cellFormats(read, linked('styles'));
      return sheetRows(xml, sheet.path!, strings, styles, date1904, limits);
    },
  };
}

interface Relationship {
  id: string;
  type: string;
  /** The part's path inside the zip. */
  target: string;
}

/** The relationships part at `path`, targets resolved against `folder`; [] when there is none. */
function relationships(read: PartReader, path: string, folder: string): Relationship[] {
  const xml = read(path);
  if (xml === null) return [];
  const found: Relationship[] = [];
  scanXml(
    xml,
    {
      open(name, attributes) {
        if (name !== 'Relationship' || attributes.get('TargetMode') === 'External') return;
        const target = attributes.get('Target') ?? '';
        found.push({
          id: attributes.get('Id') ?? '',
          type: attributes.get('Type') ?? '',
          target: resolvePath(target.startsWith('/') ? target.slice(1) : folder + target),
        });
      },
    },
    path,
  );
  return found;
}

/**
 * A part's name inside the workbook's zip with `.` and `..` segments resolved (a relationship's target is
 * relative to its source part's folder), e.g. the worksheets folder, up one, then sharedStrings.xml.
 */
function resolvePath(path: string): string {
  const parts: string[] = [];
  for (const part of path.split('/')) {
    if (part === '..') parts.pop();
    else if (part !== '.' && part !== '') parts.push(part);
  }
  return parts.join('/');
}

/** OOXML writes characters XML cannot hold (a carriage return, a control character) as `_x000D_`. */
const unescapeOoxml = (text: string) =>
  text.includes('_x')
    ? text.replace(/_x([0-9A-Fa-f]{4})_/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)))
    : text;

/**
 * The text of an `<si>` or `<is>`: its `<t>` elements (a rich text's runs in order), phonetic guides left
 * out.
 */
class RichText {
  private depthInT = 0;
  private phonetic = 0;
  private parts: string[] = [];
  open(name: string): void {
    if (name === 't') this.depthInT++;
    else if (name === 'rPh') this.phonetic++;
  }
  close(name: string): void {
    if (name === 't') this.depthInT--;
    else if (name === 'rPh') this.phonetic--;
  }
  text(text: string): void {
    if (this.depthInT > 0 && this.phonetic === 0) this.parts.push(text);
  }
  take(): string {
    const text = unescapeOoxml(this.parts.join(''));
    this.parts = [];
    return text;
  }
}

function sharedStrings(read: PartReader, path: string | undefined): string[] {
  const xml = path === undefined ? null : read(path);
  if (xml === null) return [];
  const strings: string[] = [];
  const rich = new RichText();
  scanXml(
    xml,
    {
      open: (name) => rich.open(name),
      close(name) {
        rich.close(name);
        if (name === 'si') strings.push(rich.take());
      },
      text: (text) => rich.text(text),
    },
    path!,
  );
  return strings;
}

/** The number format code of each cell style (index = the cell's `s`); built-in ids are looked up. */
function cellFormats(read: PartReader, path: string | undefined): string[] {
  const xml = path === undefined ? null : read(path);
  if (xml === null) return [];
  const codes = new Map<number, string>();
  const formats: string[] = [];
  let inCellXfs = false;
  scanXml(
    xml,
    {
      open(name, attributes) {
        if (name === 'numFmt')
          codes.set(Number(attributes.get('numFmtId')), attributes.get('formatCode') ?? 'General');
        else if (name === 'cellXfs') inCellXfs = true;
        else if (name === 'xf' && inCellXfs) {
          const id = Number(attributes.get('numFmtId') ?? 0);
          formats.push(codes.get(id) ?? BUILTIN_FORMATS[id] ?? 'General');
        }
      },
      close(name) {
        if (name === 'cellXfs') inCellXfs = false;
      },
    },
    path!,
  );
  return formats;
}

/** "B7" → column 1 (0-based) and row 7; null when the reference is not a cell's. */
function cellReference(ref: string): { column: number; row: number } | null {
  const match = /^([A-Z]{1,3})([0-9]+)$/i.exec(ref);
  if (!match) return null;
  let column = 0;
  for (const letter of match[1].toUpperCase()) column = column * 26 + letter.charCodeAt(0) - 64;
  return { column: column - 1, row: Number(match[2]) };
}

function sheetRows(
  xml: string,
  part: string,
  strings: string[],
  styles: string[],
  date1904: boolean,
  limits: SheetLimits,
): SheetRow[] {
  const rows: SheetRow[] = [];
  let row: SheetRow | null = null;
  let nextRow = 1;
  let nextColumn = 0;
  let cell: { column: number; type: string; style: number } | null = null;
  let value: string[] = [];
  let inValue = false;
  const rich = new RichText();
  scanXml(
    xml,
    {
      open(name, attributes) {
        if (name === 'row') {
          const number = Number(attributes.get('r') ?? nextRow);
          row = { row: number, cells: [] };
          nextRow = number + 1;
          nextColumn = 0;
        } else if (name === 'c' && row) {
          const at = cellReference(attributes.get('r') ?? '');
          const column = at?.column ?? nextColumn;
          nextColumn = column + 1;
          cell = { column, type: attributes.get('t') ?? 'n', style: Number(attributes.get('s') ?? 0) };
          value = [];
        } else if (name === 'v' && cell) inValue = true;
        else if (cell) rich.open(name);
      },
      text(text) {
        if (inValue) value.push(text);
        else if (cell) rich.text(text);
      },
      close(name) {
        if (name === 'v') inValue = false;
        else if (name === 'c' && cell && row) {
          const inline = rich.take();
          const text = cellText(cell.type, value.join(''), inline, styles[cell.style], strings, date1904);
          if (text !== '') limits.addCell(row, cell.column, text);
          cell = null;
        } else if (name === 'row' && row) {
          if (row.cells.length > 0) rows.push(row);
          row = null;
        } else if (cell) rich.close(name);
      },
    },
    part,
  );
  return rows;
}

function cellText(
  type: string,
  raw: string,
  inline: string,
  format: string | undefined,
  strings: string[],
  date1904: boolean,
): string {
  switch (type) {
    case 's':
      return strings[Number(raw)] ?? '';
    case 'inlineStr':
      return inline;
    case 'str':
    case 'e':
      return unescapeOoxml(raw);
    case 'b':
      return raw === '' ? '' : raw.trim() === '1' || raw.trim() === 'true' ? 'TRUE' : 'FALSE';
    case 'd':
      return raw; // an ISO 8601 date, as written (Excel itself writes dates as numbers)
    default: {
      if (raw.trim() === '') return '';
      const number = Number(raw);
      if (!Number.isFinite(number)) return raw;
      return displayNumber(number, format ?? 'General', date1904);
    }
  }
}

/** A number as a cell of this format shows it; General (or a format numfmt cannot read) as General. */
export function displayNumber(number: number, format: string, date1904 = false): string {
  if (format.trim().toLowerCase() !== 'general') {
    try {
      // A 1904-based workbook counts days from 1904-01-01; numfmt counts them from 1900 like Excel's default.
      const serial = date1904 && isDateFormat(format) ? number + DAYS_1904 : number;
      return formatNumber(format, serial, { locale: 'en-US', throws: true, nbsp: false });
    } catch {
      // Fall through to General, as Excel shows a number whose format it cannot apply.
    }
  }
  return general(number);
}

/** Excel's General format: up to 15 significant digits, no trailing zeros, E notation for the very large. */
function general(number: number): string {
  const text = String(Number(number.toPrecision(15)));
  return text.replace('e+', 'E+').replace('e-', 'E-');
}
