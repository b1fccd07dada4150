/**
 * Files that used to take the reader down (issue 10, findings 3 and 4): a sparse JSON Lines file whose rows
 * each bring their own field names (every row used to get a cell for every column), and cells of megabytes
 * (whole texts were tokenised before being cut at max length). Each is read in bounded time and memory, or
 * refused with one sentence naming the limit and the place.
 */
import { describe, expect, it } from 'vitest';
import {
  encodeExample,
  parseDataset,
  plainFormat,
  renderDataset,
  renderExample,
  type EncodedExample,
} from '../src/data';
import { CHARS_PER_TOKEN, SLACK_TOKENS } from '../src/data/encode';
import { MAX_COLUMNS } from '../src/data/dataset';
import type { Tokenizer } from '../src/engine/tokenizer';
import { loadTokenizer } from './fixtures/data/shared';

const jsonl = (rows: object[]) => rows.map((r) => JSON.stringify(r)).join('\n');

/** Heap and array-buffer growth while `run` runs, after a garbage collection when Node exposes it. */
function growth<T>(run: () => T): { value: T; bytes: number; seconds: number } {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const before = process.memoryUsage();
  const started = performance.now();
  const value = run();
  const seconds = (performance.now() - started) / 1000;
  const after = process.memoryUsage();
  return {
    value,
    seconds,
    bytes: after.heapUsed - before.heapUsed + (after.arrayBuffers - before.arrayBuffers),
  };
}

describe('a sparse JSON Lines file', () => {
  it('keeps only the fields each row has: 10,000 rows over 1,000 field names parse in seconds and little memory', () => {
    // Every row: prompt, completion and one of 998 extra fields — 1,000 columns in all (the most allowed).
    const text = jsonl(
      Array.from({ length: 10_000 }, (_, i) => ({
        prompt: `Q${i}`,
        completion: `A${i}`,
        [`extra_${i % 998}`]: `x${i}`,
      })),
    );
    const { value: dataset, bytes, seconds } = growth(() => parseDataset(text, 'sparse.jsonl'));
    expect(dataset.columns).toHaveLength(MAX_COLUMNS);
    expect(dataset.rows).toHaveLength(10_000);
    expect(Object.keys(dataset.rows[1234])).toEqual(['prompt', 'completion', 'extra_236']);
    // A cell for every column would be 10 million cells (hundreds of MB, many seconds).
    expect(seconds).toBeLessThan(5);
    expect(bytes).toBeLessThan(60 * 1024 * 1024);
    // A missing field reads as empty text: the line that is nothing but {extra_0} is left out.
    const mapping = {
      kind: 'template' as const,
      promptTemplate: '{extra_0}\n{prompt}',
      completionTemplate: '{completion}',
    };
    const rendered = renderDataset(dataset, mapping, plainFormat());
    expect(rendered.examples).toHaveLength(10_000);
    expect(rendered.examples[0]).toMatchObject({ prompt: 'x0\nQ0\n', completion: 'A0' });
    expect(rendered.examples[1]).toMatchObject({ prompt: 'Q1\n', completion: 'A1' });
  });

  it('refuses more than 1,000 field names at once, naming the limit, the line and what to do', () => {
    const text = jsonl(
      Array.from({ length: 10_000 }, (_, i) => ({ prompt: `Q${i}`, completion: `A${i}`, [`key_${i}`]: 'v' })),
    );
    const started = performance.now();
    expect(() => parseDataset(text, 'sparse.jsonl')).toThrow(
      /^Line 999 adds the column 'key_998', more than 1,000 different column names in all; webtune reads at most 1,000\. Give every row the same few fields/,
    );
    expect(performance.now() - started).toBeLessThan(3000);
  });

  it('refuses a CSV header of more than 1,000 columns', () => {
    const header = Array.from({ length: 1001 }, (_, i) => `c${i}`);
    expect(() =>
      parseDataset(`${header.join(',')}\n${header.map(() => 'x').join(',')}\n`, 'wide.csv'),
    ).toThrow(/^The header row adds the column 'c1000'.*at most 1,000/);
  });
});

describe('a cell of megabytes', () => {
  const big = 'All work and no play makes Jack a dull boy. '
    .repeat(Math.ceil((20 * 1024 * 1024) / 44))
    .slice(0, 20 * 1024 * 1024);

  it('is refused in seconds, naming the row and the column (CSV)', () => {
    const started = performance.now();
    expect(() => parseDataset(`question,answer\nHi,Hello\nWho?,"${big}"\n`, 'big.csv')).toThrow(
      "Row 3, column 'answer' holds 20.0 MB of text; the most a cell can hold is 1 MB. Shorten it or remove the row.",
    );
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it('is refused in seconds, naming the line and the field (JSONL, chat messages)', () => {
    expect(() =>
      parseDataset(
        jsonl([
          { prompt: 'a', completion: 'b' },
          { prompt: big, completion: 'c' },
        ]),
        'big.jsonl',
      ),
    ).toThrow(/^Line 2, field 'prompt' holds 20\.0 MB of text; the most a cell can hold is 1 MB/);
    const chat = jsonl([
      {
        messages: [
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content: big.slice(0, 2 * 1024 * 1024) },
        ],
      },
    ]);
    expect(() => parseDataset(chat, 'chat.jsonl')).toThrow(
      /^Line 1, message 2 in "messages" holds 2\.0 MB of text/,
    );
  });

  it('counts UTF-8 bytes: 400,000 characters of 3-byte text are over the limit, 1 MB of ASCII is not', () => {
    expect(() => parseDataset(`prompt,completion\nq,${'日'.repeat(400_000)}\n`, 'cjk.csv')).toThrow(
      /^Row 2, column 'completion' holds 1\.1 MB/,
    );
    expect(parseDataset(`prompt,completion\nq,${'a'.repeat(1024 * 1024)}\n`, 'ascii.csv').rows).toHaveLength(
      1,
    );
  });
});

/** The tokenizer, recording how long each text it was asked to encode was. */
function counting(tokenizer: Tokenizer): { tokenizer: Tokenizer; lengths: number[] } {
  const lengths: number[] = [];
  return {
    tokenizer: {
      ...tokenizer,
      encode: (text, options) => (lengths.push(text.length), tokenizer.encode(text, options)),
    },
    lengths,
  };
}

/** What encodeExample did before texts were cut: tokenise both whole texts, then keep the first maxLength. */
function wholeThenTruncate(
  prompt: string,
  completion: string,
  tokenizer: Tokenizer,
  maxLength: number,
): EncodedExample {
  const ids = tokenizer.encode(prompt + completion, { addSpecialTokens: true });
  const promptIds = tokenizer.encode(prompt, { addSpecialTokens: true });
  let boundary = 0;
  while (boundary < ids.length && boundary < promptIds.length && ids[boundary] === promptIds[boundary])
    boundary++;
  const eos = tokenizer.eosTokenId;
  if (eos !== null && !ids.slice(boundary).includes(eos)) ids.push(eos);
  const completionMask = ids.map((_, i) => (i >= boundary ? 1 : 0));
  return {
    ids: ids.slice(0, maxLength),
    completionMask: completionMask.slice(0, maxLength),
    truncated: ids.length > maxLength,
  };
}

const words = (n: number, seed: number) => {
  const vocabulary = [
    'Once',
    'upon',
    'a',
    'time',
    'there',
    'was',
    'little',
    'girl',
    'named',
    'Lily.',
    'She',
    'liked',
    'to',
    'play,',
    'and',
    '"run"',
    '42',
    '3.14',
    "don't",
    'Tom!',
  ];
  let state = seed;
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    out.push(
      vocabulary[state % vocabulary.length] + (state % 13 === 0 ? '\n' : state % 17 === 0 ? '  ' : ' '),
    );
  }
  return out.join('');
};

const LONG_TEXTS: Record<string, string> = {
  prose: words(5_000, 1),
  'no spaces': 'abcab'.repeat(4_000),
  'one letter': 'a'.repeat(20_000),
  whitespace: ' \n\t  '.repeat(4_000),
  digits: '0123456789'.repeat(2_000),
  'CJK and emoji (surrogate pairs)': '日本語のテキスト😀🎉 '.repeat(1_700),
};

describe.each(['stories260K', 'tiny-random-qwen2'])(
  'tokenising only the start of a long text (%s)',
  (model) => {
    const real = loadTokenizer(model);

    it.each([16, 64, 256])(
      'keeps exactly the tokens a whole encode and truncate keeps, at max length %i',
      (maxLength) => {
        const bound = (maxLength + SLACK_TOKENS) * CHARS_PER_TOKEN;
        for (const [name, text] of Object.entries(LONG_TEXTS)) {
          expect(text.length, name).toBeGreaterThan(bound);
          // A long completion after a short prompt, a long prompt, and a cut right inside a surrogate pair.
          const cases: [string, string][] = [
            ['Tell me a story.\n', text],
            [text, 'The end.'],
            [text.slice(0, bound - 1), text],
            [`${text.slice(0, text.length / 2)}\n`, text.slice(text.length / 2)],
          ];
          for (const [prompt, completion] of cases) {
            const { tokenizer, lengths } = counting(real);
            const encoded = encodeExample({ prompt, completion }, tokenizer, { maxLength, addEos: true });
            expect(encoded, `${name}, prompt of ${prompt.length} characters`).toEqual(
              wholeThenTruncate(prompt, completion, real, maxLength),
            );
            expect(encoded.truncated).toBe(true);
            // Never more of a text than the bound, and the whole text only when it is short.
            expect(Math.max(...lengths)).toBeLessThanOrEqual(bound);
          }
        }
      },
    );

    it('tokenises a 1 MB cell at max length 256 in well under a second', () => {
      const cell = words(200_000, 7).slice(0, 1024 * 1024);
      const { tokenizer, lengths } = counting(real);
      const started = performance.now();
      const encoded = encodeExample(
        renderExample(
          { q: 'Who?', a: cell },
          { kind: 'template', promptTemplate: '{q}', completionTemplate: '{a}' },
          plainFormat(),
        ),
        tokenizer,
        { maxLength: 256, addEos: true },
      );
      expect(performance.now() - started).toBeLessThan(1000);
      expect(encoded.ids).toHaveLength(256);
      expect(lengths).toHaveLength(2);
    });
  },
);
