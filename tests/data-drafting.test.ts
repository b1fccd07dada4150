/**
 * Questions drafted from a document, the parts that need no model: what models write read back into pairs
 * (hand-written outputs in the shapes instruct models use, and junk), the document cut into chunks (checked
 * against the document's own text and lines), the prompt against the tokenizer's own chat template, and the
 * saved JSON Lines against the project's file reader and layout detection.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { chatTemplateFormat, detectLayout, parseDataset, plainFormat, renderDataset } from '../src/data';
import {
  chunkDocument,
  draftedFileName,
  draftPrompt,
  isDocumentFile,
  MIN_CHUNK_CHARS,
  pairsToJsonl,
  parseDraftedPairs,
} from '../src/data/drafting';
import { dataFile, loadTokenizer } from './fixtures/data/shared';

const LAMP = [
  { question: 'How do you switch the lamp on?', answer: 'Touch the ring on the base once.' },
  { question: 'How long does the battery last at full brightness?', answer: 'About eight hours.' },
  { question: 'What colour is the charging light when the battery is full?', answer: 'Green.' },
];

describe('what a model wrote, read back into pairs', () => {
  const shapes: [string, string][] = [
    [
      'Q:/A: lines',
      'Q: How do you switch the lamp on?\nA: Touch the ring on the base once.\n\n' +
        'Q: How long does the battery last at full brightness?\nA: About eight hours.\n\n' +
        'Q: What colour is the charging light when the battery is full?\nA: Green.',
    ],
    [
      'numbered, bold Question/Answer labels and a closing remark',
      'Here are three questions based on the text:\n\n' +
        '1. **Question:** How do you switch the lamp on?\n   **Answer:** Touch the ring on the base once.\n\n' +
        '2. **Question:** How long does the battery last at full brightness?\n   **Answer:** About eight hours.\n\n' +
        '3. **Question:** What colour is the charging light when the battery is full?\n   **Answer:** Green.\n\n' +
        'I hope these questions help you check your understanding of the text!',
    ],
    [
      'numbered labels Q1:/A1:, bold around the label and its colon',
      '**Q1:** How do you switch the lamp on?\n**A1:** Touch the ring on the base once.\n' +
        '**Q2:** How long does the battery last at full brightness?\n**A2:** About eight hours.\n' +
        '**Q3:** What colour is the charging light when the battery is full?\n**A3:** Green.\n',
    ],
    [
      'a pair on one line',
      'Q: How do you switch the lamp on? A: Touch the ring on the base once.\n' +
        'Q: How long does the battery last at full brightness? A: About eight hours.\n' +
        'Q: What colour is the charging light when the battery is full? A: Green.',
    ],
    [
      'a numbered list of questions, each answer on the next line',
      '1. How do you switch the lamp on?\n   Touch the ring on the base once.\n' +
        '2. How long does the battery last at full brightness?\n   About eight hours.\n' +
        '3. What colour is the charging light when the battery is full?\n   Green.',
    ],
    [
      'a numbered list, question and answer on one line',
      '1. How do you switch the lamp on? Touch the ring on the base once.\n' +
        '2) How long does the battery last at full brightness? - About eight hours.\n' +
        '3. What colour is the charging light when the battery is full? Green.',
    ],
    [
      'a JSON array in a fence',
      'Sure! Here they are:\n```json\n[\n' +
        LAMP.map(
          (p) => `  {"question": ${JSON.stringify(p.question)}, "answer": ${JSON.stringify(p.answer)}}`,
        ).join(',\n') +
        '\n]\n```',
    ],
    [
      'a JSON object holding the list, other field names',
      JSON.stringify({ questions: LAMP.map((p) => ({ Q: p.question, A: p.answer })) }, null, 2),
    ],
    ['JSON Lines', LAMP.map((p) => JSON.stringify({ prompt: p.question, completion: p.answer })).join('\n')],
  ];
  for (const [shape, output] of shapes)
    it(`reads ${shape}`, () => {
      expect(parseDraftedPairs(output)).toEqual(LAMP);
      expect(parseDraftedPairs(output.replace(/\n/g, '\r\n'))).toEqual(LAMP);
    });

  it('keeps an answer over several lines, up to a blank line', () => {
    const output =
      'Q: How do you charge it?\nA: Plug a USB-C cable into the port\nat the back of the base.\n\nThat is all.';
    expect(parseDraftedPairs(output)).toEqual([
      {
        question: 'How do you charge it?',
        answer: 'Plug a USB-C cable into the port\nat the back of the base.',
      },
    ]);
  });

  it('drops incomplete pairs and repeats, keeps the rest', () => {
    const output =
      'Q: How do you switch the lamp on?\nA: Touch the ring on the base once.\n' +
      'Q: How do you switch the lamp on?\nA: Touch the ring on the base once.\n' + // a repeat
      'A: An answer with no question.\n' +
      'Q: What is the guarantee?\nA:\n' + // an empty answer
      'Q: What colour is the charging light when the battery is full?\nA: Green.\n' +
      'Q: What should you not use on the ring?'; // cut off: no answer
    expect(parseDraftedPairs(output)).toEqual([LAMP[0], LAMP[2]]);
  });

  it('finds nothing in junk, and takes no sentence that merely starts with A for an answer', () => {
    for (const junk of [
      '',
      'Once upon a time, there was a little girl named Lily. She loved to play outside.',
      'A: B: C:',
      'Apple: a fruit.\nQuestion everything.',
      '[1, 2, 3] {"not": "a pair"}',
      '```json\n{"question": "Broken JSON", \n```',
      'Why is the sky blue?', // a question with no answer
    ])
      expect(parseDraftedPairs(junk), junk).toEqual([]);
  });
});

describe('a document cut into chunks', () => {
  const text = fs.readFileSync(dataFile('lamp-manual.md'), 'utf8');
  const lines = text.split('\n');
  const words = (s: string) => s.split(/\s+/).filter(Boolean);

  for (const size of [MIN_CHUNK_CHARS, 300, 600, 1500, 100_000])
    it(`keeps every word in order, each chunk within ${size} characters, starting on its line`, () => {
      const chunks = chunkDocument(text, size);
      expect(chunks.flatMap((c) => words(c.text))).toEqual(words(text));
      chunks.forEach((chunk, i) => {
        expect(chunk.index).toBe(i);
        // A heading may carry past the size, with the start of the section it names.
        const body = chunk.text.replace(/^(#.*\n\n)+/, '');
        expect(body.length).toBeLessThanOrEqual(size);
        // (A chunk cut from a long paragraph starts inside its line.)
        expect(lines[chunk.line - 1]).toContain(chunk.text.split('\n')[0]);
        // No chunk is a heading alone, or ends with one.
        expect(chunk.text.split('\n').at(-1)).not.toMatch(/^#/);
      });
    });

  it('starts a section in a new chunk when it fits, and puts short sections together', () => {
    const chunks = chunkDocument(text, 600);
    // Each "## " section of the manual is under 600 characters, so each starts a chunk.
    const sections = lines.filter((l) => l.startsWith('## '));
    for (const heading of sections) expect(chunks.some((c) => c.text.startsWith(heading))).toBe(true);
    expect(chunkDocument(text, 100_000)).toHaveLength(1);
  });

  it('cuts a paragraph longer than a chunk after a sentence', () => {
    const sentence = 'The lamp has a ring that you touch to switch it on. ';
    const paragraph = sentence.repeat(20).trim();
    const chunks = chunkDocument(paragraph, 300);
    expect(chunks.length).toBeGreaterThan(3);
    for (const chunk of chunks) expect(chunk.text).toMatch(/^The lamp .*on\.$/s);
    expect(chunks.map((c) => c.text).join(' ')).toBe(paragraph);
  });

  it('gives no chunks for an empty document and refuses a tiny chunk size in words', () => {
    expect(chunkDocument('  \n\n \r\n', 500)).toEqual([]);
    expect(() => chunkDocument(text, 50)).toThrow(/chunk size is 50 characters; it must be at least 200/);
  });
});

describe('the prompt for a chunk', () => {
  it("is the chat template's own rendering of the instruction and the chunk as the user's message", () => {
    const tokenizer = loadTokenizer('stories260K-chat');
    const content = 'Write 2 questions.\n\nText:\nThe lamp is blue.';
    expect(draftPrompt('Write 2 questions.', 'The lamp is blue.', chatTemplateFormat(tokenizer))).toBe(
      tokenizer.applyChatTemplate([{ role: 'user', content }], { addGenerationPrompt: true }),
    );
  });

  it('is refused, saying why, for a model without a chat template', () => {
    expect(() => draftPrompt('Write 2 questions.', 'The lamp is blue.', plainFormat())).toThrow(
      /needs an instruct model, one with a chat template.*Load an instruct model/,
    );
  });
});

describe('the drafted dataset', () => {
  it('is JSON Lines that webtune reads as a prompt/completion dataset, the pairs as written', () => {
    const pairs = [...LAMP, { question: 'Is it "bright"?\nReally?', answer: 'Yes, {very} — 100%.' }];
    const fileName = draftedFileName('lamp-manual.md');
    expect(fileName).toBe('lamp-manual-questions.jsonl');
    const dataset = parseDataset(pairsToJsonl(pairs), fileName);
    expect(dataset.format).toBe('jsonl');
    expect(dataset.rows).toEqual(pairs.map((p) => ({ prompt: p.question, completion: p.answer })));
    const mapping = detectLayout(dataset.columns)!;
    expect(mapping).toEqual({
      kind: 'template',
      promptTemplate: '{prompt}',
      completionTemplate: '{completion}',
    });
    const rendered = renderDataset(dataset, mapping, plainFormat());
    expect(rendered.examples.map((e) => [e.prompt, e.completion])).toEqual(
      pairs.map((p) => [`${p.question}\n`, p.answer]),
    );
  });

  it('names the row that lost its question or answer', () => {
    expect(() => pairsToJsonl([LAMP[0], { question: 'Why?', answer: ' ' }])).toThrow(
      'Row 2 has no answer. Write one, or delete the row (or untick Keep).',
    );
    expect(() => pairsToJsonl([])).toThrow(/no pairs to save/);
  });

  it('comes from a .txt or .md file', () => {
    for (const name of ['notes.md', 'NOTES.TXT', 'a.markdown']) expect(isDocumentFile(name)).toBe(true);
    for (const name of ['notes.csv', 'md', 'notes.md.zip']) expect(isDocumentFile(name)).toBe(false);
    expect(draftedFileName('notes')).toBe('notes-questions.jsonl');
  });
});
