/**
 * Documents as training data: .txt/.md files read as documents, windows whose tokens are the tokenizer's own
 * encoding of each document (the tokenizer is the reference), masks, the Markdown headings rule, and the
 * seeded split of windows.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { detectLayout, parseDataset, splitTrainValidation, type Mapping } from '../src/data';
import { documentBundle, parseDocuments } from '../src/data/document-files';
import {
  buildDocumentSplit,
  cutWindows,
  markdownHeadings,
  windowText,
  type DocumentWindow,
  type TextMapping,
} from '../src/data/documents';
import { buildTrainingSet } from '../src/data/training-set';
import { plainFormat } from '../src/data/template';
import { createTokenizer, type Tokenizer } from '../src/engine/tokenizer';
import { trainByteBpe, tokenizerJson } from './helpers/byte-bpe';
import { dataFile, loadTokenizer } from './fixtures/data/shared';

const notes = fs.readFileSync(dataFile('notes.md'), 'utf8');
const story = fs.readFileSync(dataFile('garden-story.txt'), 'utf8');
const stories = loadTokenizer('stories260K');
/** A Qwen2-style byte-level BPE (another family: no BOS, "\n" merged with punctuation before it). */
const byteLevel: Tokenizer = createTokenizer({
  tokenizerJson: tokenizerJson(trainByteBpe(notes + story, 400, ['<|endoftext|>']), 'qwen2', 'strings'),
  tokenizerConfig: { tokenizer_class: 'Qwen2Tokenizer', eos_token: '<|endoftext|>', bos_token: null },
});
const TOKENIZERS = { stories260K: stories, 'byte-level BPE': byteLevel } as const;

const documents = (maxLength: number, overlap: number, tokenizer: Tokenizer, valSplit = 0) => {
  const dataset = parseDocuments([
    { name: 'notes.md', text: notes },
    { name: 'garden-story.txt', text: story },
  ]);
  const mapping = detectLayout(dataset.columns) as TextMapping;
  return buildDocumentSplit(dataset, { ...mapping, overlap }, tokenizer, { maxLength, valSplit, seed: 3 });
};

/** Each document's tokens as the tokenizer gives them for the whole text, then EOS. */
const expectedIds = (text: string, tokenizer: Tokenizer) => [
  ...tokenizer.encode(text, { addSpecialTokens: true }),
  tokenizer.eosTokenId!,
];

describe('document files', () => {
  it('reads a .md or .txt file as one document, detected as documents with the default overlap', () => {
    const dataset = parseDataset(notes, 'notes.md');
    expect(dataset.format).toBe('text');
    expect(dataset.rows).toEqual([{ file: 'notes.md', text: notes }]);
    expect(detectLayout(dataset.columns)).toEqual({ kind: 'text', column: 'text', overlap: 32 });
    expect(parseDataset('Just a line.\r\nAnd another.', 'a.txt').rows[0].text).toBe(
      'Just a line.\nAnd another.',
    );
  });

  it('reads a JSON Lines or CSV file of only a text column as documents; with other columns, as before', () => {
    const jsonl = parseDataset('{"text": "One story."}\n{"text": "Another story."}\n', 'texts.jsonl');
    expect(detectLayout(jsonl.columns)).toEqual({ kind: 'text', column: 'text', overlap: 32 });
    expect(detectLayout(parseDataset('Text\n"One, two."\n', 'a.csv').columns)).toMatchObject({
      column: 'Text',
    });
    const withLabel = parseDataset('{"text": "x", "label": "y"}\n', 'a.jsonl');
    expect(detectLayout(withLabel.columns)).toEqual({
      kind: 'template',
      promptTemplate: '',
      completionTemplate: '{text}',
    } satisfies Mapping);
  });

  it('stores several files as one JSON Lines file that reopens as the same documents', () => {
    const files = [
      { name: 'notes.md', text: notes },
      { name: 'garden-story.txt', text: story },
    ];
    const bundle = documentBundle(files);
    expect(bundle.fileName).toBe('notes.md + garden-story.txt.jsonl');
    const reopened = parseDataset(bundle.text, bundle.fileName);
    expect(reopened.rows).toEqual(parseDocuments(files).rows);
    expect(detectLayout(reopened.columns)).toMatchObject({ kind: 'text', column: 'text' });
  });

  it('refuses an empty file by name', () => {
    expect(() => parseDocuments([{ name: 'empty.txt', text: ' \n' }])).toThrow(/empty\.txt is empty/);
  });
});

describe.each(Object.entries(TOKENIZERS))('windows with %s', (_name, tokenizer) => {
  for (const [maxLength, overlap] of [
    [64, 32],
    [48, 1],
    [128, 8],
  ]) {
    it(`give back each document's own tokens, every target once (max ${maxLength}, overlap ${overlap})`, () => {
      const split = documents(maxLength, overlap, tokenizer);
      split.documents.forEach((document, d) => {
        const ids = expectedIds(document.text, tokenizer);
        const windows = split.windows.filter((w) => w.document === d);
        // The first token, then each window's targets, in order, give the document back.
        const joined = [ids[0], ...windows.flatMap((w) => w.ids.filter((_, i) => w.completionMask[i] === 1))];
        expect(joined).toEqual(ids);
        for (const [k, w] of windows.entries()) {
          expect(w.ids.length).toBeLessThanOrEqual(maxLength);
          expect(w.ids).toEqual(ids.slice(w.contextStart, w.end));
          // Context first (the overlap, or the document's first token), then only targets.
          const context = k === 0 ? 1 : overlap;
          expect(w.completionMask).toEqual(w.ids.map((_, i) => (i < context ? 0 : 1)));
          // EOS only where the document ends.
          const eos = w.ids.filter((id) => id === tokenizer.eosTokenId).length;
          expect(eos).toBe(k === windows.length - 1 ? 1 : 0);
        }
      });
    });
  }

  it('show each window as its context and the text it is trained on', () => {
    const split = documents(64, 16, tokenizer);
    const [first, second] = split.windows;
    const one = windowText(first, tokenizer);
    const two = windowText(second, tokenizer);
    expect(notes.startsWith(one.context + one.targets)).toBe(true);
    expect(one.targets.endsWith(two.context.slice(-5))).toBe(true);
  });
});

describe('the Markdown headings rule', () => {
  it('ends a window before a heading in its last quarter of targets (hand-worked spans)', () => {
    // 100 tokens, windows of 20 with 4 of overlap; headings start at tokens 18, 30 and 70.
    const headings = new Set([18, 30, 70]);
    const spans = cutWindows(100, { maxLength: 20, overlap: 4, headingAt: (t) => headings.has(t) });
    expect(spans.slice(0, 5)).toEqual([
      { contextStart: 0, start: 1, end: 18 }, // natural end 20: the heading at 18 is within 4 (19/4) of it
      { contextStart: 14, start: 18, end: 30 }, // natural end 34: 30 is within 4 (16/4)
      { contextStart: 26, start: 30, end: 46 }, // natural end 46: no heading in 42..45
      { contextStart: 42, start: 46, end: 62 },
      { contextStart: 58, start: 62, end: 78 }, // 70 is 8 before 78, more than 4: the section is cut
    ]);
    const plain = cutWindows(100, { maxLength: 20, overlap: 4 });
    expect(plain[0]).toEqual({ contextStart: 0, start: 1, end: 20 });
  });

  it('finds headings outside code fences only', () => {
    expect(markdownHeadings(notes)).toEqual([
      "# Lily's garden notes",
      '## Tomatoes',
      '## Beans',
      '## Carrots',
      '## Watering',
      '## Bugs',
      '## What Lily learned',
    ]);
  });

  it.each(Object.entries(TOKENIZERS))(
    'moves headings to the start of windows in notes.md (%s)',
    (_n, tokenizer) => {
      const ids = expectedIds(notes, tokenizer);
      // Where each heading starts, from the tokenizer's encoding of the text before it (independent).
      const headingTokens = markdownHeadings(notes).map((h) => {
        const at = notes.indexOf(`\n${h}\n`) + 1;
        const before = tokenizer.encode(notes.slice(0, at), { addSpecialTokens: true });
        expect(ids.slice(0, before.length)).toEqual(before);
        return before.length;
      });
      const fence = tokenizer.encode(notes.slice(0, notes.indexOf('# fill')), {
        addSpecialTokens: true,
      }).length;
      let moved = 0;
      for (const maxLength of [32, 40, 56, 72]) {
        const split = documents(maxLength, 8, tokenizer);
        const windows = split.windows.filter((w) => w.document === 0);
        windows.slice(0, -1).forEach((w: DocumentWindow) => {
          const natural = w.contextStart + maxLength;
          const reach = Math.floor((natural - w.start) / 4);
          const inTail = headingTokens.filter((h) => h >= natural - reach && h < natural && h > w.start);
          expect(w.end).toBe(inTail.length ? Math.max(...inTail) : natural);
          expect(w.end).not.toBe(fence);
          if (inTail.length) {
            moved++;
            expect(tokenizer.decode(ids.slice(w.end, w.end + 3))).toMatch(/^##? /);
          }
        });
      }
      expect(moved).toBeGreaterThan(0);
    },
  );
});

describe('held-out windows', () => {
  it('are chosen by seed over the windows, as rows are', () => {
    const split = documents(64, 16, stories, 0.2);
    const expected = splitTrainValidation(
      split.windows.map((_, i) => i),
      0.2,
      3,
    );
    expect(split.validation).toEqual(expected.validation);
    expect(split.validation.length).toBe(Math.round(split.windows.length * 0.2));
    expect(split.train.length + split.validation.length).toBe(split.windows.length);
  });

  it('batch as the training set: every training window once per epoch', () => {
    const dataset = parseDocuments([
      { name: 'notes.md', text: notes },
      { name: 'garden-story.txt', text: story },
    ]);
    const mapping = { ...(detectLayout(dataset.columns) as TextMapping), overlap: 16 };
    const set = buildTrainingSet(dataset, stories, {
      mapping,
      format: plainFormat(),
      maxLength: 64,
      valSplit: 0.2,
      batchSize: 4,
      seed: 3,
    });
    const split = documents(64, 16, stories, 0.2);
    expect(set.train.map((p) => p.encoded)).toEqual(split.train.map((i) => split.windows[i]));
    expect(set.validation.map((p) => p.encoded)).toEqual(split.validation.map((i) => split.windows[i]));
    const rows = set.data.epochBatches(0).reduce((n, b) => n + b.batchSize, 0);
    expect(rows).toBe(split.train.length);
    expect(set.stats.examples).toBe(split.windows.length);
    expect(set.stats.rows).toBe(2);
  });
});
