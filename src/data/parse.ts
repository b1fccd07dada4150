/**
 * Reading a dataset file's text into rows: the format comes from the file name, with a look at the
 * text when the name does not say (or says .json of a file that is really JSON Lines).
 */
import { parseDelimited } from './csv';
import { DatasetError, lineIndex, type Dataset, type DatasetFormat } from './dataset';
import { checkDatasetSize } from './decode';
import { isMarkdownFile, parseDocuments } from './document-files';
import { parseJson, parseJsonLines } from './json';

export function parseDataset(text: string, fileName: string): Dataset {
  // A UTF-16 string is never longer than its UTF-8 bytes, so this only trips on files that are too big.
  checkDatasetSize(text.length);
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  checkIsText(body);
  const format = datasetFormat(fileName, body);
  if (body.trim() === '') {
    throw new DatasetError(
      `${fileName || 'The file'} is empty. ` +
        (format === 'text'
          ? 'Write some text in it, or choose another file.'
          : 'Add a header row and at least one example, or choose another file.'),
    );
  }
  switch (format) {
    case 'text':
      return parseDocuments([{ name: fileName, text: body }]);
    case 'csv':
      return parseDelimited(body, 'csv');
    case 'tsv':
      return parseDelimited(body, 'tsv');
    case 'jsonl':
      return parseJsonLines(body);
    case 'json':
      return parseJson(body);
  }
}

const EXTENSIONS: Record<string, DatasetFormat> = {
  csv: 'csv',
  tsv: 'tsv',
  tab: 'tsv',
  jsonl: 'jsonl',
  ndjson: 'jsonl',
  json: 'json',
  txt: 'text',
  text: 'text',
  md: 'text',
  markdown: 'text',
};
const SPREADSHEETS = new Set(['xlsx', 'xls', 'xlsm', 'ods', 'numbers']);

/** The format to read `text` as: by extension, then by content. */
export function datasetFormat(fileName: string, text: string): DatasetFormat {
  const extension = /\.([a-z0-9]+)$/i.exec(fileName)?.[1].toLowerCase() ?? '';
  if (SPREADSHEETS.has(extension)) {
    throw new DatasetError(
      `${fileName} is a spreadsheet workbook, which webtune cannot read directly. ` +
        'In your spreadsheet app choose Save As / Download → "CSV UTF-8", then open that file.',
    );
  }
  const byName = EXTENSIONS[extension];
  const first = text.trimStart()[0];
  const jsonByContent: DatasetFormat | undefined =
    first === '[' ? 'json' : first === '{' ? 'jsonl' : undefined;
  // JSON Lines are often saved as .json and the other way round; the first character settles it,
  // except for a .json holding one pretty-printed object, which the JSON reader explains.
  if (byName === 'json' && jsonByContent === 'jsonl' && !firstLineIsJson(text)) return 'json';
  if (byName === 'json' || byName === 'jsonl') return jsonByContent ?? byName;
  // JSON Lines saved as .txt stay JSON Lines; other text is a document.
  if (byName === 'text' && !isMarkdownFile(fileName) && jsonByContent === 'jsonl' && firstLineIsJson(text))
    return 'jsonl';
  if (byName) return byName;
  if (jsonByContent) return jsonByContent;
  const firstLine = text.split(/\r\n|\n|\r/, 1)[0];
  return count(firstLine, '\t') > count(firstLine, ',') ? 'tsv' : 'csv';
}

function firstLineIsJson(text: string): boolean {
  try {
    JSON.parse(text.trimStart().split(/\r\n|\n|\r/, 1)[0]);
    return true;
  } catch {
    return false;
  }
}

const count = (text: string, char: string) => text.split(char).length - 1;

/** Refuses binary files and text that was decoded with the wrong encoding before it reached us. */
function checkIsText(text: string): void {
  const nul = text.indexOf('\u0000');
  if (nul >= 0) {
    const line = lineIndex(text)(nul);
    throw new DatasetError(
      `Line ${line} contains NUL bytes, so this is not a text file (or it is UTF-16 text without a byte-order mark). ` +
        'Export the data as "CSV UTF-8" or as JSON Lines and open that file.',
      line,
    );
  }
  const replacement = text.indexOf('\ufffd');
  if (replacement >= 0) {
    const line = lineIndex(text)(replacement);
    throw new DatasetError(
      `Line ${line} contains "\ufffd" where characters could not be read, so the file was not saved as UTF-8. ` +
        'Save it again as "CSV UTF-8" (or UTF-8 text) and open it again.',
      line,
    );
  }
}
