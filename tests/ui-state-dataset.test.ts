// The Data step's state over a scripted engine worker: a dropped file goes to the worker once and is stored
// on the device once, later changes (the columns chosen) send settings only, the newest settings win, and a
// failure, an oversized file or a restarted engine are handled as the page promises.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_DATASET_BYTES } from '../src/data/decode';
import type { Mapping } from '../src/data';
import { freshPage, pageWithModel, prepared } from './helpers/ui-state';

const CSV = 'question,answer\nWhat is 2+2?,4\nWhat is 3+3?,6\n';
const csvFile = () => new File([CSV], 'qa.csv', { type: 'text/csv' });
const BY_HAND: Mapping = {
  kind: 'template',
  promptTemplate: 'Q: {question}',
  completionTemplate: '{answer}',
};

afterEach(() => vi.unstubAllGlobals());

describe('opening a dataset', () => {
  it('sends the file once with the default settings, shows what the worker made of it, and stores it', async () => {
    const { dataset, double, store } = await pageWithModel();
    double.handle('openDataset', () => prepared());
    await dataset.open(csvFile());

    const [sent] = double.sent('openDataset');
    expect(sent.fileName).toBe('qa.csv');
    expect(new TextDecoder().decode(sent.bytes)).toBe(CSV);
    // Detect the layout; the chat template when the model has one; the run defaults for the rest.
    expect(sent.settings).toMatchObject({ mapping: null, useChatTemplate: true, seed: 0 });
    expect(sent.settings.maxLength).toBe(dataset.maxLength);
    expect(sent.settings.valSplit).toBe(dataset.valSplit);

    expect(dataset.prepared).toEqual(prepared());
    expect(dataset.mapping).toEqual(prepared().mapping);
    expect(dataset.busy).toBe(false);
    expect(dataset.error).toBeNull();
    const saved = await store.getDataset(dataset.id!);
    expect(saved).toMatchObject({ name: 'qa.csv', rows: 40, mapping: prepared().mapping });
    expect(new TextDecoder().decode(saved!.bytes)).toBe(CSV);
  });

  it('works before any model is loaded (the engine starts for it)', async () => {
    const { dataset, double, engine } = await freshPage();
    double.handle('openDataset', () => prepared({ stats: null }));
    await dataset.open(csvFile());
    expect(engine.client).not.toBeNull();
    expect(double.sent('init')).toHaveLength(1);
    expect(dataset.prepared?.stats).toBeNull();
    expect(dataset.id).toEqual(expect.any(String));
  });

  it('shows progress while the worker prepares the rows, and clears it when done', async () => {
    const { dataset, double } = await pageWithModel();
    double.hold('openDataset');
    const opening = dataset.open(csvFile());
    const call = await double.next('openDataset');
    expect(dataset.busy).toBe(true);
    call.emit({ done: 120, total: 400 });
    expect(dataset.progress).toEqual({ done: 120, total: 400 });
    call.answer(prepared());
    await opening;
    expect(dataset.progress).toBeNull();
    expect(dataset.busy).toBe(false);
  });

  it('refuses a file too large to read, before reading it', async () => {
    const { dataset, double } = await pageWithModel();
    const arrayBuffer = vi.fn();
    const huge = { name: 'huge.csv', size: MAX_DATASET_BYTES + 1, arrayBuffer } as unknown as File;
    await dataset.open(huge);
    expect(dataset.error).toMatch(/^The file is .*, and webtune reads datasets up to .*Use a sample/);
    expect(arrayBuffer).not.toHaveBeenCalled();
    expect(double.sent('openDataset')).toEqual([]);
    expect(dataset.file).toBeNull();
  });

  it("shows the worker's words when the file cannot be read, and sends the file again next time", async () => {
    const { dataset, double, store } = await pageWithModel();
    const message =
      "Row 14: the closing quote is missing in column 'answer'. Fix the file or export it again as CSV.";
    double.handle('openDataset', () => {
      throw new Error(message);
    });
    await dataset.open(csvFile());
    expect(dataset.error).toBe(message);
    expect(dataset.prepared).toBeNull();
    expect(dataset.busy).toBe(false);
    expect(await store.listDatasets()).toEqual([]);

    double.handle('openDataset', () => prepared());
    await dataset.refresh();
    expect(double.sent('openDataset')).toHaveLength(2);
    expect(double.sent('configureDataset')).toEqual([]);
    expect(dataset.error).toBeNull();
    expect(dataset.prepared).not.toBeNull();
  });
});

describe('changing how the rows are read', () => {
  it('sends only the settings, with the columns chosen by hand, and stores the new mapping', async () => {
    const { dataset, double, store } = await pageWithModel();
    double.handle('openDataset', () => prepared());
    double.handle('configureDataset', (settings) => prepared({ mapping: settings.mapping, detected: false }));
    await dataset.open(csvFile());
    const id = dataset.id;

    dataset.mapping = BY_HAND;
    dataset.maxLength = 96;
    dataset.valSplit = 0.2;
    await dataset.refresh();

    expect(double.sent('openDataset')).toHaveLength(1);
    expect(double.sent('configureDataset')).toEqual([
      { mapping: BY_HAND, useChatTemplate: true, maxLength: 96, valSplit: 0.2, seed: 0 },
    ]);
    expect(dataset.prepared?.mapping).toEqual(BY_HAND);
    expect(dataset.id).toBe(id);
    expect(await store.listDatasets()).toHaveLength(1);
    expect((await store.getDataset(id!))?.mapping).toEqual(BY_HAND);
  });

  it('shows only the newest settings when an older answer arrives late', async () => {
    const { dataset, double } = await pageWithModel();
    double.handle('openDataset', () => prepared());
    await dataset.open(csvFile());
    double.hold('configureDataset');

    dataset.maxLength = 64;
    const first = dataset.refresh();
    const firstCall = await double.next('configureDataset');
    dataset.maxLength = 128;
    const second = dataset.refresh();
    const secondCall = await double.next('configureDataset');

    secondCall.answer(prepared({ trainExamples: 30 }));
    await second;
    firstCall.answer(prepared({ trainExamples: 10 }));
    await first;
    expect(dataset.prepared?.trainExamples).toBe(30);
    expect(dataset.busy).toBe(false);
  });

  it('sends the file again to an engine that was restarted (the old one held it)', async () => {
    const { dataset, double, engine } = await pageWithModel();
    double.handle('openDataset', () => prepared());
    double.handle('configureDataset', () => prepared());
    await dataset.open(csvFile());
    await engine.restart();
    expect(double.workers).toHaveLength(2);
    expect(double.workers[0].terminated).toBe(true);

    await dataset.refresh();
    expect(double.sent('openDataset')).toHaveLength(2);
    expect(double.sent('configureDataset')).toEqual([]);
  });

  it('reopens a stored dataset with the mapping it was saved with, without storing a copy', async () => {
    const first = await pageWithModel();
    first.double.handle('openDataset', () => prepared({ mapping: BY_HAND }));
    await first.dataset.open(csvFile());
    const saved = await first.store.getDataset(first.dataset.id!);

    const { dataset, double, store } = first;
    dataset.mapping = null;
    await dataset.reopen(saved!);
    expect(double.sent('openDataset').at(-1)?.settings.mapping).toEqual(BY_HAND);
    expect(dataset.id).toBe(saved!.id);
    expect(await store.listDatasets()).toHaveLength(1);
  });
});

describe('columns the worker guessed', () => {
  const GUESS = { prompt: 'Message', completion: 'Team', basis: 'labels' } as const;
  const GUESSED: Mapping = { kind: 'template', promptTemplate: '{Message}', completionTemplate: '{Team}' };
  const tickets = () =>
    new File(['Message,Team\nMy card was charged twice.,Billing\n'], 'tickets.csv', { type: 'text/csv' });

  it('are shown as a guess until the person picks other columns, and a new file forgets it', async () => {
    const { dataset, double } = await pageWithModel();
    double.handle('openDataset', () =>
      prepared({ columns: ['Message', 'Team'], mapping: GUESSED, detected: false, guess: GUESS }),
    );
    // The guess comes back as the settings' mapping, so the worker no longer calls it a guess.
    double.handle('configureDataset', (settings) =>
      prepared({ columns: ['Message', 'Team'], mapping: settings.mapping, detected: false, guess: null }),
    );
    await dataset.open(tickets());
    expect(double.sent('openDataset')[0].settings.mapping).toBeNull();
    expect(dataset.mapping).toEqual(GUESSED);
    expect(dataset.guessInUse).toEqual(GUESS);

    dataset.valSplit = 0.2;
    await dataset.refresh();
    expect(double.sent('configureDataset').at(-1)?.mapping).toEqual(GUESSED);
    expect(dataset.guessInUse).toEqual(GUESS);

    const swapped: Mapping = { kind: 'template', promptTemplate: '{Team}', completionTemplate: '{Message}' };
    dataset.mapping = swapped;
    await dataset.refresh();
    expect(double.sent('configureDataset').at(-1)?.mapping).toEqual(swapped);
    expect(dataset.guessInUse).toBeNull();

    double.handle('openDataset', () => prepared());
    await dataset.open(csvFile());
    expect(dataset.guess).toBeNull();
    expect(dataset.guessInUse).toBeNull();
  });
});

describe('cancelling', () => {
  it('asks the worker to stop, and the preparation fails with its words', async () => {
    const { dataset, double } = await pageWithModel();
    double.hold('openDataset');
    const opening = dataset.open(csvFile());
    const call = await double.next('openDataset');
    double.handle('cancelDataset', () => {
      call.fail('Preparing the dataset was cancelled. Change a setting or drop the file again.');
      return true;
    });
    await dataset.cancel();
    await opening;
    expect(dataset.error).toBe(
      'Preparing the dataset was cancelled. Change a setting or drop the file again.',
    );
    expect(dataset.busy).toBe(false);
  });
});
