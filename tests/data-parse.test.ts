/** Reading dataset files: the example datasets, and inputs made to break a reader. */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  DatasetError,
  MAX_DATASET_BYTES,
  checkDatasetSize,
  decodeDatasetBytes,
  detectLayout,
  parseDataset,
  type Dataset,
} from '../src/data';
import { dataFile, fixtureBytes as fixture } from './fixtures/data/shared';

const readShared = (name: string) =>
  parseDataset(decodeDatasetBytes(new Uint8Array(fs.readFileSync(dataFile(name)))), name);

/** The DatasetError thrown by `run`, so tests can look at its message and line. */
function datasetError(run: () => unknown): DatasetError {
  try {
    run();
  } catch (error) {
    if (error instanceof DatasetError) return error;
    throw error;
  }
  throw new Error('expected a DatasetError');
}

describe('the example datasets', () => {
  it('best-friends.csv: CRLF csv with question/answer', () => {
    const data = readShared('best-friends.csv');
    expect(data.format).toBe('csv');
    expect(data.columns).toEqual(['question', 'answer']);
    expect(data.rows).toHaveLength(36);
    expect(data.rows[0]).toEqual({ question: 'Who is Tom?', answer: 'Tom is my best friend.' });
    expect(data.rows[35]).toEqual({ question: 'Who is Ruby?', answer: 'Ruby is my best friend.' });
    expect(data.rowLines.slice(0, 2)).toEqual([2, 3]);
    expect(data.skipped).toEqual([]);
    expect(detectLayout(data.columns)).toEqual({
      kind: 'template',
      promptTemplate: '{question}',
      completionTemplate: '{answer}',
    });
  });

  it('support-tickets.csv: ticket/department is not a known layout', () => {
    const data = readShared('support-tickets.csv');
    expect(data.columns).toEqual(['ticket', 'department']);
    expect(data.rows).toHaveLength(16);
    expect(data.rows[4]).toEqual({
      ticket: 'The app crashes when I open settings.',
      department: 'technical',
    });
    expect(detectLayout(data.columns)).toBeNull();
  });

  it('animal-sounds.jsonl: prompt/completion', () => {
    const data = readShared('animal-sounds.jsonl');
    expect(data.format).toBe('jsonl');
    expect(data.rows).toHaveLength(16);
    expect(data.rows[15]).toEqual({ prompt: 'What does the crow say?', completion: 'The crow says caw.' });
    expect(detectLayout(data.columns)).toEqual({
      kind: 'template',
      promptTemplate: '{prompt}',
      completionTemplate: '{completion}',
    });
  });

  it('alpaca-mini.jsonl: instruction/input/output', () => {
    const data = readShared('alpaca-mini.jsonl');
    expect(data.columns).toEqual(['instruction', 'input', 'output']);
    expect(data.rows).toHaveLength(10);
    expect(data.rows[6]).toEqual({ instruction: 'Count the words.', input: 'I like cake.', output: '3' });
    expect(detectLayout(data.columns)).toEqual({
      kind: 'template',
      promptTemplate: '{instruction}\n{input}',
      completionTemplate: '{output}',
    });
  });

  it('chat-mini.jsonl: messages become chat messages', () => {
    const data = readShared('chat-mini.jsonl');
    expect(data.columns).toEqual(['messages']);
    expect(data.rows).toHaveLength(10);
    expect(data.rows[9].messages).toEqual([
      { role: 'system', content: 'You answer in one short sentence.' },
      { role: 'user', content: 'What sound does a frog make?' },
      { role: 'assistant', content: 'A frog says ribbit.' },
    ]);
    expect(detectLayout(data.columns)).toEqual({ kind: 'chat' });
  });
});

describe('awkward but valid files', () => {
  it('reads BOM, CRLF, quoted newlines, quotes and commas in cells, emoji and empty cells', () => {
    const data = parseDataset(decodeDatasetBytes(fixture('messy.csv')), 'messy.csv');
    expect(data.columns).toEqual(['question', 'answer', 'notes']);
    expect(data.rows).toEqual([
      { question: 'Who is Tom?', answer: 'Tom is my friend,\nand my neighbour.', notes: '' },
      { question: 'She said "hi"', answer: 'Yes, she did 🙂', notes: 'quotes and emoji' },
      { question: '', answer: 'empty question', notes: '' },
      { question: 'Last', answer: 'multi\nline\nanswer', notes: 'a, b' },
    ]);
    // The quoted newline in row 2 pushes later rows down a line; the blank line 6 is not a row.
    expect(data.rowLines).toEqual([2, 4, 5, 7]);
  });

  it('keeps a BOM out of the first column name when the text still has it', () => {
    const data = parseDataset('\uFEFFprompt,completion\nA,B\n', 'x.csv');
    expect(data.columns).toEqual(['prompt', 'completion']);
  });

  it('reads a 100,000-character cell whole', () => {
    const long = 'word '.repeat(20_000);
    const data = parseDataset(`prompt,completion\r\nshort,"${long}"\r\n`, 'long.csv');
    expect((data.rows[0].completion as string).length).toBe(100_000);
  });

  it('reads TSV, semicolon CSV, and drops an empty trailing column', () => {
    expect(parseDataset('prompt\tcompletion\na, b\tc\n', 'x.tsv').rows).toEqual([
      { prompt: 'a, b', completion: 'c' },
    ]);
    expect(parseDataset('prompt;completion\na, b;c\n', 'x.csv').rows).toEqual([
      { prompt: 'a, b', completion: 'c' },
    ]);
    expect(parseDataset('prompt,completion,\na,b,\n', 'x.csv').columns).toEqual(['prompt', 'completion']);
    expect(parseDataset('prompt,completion,\na,b\n', 'x.csv').rows).toEqual([
      { prompt: 'a', completion: 'b' },
    ]);
  });

  it('decodes UTF-16 files with a byte-order mark', () => {
    expect(parseDataset(decodeDatasetBytes(fixture('utf16le.tsv')), 'utf16le.tsv').rows).toEqual([
      { prompt: 'naïve 日本', completion: 'yes 🙂' },
    ]);
    expect(parseDataset(decodeDatasetBytes(fixture('utf16be.csv')), 'utf16be.csv').rows).toEqual([
      { prompt: 'hi', completion: 'there' },
    ]);
  });

  it('chooses the format from the content when the name does not say or says wrong', () => {
    expect(parseDataset('{"text": "a"}\n{"text": "b"}\n', 'notes.txt').format).toBe('jsonl');
    expect(parseDataset('[{"text": "a"}]', 'data.jsonl').format).toBe('json');
    expect(parseDataset('{"text": "a"}\n{"text": "b"}\n', 'data.json').format).toBe('jsonl');
    expect(parseDataset('a\tb\n1\t2\n', 'clipboard').format).toBe('tsv');
  });

  it('reads a JSON array, giving columns in first-seen order and text for other values', () => {
    const data = parseDataset(
      '[\n  {"prompt": "a", "n": 3},\n  {"completion": "b", "prompt": null, "tags": ["x"]}\n]',
      'x.json',
    );
    expect(data.columns).toEqual(['prompt', 'n', 'completion', 'tags']);
    // Each row holds only the fields it has (a missing one reads as empty wherever rows are rendered).
    expect(data.rows).toEqual([
      { prompt: 'a', n: '3' },
      { completion: 'b', prompt: '', tags: '["x"]' },
    ]);
    expect(data.rowLines).toEqual([2, 3]);
  });

  it('skips a row with the wrong number of cells and says why', () => {
    const data = parseDataset('question,answer\nWho, really, is Tom?,Tom.\nWho is Sam?,Sam.\n', 'x.csv');
    expect(data.rows).toEqual([{ question: 'Who is Sam?', answer: 'Sam.' }]);
    expect(data.skipped).toHaveLength(1);
    expect(data.skipped[0].line).toBe(2);
    expect(data.skipped[0].reason).toMatch(/^Row 2 has 4 cells but the header has 2 columns/);
    expect(data.skipped[0].reason).toContain('double quotes');
  });
});

describe('broken files give an error that says what and where', () => {
  it('unbalanced quote names the row and the column', () => {
    const error = datasetError(() =>
      parseDataset(decodeDatasetBytes(fixture('unbalanced-quote.csv')), 'tickets.csv'),
    );
    expect(error.message).toBe(
      "Row 4: the closing quote is missing in column 'ticket'. Fix the file or export it again as CSV.",
    );
    expect(error.line).toBe(4);
  });

  it('gives both row and line when quoted newlines make them differ', () => {
    const error = datasetError(() => parseDataset('a,b\n1,"x\ny"\n2,"open\n', 'x.csv'));
    expect(error.message).toMatch(/^Row 3 \(line 4\): the closing quote is missing in column 'b'/);
  });

  it('a JSONL line that is not JSON names the line', () => {
    const error = datasetError(() =>
      parseDataset(decodeDatasetBytes(fixture('bad-line.jsonl')), 'bad.jsonl'),
    );
    expect(error.line).toBe(4);
    expect(error.message).toMatch(
      /^Line 4 is not valid JSON \(.+\)\. Each line of a \.jsonl file must be one JSON object/,
    );
  });

  it('a JSONL line that is not an object names the line', () => {
    const error = datasetError(() => parseDataset('{"text": "a"}\n["text", "b"]\n', 'x.jsonl'));
    expect(error.message).toMatch(/^Line 2 holds a list, not an object\./);
  });

  it('a JSON file that is one object, or has a bad item', () => {
    expect(datasetError(() => parseDataset('{\n  "rows": []\n}', 'x.json')).message).toMatch(
      /^The file holds one object, not a list of examples/,
    );
    expect(datasetError(() => parseDataset('[\n{"a": "x"},\n"y"\n]', 'x.json')).message).toMatch(
      /^Item 2 of the array \(line 3\) is the text "y"/,
    );
    expect(datasetError(() => parseDataset('[\n{"a": "x"},\n{"a" "y"}\n]', 'x.json')).message).toMatch(
      /^The file is not valid JSON on line 3/,
    );
  });

  it('a chat message without content names the line', () => {
    const error = datasetError(() =>
      parseDataset(
        '{"messages": [{"role": "user", "content": "hi"}]}\n{"messages": [{"role": "user"}]}',
        'c.jsonl',
      ),
    );
    expect(error.message).toMatch(/^Line 2: message 1 in "messages" has no text "content"/);
  });

  it('header only, empty file, no header', () => {
    expect(datasetError(() => parseDataset('question,answer\r\n', 'x.csv')).message).toBe(
      'The file has a header row (question, answer) but no data rows. Add at least one example below the header.',
    );
    expect(datasetError(() => parseDataset(' \n\n', 'x.csv')).message).toMatch(/^x\.csv is empty\./);
    const noHeader = datasetError(() =>
      parseDataset('Who is Tom?,Tom is my best friend.\r\nWho is Lily?,Lily is my best friend.\r\n', 'x.csv'),
    );
    expect(noHeader.message).toMatch(
      /^The first row \("Who is Tom\?,Tom is my best friend\."\) looks like an example, not column names\. Add a header row/,
    );
  });

  it('duplicate and empty column names', () => {
    expect(datasetError(() => parseDataset('question,answer,answer\na,b,c\n', 'x.csv')).message).toBe(
      "The header names the column 'answer' twice (columns 2 and 3). Rename one so every column has its own name.",
    );
    expect(datasetError(() => parseDataset('question,,answer\na,b,c\n', 'x.csv')).message).toMatch(
      /^Column 2 has no name in the header row/,
    );
  });

  it('binary and wrongly decoded text', () => {
    expect(datasetError(() => parseDataset('prompt,completion\na\u0000b,c\n', 'x.csv')).message).toMatch(
      /^Line 2 contains NUL bytes/,
    );
    const mojibake = new TextDecoder().decode(fixture('latin1.csv'));
    expect(datasetError(() => parseDataset(mojibake, 'x.csv')).message).toMatch(
      /^Line 3 contains "\uFFFD".*not saved as UTF-8/,
    );
    expect(datasetError(() => parseDataset('x', 'book.xlsx')).message).toMatch(
      /spreadsheet workbook.*CSV UTF-8/,
    );
  });
});

describe('bytes to text', () => {
  it('strips a UTF-8 BOM and keeps emoji', () => {
    const bytes = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode('a,b\n🙂,é\n')]);
    expect(decodeDatasetBytes(bytes)).toBe('a,b\n🙂,é\n');
  });

  it('refuses invalid UTF-8, naming the line and the byte', () => {
    const error = datasetError(() => decodeDatasetBytes(fixture('latin1.csv')));
    expect(error.line).toBe(3);
    expect(error.message).toMatch(
      /^Line 3 has a byte \(0xE9\) that is not UTF-8 text.*Save it again as "CSV UTF-8"/,
    );
  });

  it('refuses a ZIP / xlsx', () => {
    expect(
      datasetError(() => decodeDatasetBytes(new Uint8Array([0x50, 0x4b, 0x03, 0x04, 0, 0]))).message,
    ).toMatch(/Excel \.xlsx/);
  });

  it('refuses files over the size limit with a clear message', () => {
    expect(MAX_DATASET_BYTES).toBe(200 * 1024 * 1024);
    expect(() => checkDatasetSize(MAX_DATASET_BYTES)).not.toThrow();
    const error = datasetError(() => checkDatasetSize(300 * 1024 * 1024));
    expect(error.message).toBe(
      'The file is 300 MB, and webtune reads datasets up to 200 MB. Use a sample of the rows instead: a few thousand good examples are plenty for LoRA.',
    );
  });
});

it('a parsed dataset is plain data that can be posted to a worker', () => {
  const data: Dataset = readShared('chat-mini.jsonl');
  expect(structuredClone(data)).toEqual(data);
});
