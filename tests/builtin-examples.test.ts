/**
 * The "Try an example" datasets shipped in public/examples/: each goes through the same pipeline as a dropped
 * file (parse, detected layout, rendering) with the rows and layout the page claims, nothing skipped, every
 * example fits the default max length with a chat template, and the ticket one is a balanced label dataset
 * whose default split holds out every label. The one-line layout samples of the empty Data step are detected
 * too.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  chatTemplateFormat,
  detectLayout,
  encodeExamples,
  parseDataset,
  plainFormat,
  renderDataset,
  splitTrainValidation,
  type ChatMessage,
  type Mapping,
} from '../src/data';
import { detectLabels, labelSummary } from '../src/data/metrics';
import { BUILTIN_EXAMPLES, LAYOUT_SAMPLES } from '../src/ui/examples';
import { loadTokenizer } from './fixtures/data/shared';

const EXAMPLES = path.resolve(__dirname, '..', 'public', 'examples');
const read = (file: string) => fs.readFileSync(path.join(EXAMPLES, file), 'utf8');
const example = (file: string) => BUILTIN_EXAMPLES.find((e) => e.file === file)!;

/** What each file is claimed to be: format, rows, the layout detected from its columns. */
const CLAIMS: Record<string, { format: string; rows: number; mapping: Mapping }> = {
  'support-tickets.csv': {
    format: 'csv',
    rows: 40,
    mapping: { kind: 'template', promptTemplate: '{prompt}', completionTemplate: '{completion}' },
  },
  'product-questions.jsonl': {
    format: 'jsonl',
    rows: 36,
    mapping: { kind: 'template', promptTemplate: '{question}', completionTemplate: '{answer}' },
  },
  'pirate-guide.jsonl': { format: 'jsonl', rows: 30, mapping: { kind: 'chat' } },
};

/** The page's defaults (src/ui/state/dataset.svelte.ts): held-out share, seed, max length in tokens. */
const VAL_SPLIT = 0.1;
const SEED = 0;
const MAX_LENGTH = 256;

describe('the built-in examples', () => {
  it('are the three the page offers, each with a title, a one-sentence description and a file that exists', () => {
    expect(BUILTIN_EXAMPLES.map((e) => e.file).sort()).toEqual(Object.keys(CLAIMS).sort());
    for (const e of BUILTIN_EXAMPLES) {
      expect(e.title.length).toBeGreaterThan(5);
      expect(e.description.trim()).toMatch(/^[A-Z].*\.$/);
      expect(e.description.split(/[.!?](\s|$)/).filter((s) => s.trim()).length, e.description).toBe(1);
      expect(fs.existsSync(path.join(EXAMPLES, e.file))).toBe(true);
    }
  });

  for (const [file, claim] of Object.entries(CLAIMS)) {
    describe(file, () => {
      const dataset = parseDataset(read(file), file);
      const mapping = detectLayout(dataset.columns);

      it(`parses as ${claim.format} with ${claim.rows} rows and the layout detected from its columns`, () => {
        expect(dataset.format).toBe(claim.format);
        expect(dataset.rows).toHaveLength(claim.rows);
        expect(claim.rows).toBeGreaterThanOrEqual(30);
        expect(claim.rows).toBeLessThanOrEqual(60);
        expect(dataset.skipped).toEqual([]);
        expect(mapping).toEqual(claim.mapping);
        // The layout the card names is the one detected.
        const layout = example(file).layout;
        expect(layout.startsWith(claim.format === 'csv' ? 'CSV' : 'JSON Lines')).toBe(true);
        if (mapping!.kind === 'chat') expect(layout).toMatch(/messages/);
        else for (const column of dataset.columns) expect(layout).toContain(column);
      });

      it('renders every row into an example: none empty, none repeated, no prompt asked twice', () => {
        const rendered = renderDataset(dataset, mapping!, plainFormat());
        expect(rendered.skipped).toEqual([]);
        expect(rendered.examples).toHaveLength(claim.rows);
        for (const e of rendered.examples) {
          expect(e.prompt.trim().length, `line ${e.line}`).toBeGreaterThan(0);
          expect(e.completion.trim().length, `line ${e.line}`).toBeGreaterThan(0);
        }
        const prompts = rendered.examples.map((e) => e.prompt.trim().toLowerCase());
        expect(new Set(prompts).size).toBe(prompts.length);
      });

      it(`fits in ${MAX_LENGTH} tokens with a chat template and without (nothing is cut at the default max length)`, () => {
        // The 260K test models' 512-token vocabulary takes more tokens for the same text than a real model's.
        for (const model of ['stories260K', 'stories260K-chat']) {
          const tokenizer = loadTokenizer(model);
          const format = model === 'stories260K-chat' ? chatTemplateFormat(tokenizer) : plainFormat();
          const encoded = encodeExamples(renderDataset(dataset, mapping!, format).examples, tokenizer, {
            maxLength: MAX_LENGTH,
            addEos: true,
          });
          expect(
            encoded.filter((e) => e.truncated),
            model,
          ).toEqual([]);
        }
      });
    });
  }

  it('support tickets: a balanced label dataset of the four departments the card names, each in the default held-out split', () => {
    const dataset = parseDataset(read('support-tickets.csv'), 'support-tickets.csv');
    const answers = renderDataset(dataset, detectLayout(dataset.columns)!, plainFormat()).examples.map(
      (e) => e.completion,
    );
    const labels = detectLabels(answers);
    expect(labels).toEqual(['Account', 'Billing', 'Shipping', 'Technical']);
    for (const label of labels!) {
      expect(answers.filter((a) => a.trim() === label).length).toBeGreaterThanOrEqual(2);
      expect(example('support-tickets.csv').description).toContain(label);
    }
    expect(example('support-tickets.csv').description).toContain('four departments');
    // What the Data step shows with its defaults: balanced, and every label held out (so Evaluate sees each).
    const summary = labelSummary(answers, VAL_SPLIT, (fraction) =>
      splitTrainValidation(answers, fraction, SEED),
    );
    expect(summary).toMatchObject({ balanced: true, missingFromValidation: [], suggestedSplit: null });
    expect(summary!.counts).toEqual([
      ['Account', 10],
      ['Billing', 10],
      ['Shipping', 10],
      ['Technical', 10],
    ]);
  });

  it('product questions and the guide are free text, not labels', () => {
    for (const file of ['product-questions.jsonl', 'pirate-guide.jsonl']) {
      const dataset = parseDataset(read(file), file);
      const answers = renderDataset(dataset, detectLayout(dataset.columns)!, plainFormat()).examples.map(
        (e) => e.completion,
      );
      expect(detectLabels(answers), file).toBeNull();
    }
  });

  it('product questions: short answers in one voice, about the product the card names', () => {
    const rows = read('product-questions.jsonl')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { question: string; answer: string });
    expect(example('product-questions.jsonl').description).toContain('Lumi');
    for (const { answer } of rows) {
      expect(answer.length, answer).toBeLessThanOrEqual(160);
      expect(answer.split(/(?<=[.!?])\s+/).length, answer).toBeLessThanOrEqual(3);
    }
    expect(rows.filter((r) => /Lumi/.test(r.question + r.answer)).length).toBeGreaterThan(rows.length / 2);
  });

  it('the guide: every conversation is the same system message, then user and assistant turns, ending with the assistant', () => {
    const rows = read('pirate-guide.jsonl')
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { messages: ChatMessage[] }).messages);
    const system = rows[0][0];
    expect(system.role).toBe('system');
    for (const messages of rows) {
      expect(messages[0]).toEqual(system);
      const roles = messages.slice(1).map((m) => m.role);
      expect(roles.length % 2).toBe(0);
      roles.forEach((role, i) => expect(role).toBe(i % 2 === 0 ? 'user' : 'assistant'));
      for (const m of messages) expect(m.content.trim().length).toBeGreaterThan(0);
    }
    // A follow-up question, so the persona holds over turns.
    expect(rows.some((m) => m.length > 3)).toBe(true);
  });
});

describe("the empty Data step's one-line samples", () => {
  it('are each read and detected as the layout they name', () => {
    const kinds = LAYOUT_SAMPLES.map((sample) => {
      const dataset = parseDataset(sample.text, sample.fileName);
      const mapping = detectLayout(dataset.columns);
      expect(mapping, sample.name).not.toBeNull();
      const rendered = renderDataset(dataset, mapping!, plainFormat());
      expect(rendered.examples, sample.name).toHaveLength(1);
      return [
        sample.name,
        mapping!.kind === 'template'
          ? `${mapping!.promptTemplate} → ${mapping!.completionTemplate}`
          : mapping!.kind,
      ];
    });
    expect(Object.fromEntries(kinds)).toEqual({
      'CSV with prompt and completion columns': '{prompt} → {completion}',
      'JSON Lines with prompt and completion': '{prompt} → {completion}',
      'JSON Lines with a chat': 'chat',
      'Instruction, input and output': '{instruction}\n{input} → {output}',
    });
  });
});
