/**
 * Preparing a large dataset in the worker (issue 10, finding 4): the examples are tokenised once (not again
 * for another batch size), in slices that report "N of M" and let a cancel or new settings in between, and
 * the preview sent to the page holds a few hundred characters per side, not whole cells.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadedModel } from '../src/engine/load';
import { disposeModel } from '../src/engine/model';
import type { Tokenizer } from '../src/engine/tokenizer';
import { DatasetSession, PREVIEW_CHARS } from '../src/worker/dataset-session';
import type { DatasetProgress, DatasetSettings } from '../src/worker/protocol';
import { loadFixture, switchBackend } from './helpers/shared';

const SETTINGS: DatasetSettings = {
  mapping: null,
  useChatTemplate: false,
  maxLength: 256,
  valSplit: 0.1,
  seed: 0,
};
const csv = (rows: [string, string][]) =>
  new TextEncoder().encode(['question,answer', ...rows.map(([q, a]) => `"${q}","${a}"`)].join('\n'));

/** The model with a tokenizer that counts its encode() calls. */
function counting(model: LoadedModel): { model: LoadedModel; calls: () => number } {
  let calls = 0;
  const tokenizer: Tokenizer = {
    ...model.tokenizer,
    encode: (text, options) => (calls++, model.tokenizer.encode(text, options)),
  };
  return { model: { ...model, tokenizer }, calls: () => calls };
}

/** Rows long enough that tokenising all of them takes a good part of a second or more. */
const manyRows = (n: number) =>
  csv(
    Array.from({ length: n }, (_, i) => [
      `Question ${i}: who is friend number ${i}?`,
      `Friend ${i} is ${'a very good friend who likes to play. '.repeat(12)}`,
    ]),
  );

describe('preparing a dataset in the worker', () => {
  let stories: LoadedModel;

  beforeAll(async () => {
    await switchBackend('cpu');
    stories = loadFixture('stories260K');
  });
  afterAll(() => disposeModel(stories.model));

  it('tokenises each example once: the summary and training sets of any batch size share the tokens', async () => {
    const { model, calls } = counting(stories);
    const session = new DatasetSession();
    session.load({ bytes: manyRows(50), fileName: 'friends.csv', settings: SETTINGS });
    session.useModel(model);
    const prepared = await session.prepare();
    expect(prepared.stats!.examples).toBe(50);
    // One encode of the whole example and one of its prompt (for the prompt/completion boundary).
    expect(calls()).toBe(2 * 50);
    const eight = session.trainingSet(8);
    const four = session.trainingSet(4);
    session.summary();
    session.shots(3);
    expect(calls()).toBe(2 * 50);
    expect(eight.stats).toEqual(prepared.stats);
    expect(eight.data.epochBatches(0)).toHaveLength(Math.ceil(eight.train.length / 8));
    expect(four.data.epochBatches(0)).toHaveLength(Math.ceil(four.train.length / 4));
    // New settings do need new tokens.
    session.setSettings({ ...SETTINGS, maxLength: 32 });
    await session.prepare();
    expect(calls()).toBe(4 * 50);
  });

  it('reports progress as "N of M" between slices, ending at M of M', async () => {
    const session = new DatasetSession();
    session.load({ bytes: manyRows(1500), fileName: 'friends.csv', settings: SETTINGS });
    session.useModel(stories);
    const events: DatasetProgress[] = [];
    const prepared = await session.prepare((event) => events.push(event));
    const total = prepared.trainExamples + prepared.validationExamples;
    expect(total).toBe(1500);
    expect(events[0]).toEqual({ done: 0, total });
    expect(events.at(-1)).toEqual({ done: total, total });
    // Slices in between: the worker looked up from its work several times.
    const between = events.filter((e) => e.done > 0 && e.done < total);
    expect(between.length).toBeGreaterThan(1);
    expect(events.every((e, i) => i === 0 || e.done >= events[i - 1].done)).toBe(true);
  });

  it('cancel stops it between slices with an error saying how far it got; it can be prepared again', async () => {
    const session = new DatasetSession();
    session.load({ bytes: manyRows(1500), fileName: 'friends.csv', settings: SETTINGS });
    session.useModel(stories);
    expect(session.cancel()).toBe(false); // nothing under way
    const events: DatasetProgress[] = [];
    const started = performance.now();
    const preparing = session.prepare((event) => {
      events.push(event);
      // What the worker does when the page's Cancel message arrives between two slices.
      if (event.done > 0) setTimeout(() => session.cancel(), 0);
    });
    await expect(preparing).rejects.toThrow(
      /^Preparing the examples was cancelled after [\d,]+ of 1,500 rows\. Open the file again or change the max length to prepare it again/,
    );
    expect(performance.now() - started).toBeLessThan(2000);
    const reached = events.at(-1)!.done;
    expect(reached).toBeGreaterThan(0);
    expect(reached).toBeLessThan(1500);
    // Nothing half-done is kept: preparing again tokenises every row.
    const again = await session.prepare();
    expect(again.stats!.examples).toBe(1500);
  });

  it('new settings while it prepares stop the old preparation; the new one finishes', async () => {
    const session = new DatasetSession();
    session.load({ bytes: manyRows(1500), fileName: 'friends.csv', settings: SETTINGS });
    session.useModel(stories);
    let changed = false;
    const first = session.prepare((event) => {
      if (event.done > 0 && !changed) {
        changed = true;
        session.setSettings({ ...SETTINGS, maxLength: 16 });
      }
    });
    await expect(first).rejects.toThrow(/changed while the examples were prepared/);
    const second = await session.prepare();
    expect(second.stats!.longestExample).toBeLessThanOrEqual(16);
  });

  it('sends the page at most a few hundred characters of each prompt and completion', async () => {
    const longQuestion = `${'Why is the sky blue? '.repeat(200)}Tell me.`;
    const longAnswer = `Because ${'light scatters in the air. '.repeat(400)}`;
    const session = new DatasetSession();
    session.load({
      bytes: csv([
        [longQuestion, longAnswer],
        ['Short?', 'Yes.'],
      ]),
      fileName: 'long.csv',
      settings: { ...SETTINGS, valSplit: 0 },
    });
    session.useModel(stories);
    const { preview } = await session.prepare();
    const long = preview.find((p) => p.completion.startsWith('Because'))!;
    expect(long.prompt.length).toBeLessThanOrEqual(PREVIEW_CHARS);
    expect(long.completion.length).toBeLessThanOrEqual(PREVIEW_CHARS);
    // The prompt shows its end (what leads into the completion), the completion its start.
    expect(long.prompt).toMatch(/^….*Tell me\.\n$/s);
    expect(long.completion).toMatch(/^Because light scatters.*…$/s);
    expect(long.truncated).toBe(true);
    expect(preview.find((p) => p.completion === 'Yes.')).toEqual({
      prompt: 'Short?\n',
      completion: 'Yes.',
      segments: [
        { text: 'Short?\n', trained: false },
        { text: 'Yes.', trained: true },
      ],
      truncated: false,
    });
    // Each segment is shortened like the prompt and completion.
    for (const segment of long.segments ?? []) expect(segment.text.length).toBeLessThanOrEqual(PREVIEW_CHARS);
  });
});
