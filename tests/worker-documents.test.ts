/**
 * The worker's dataset session with documents: two files stored as one bundle are counted before a model
 * (documents, characters), cut into windows when the model arrives (prepared a document at a time), previewed
 * as windows whose text is the document's, and trained on by window.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { documentBundle } from '../src/data/document-files';
import type { LoadedModel } from '../src/engine/load';
import { disposeModel } from '../src/engine/model';
import { DatasetSession } from '../src/worker/dataset-session';
import type { DatasetSettings } from '../src/worker/protocol';
import { dataFile, loadFixture, switchBackend } from './helpers/shared';

const notes = fs.readFileSync(dataFile('notes.md'), 'utf8');
const story = fs.readFileSync(dataFile('garden-story.txt'), 'utf8');
const bundle = documentBundle([
  { name: 'notes.md', text: notes },
  { name: 'garden-story.txt', text: story },
]);
const SETTINGS: DatasetSettings = {
  mapping: null,
  useChatTemplate: true,
  maxLength: 64,
  valSplit: 0.2,
  seed: 1,
};

describe('documents in the worker', () => {
  let model: LoadedModel;
  beforeAll(async () => {
    await switchBackend('wasm');
    model = await loadFixture('stories260K-chat');
  });
  afterAll(() => disposeModel(model.model));

  it('counts documents before a model, and windows once it is loaded', async () => {
    const session = new DatasetSession();
    const before = session.open({
      bytes: new TextEncoder().encode(bundle.text),
      fileName: bundle.fileName,
      settings: SETTINGS,
    });
    expect(before.mapping).toEqual({ kind: 'text', column: 'text', overlap: 32 });
    expect(before.documents).toMatchObject({
      count: 2,
      characters: notes.length + story.length,
      names: ['notes.md', 'garden-story.txt'],
      windows: null,
    });
    expect(before.preview[0].completion).toBe(notes.slice(0, 299) + '…');

    session.useModel(model);
    const progress: number[] = [];
    const after = await session.prepare((p) => progress.push(p.done));
    expect(progress.at(-1)).toBe(2);
    const { windows, heldOut } = after.documents!;
    expect(windows).toBe(after.trainExamples + after.validationExamples);
    expect(heldOut).toBe(Math.round(windows! * 0.2));
    // The first window is the start of notes.md, read by the model's tokenizer without its chat template.
    const first = after.preview[0];
    expect(first.window).toMatchObject({ document: 'notes.md', start: 1, contextTokens: 1 });
    expect(notes.startsWith(first.prompt + first.completion)).toBe(true);
    const second = after.preview[1];
    expect(second.window).toMatchObject({
      document: 'notes.md',
      start: first.window!.end,
      contextTokens: 32,
    });
    expect(notes).toContain(second.prompt + second.completion);
    expect(session.setup.useChatTemplate).toBe(false);

    const set = session.trainingSet(4);
    expect(set.train).toHaveLength(after.trainExamples);
    expect(set.data.validation.reduce((n, b) => n + b.batchSize, 0)).toBe(heldOut);
    expect(session.shots(3)).toEqual([]);
  });

  it('takes a new overlap from the mapping', async () => {
    const session = new DatasetSession();
    const bytes = new TextEncoder().encode(bundle.text);
    session.open({ bytes, fileName: bundle.fileName, settings: SETTINGS });
    session.useModel(model);
    const wide = await session.prepare();
    session.setSettings({ ...SETTINGS, mapping: { kind: 'text', column: 'text', overlap: 4 } });
    const narrow = await session.prepare();
    expect(narrow.documents!.overlap).toBe(4);
    expect(narrow.documents!.windows!).toBeLessThan(wide.documents!.windows!);
    expect(narrow.preview[1].window!.contextTokens).toBe(4);
  });
});
