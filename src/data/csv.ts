/**
 * CSV and TSV through papaparse, with a header row. Rows are numbered as a spreadsheet numbers them
 * (the header is row 1); when quoted newlines make that differ from the editor's line, both are given.
 */
import Papa from 'papaparse';
import {
  DatasetError,
  MAX_COLUMNS,
  checkCellSize,
  excerpt,
  lineIndex,
  tooManyColumns,
  type Dataset,
  type Row,
  type SkippedRow,
} from './dataset';

interface CsvRecord {
  cells: string[];
  /** Spreadsheet row number (1 = header). */
  row: number;
  line: number;
}

export function parseDelimited(text: string, format: 'csv' | 'tsv'): Dataset {
  const delimiter = format === 'tsv' ? '\t' : csvDelimiter(text);
  const records = readRecords(text, delimiter).filter(hasText);
  const [headerRecord, ...body] = records;
  if (!headerRecord)
    throw new DatasetError('The file has no text in any cell. Add a header row and at least one example.');
  const header = headerRecord.cells.map((c) => c.trim());
  checkHeader(header, headerRecord.line, format);

  // Excel adds an unnamed, empty column when every line ends with a delimiter; it carries nothing.
  const kept = header
    .map((name, i) => i)
    .filter((i) => header[i] !== '' || body.some((r) => (r.cells[i] ?? '').trim() !== ''));
  const unnamed = kept.find((i) => header[i] === '');
  if (unnamed !== undefined) {
    throw new DatasetError(
      `Column ${unnamed + 1} has no name in the header row but holds values. ` +
        'Give every column a name in the first row (for example prompt,completion).',
      headerRecord.line,
    );
  }
  const columns = kept.map((i) => header[i]);
  if (columns.length > MAX_COLUMNS)
    throw tooManyColumns('The header row', columns[MAX_COLUMNS], headerRecord.line);

  const rows: Row[] = [];
  const rowLines: number[] = [];
  const skipped: SkippedRow[] = [];
  const needed = kept[kept.length - 1] + 1;
  for (const record of body) {
    const extra = record.cells.slice(header.length);
    if (record.cells.length < needed || extra.some((c) => c.trim() !== '')) {
      skipped.push({ line: record.line, reason: cellCountReason(record, columns.length, delimiter) });
      continue;
    }
    const row: Row = {};
    // A line break inside a quoted cell follows the file's line ends; the text itself means "\n".
    kept.forEach((i, k) => {
      const text = record.cells[i];
      checkCellSize(text, () => `${rowLabel(record)}, column '${columns[k]}'`, record.line);
      row[columns[k]] = text.replace(/\r\n?/g, '\n');
    });
    rows.push(row);
    rowLines.push(record.line);
  }
  if (rows.length === 0) {
    if (skipped.length > 0)
      throw new DatasetError(`No row could be read. ${skipped[0].reason}`, skipped[0].line);
    throw new DatasetError(
      `The file has a header row (${columns.join(', ')}) but no data rows. Add at least one example below the header.`,
    );
  }
  return { format, columns, rows, rowLines, skipped };
}

function readRecords(text: string, delimiter: string): CsvRecord[] {
  const lineOf = lineIndex(text);
  const records: CsvRecord[] = [];
  let start = 0;
  let problem: DatasetError | undefined;
  Papa.parse<string[]>(text, {
    delimiter,
    quoteChar: '"',
    escapeChar: '"',
    step(result, parser) {
      const record = { cells: result.data, row: records.length + 1, line: lineOf(start) };
      start = result.meta.cursor;
      const quoteError = result.errors.find((e) => e.type === 'Quotes');
      if (quoteError) {
        problem = quoteProblem(record, quoteError.code, records.find(hasText)?.cells);
        parser.abort();
        return;
      }
      records.push(record);
    },
  });
  if (problem) throw problem;
  return records;
}

function quoteProblem(record: CsvRecord, code: string, header: string[] | undefined): DatasetError {
  // The broken field swallows the rest of the file, so it is the last one papaparse returned.
  const index = record.cells.length - 1;
  const name = header?.[index]?.trim();
  const where = header ? `${rowLabel(record)}: ` : 'The header row: ';
  const column = name ? `column '${name}'` : `column ${index + 1}`;
  if (code === 'InvalidQuotes') {
    return new DatasetError(
      `${where}a quoted cell in ${column} has more text after its closing quote. ` +
        'Inside a quoted cell, write each quote character twice (""), or export the file again as CSV.',
      record.line,
    );
  }
  return new DatasetError(
    `${where}the closing quote is missing in ${column}. Fix the file or export it again as CSV.`,
    record.line,
  );
}

export function checkHeader(header: string[], line: number, format: 'csv' | 'tsv'): void {
  if (looksLikeData(header)) {
    throw new DatasetError(
      `The first row ("${excerpt(header.join(format === 'tsv' ? '\t' : ','))}") looks like an example, not column names. ` +
        'Add a header row at the top, for example: prompt,completion',
      line,
    );
  }
  const seen = new Map<string, number>();
  header.forEach((name, i) => {
    if (name === '') return;
    const first = seen.get(name);
    if (first !== undefined) {
      throw new DatasetError(
        `The header names the column '${name}' twice (columns ${first + 1} and ${i + 1}). Rename one so every column has its own name.`,
        line,
      );
    }
    seen.set(name, i);
  });
}

/**
 * Column names are short labels; sentences, numbers or long texts in every cell mean the header is missing.
 */
function looksLikeData(header: string[]): boolean {
  const dataLike = (cell: string) =>
    /^-?\d+([.,]\d+)?$/.test(cell) || cell.length > 40 || (/[.?!]$/.test(cell) && cell.includes(' '));
  return header.length > 0 && header.every((cell) => cell !== '' && dataLike(cell));
}

function cellCountReason(record: CsvRecord, columns: number, delimiter: string): string {
  const found = record.cells.length;
  const hint =
    found > columns
      ? `A cell probably contains a ${delimiter === '\t' ? 'tab' : `'${delimiter}'`} without quotes around it: put the cell in double quotes ("like${delimiter} this").`
      : 'Fill in the missing cells (they may be empty, but the separators must be there).';
  return `${rowLabel(record)} has ${found} cell${found === 1 ? '' : 's'} but the header has ${columns} columns, so it was skipped. ${hint}`;
}

const hasText = (r: CsvRecord) => r.cells.some((c) => c.trim() !== '');

const rowLabel = (r: CsvRecord) => (r.row === r.line ? `Row ${r.row}` : `Row ${r.row} (line ${r.line})`);

/**
 * A .csv from a European-locale spreadsheet uses ';'. Decide from the header line, which has no quotes in
 * practice.
 */
function csvDelimiter(text: string): string {
  const headerLine = text.split(/\r\n|\n|\r/, 1)[0];
  if (headerLine.includes(',')) return ',';
  if (headerLine.includes(';')) return ';';
  if (headerLine.includes('\t')) return '\t';
  return ',';
}
