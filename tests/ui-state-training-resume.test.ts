// A run saved before a reload, as the Train step's state offers and resumes it: the model and the dataset
// come back with the run's own settings, the chart shows the steps already done, and the worker continues
// from the checkpoint; a run open in another tab is not offered; an adapter a full disk refused is stored
// again when asked.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { RunSetup } from '../src/worker/protocol';
import { freshPage, MODEL, pageWithModel, prepared, trainResult, until, type Page } from './helpers/ui-state';

const CSV = 'question,answer\nWhat is 2+2?,4\n';

const SETUP = (datasetId: string): RunSetup => ({
  train: {
    source: { modelUrl: '/models/stories260K', datasetId },
    backend: 'wasm',
    rank: 2,
    alpha: 4,
    dropout: 0,
    targets: ['q_proj', 'v_proj'],
    learningRate: 0.01,
    epochs: 3,
    batchSize: 2,
    gradAccum: 1,
    warmupSteps: 0,
    seed: 7,
    recompute: 'auto',
  },
  prepare: {
    fileName: 'qa.csv',
    mapping: { kind: 'template', promptTemplate: 'Q: {question}', completionTemplate: '{answer}' },
    useChatTemplate: false,
    maxLength: 96,
    valSplit: 0.25,
    seed: 7,
  },
});

/** A page after a reload: the dataset and a run 4 steps into 12 are in IndexedDB. */
async function reloadedWithSavedRun(modelUrl: string | null = '/models/stories260K'): Promise<Page> {
  const page = await freshPage();
  const dataset = await page.store.saveDataset({
    name: 'qa.csv',
    fileName: 'qa.csv',
    bytes: new TextEncoder().encode(CSV),
    mapping: null,
    rows: 1,
  });
  await page.store.saveRun({
    id: 'run-1',
    savedAt: 1000,
    modelName: MODEL.name,
    modelUrl,
    datasetId: dataset.id,
    setup: SETUP(dataset.id),
    step: 4,
    totalSteps: 12,
    lossHistory: [1, 2, 3, 4].map((step) => ({ step, loss: 3 - step / 4 })),
    evalHistory: [
      { step: 2, valLoss: 2.6 },
      { step: 4, valLoss: 2.8 },
    ],
    state: {
      step: 4,
      rngState: 1,
      adapter: new Map([['q', { A: new Float32Array(2), B: new Float32Array(2) }]]),
      optimizer: { step: 4, m: [], v: [] },
    },
  });
  page.double.handle('loadModelUrl', () => MODEL);
  page.double.handle('openDataset', (request) => prepared({ mapping: request.settings.mapping }));
  return page;
}

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe('a run saved before a reload', () => {
  it('is offered, and resumes with its model, dataset, settings and chart', async () => {
    const { training, double, dataset, engine } = await reloadedWithSavedRun();
    await training.checkSaved();
    expect(training.saved?.id).toBe('run-1');
    expect(training.savedElsewhere).toBe(false);

    double.hold('resumeSavedRun');
    const resuming = training.resumeSaved();
    const call = await double.next('resumeSavedRun');
    expect(call.params).toEqual({ runId: 'run-1', backend: 'wasm' });
    expect(engine.model?.name).toBe(MODEL.name);
    expect(double.sent('loadModelUrl')).toEqual([{ url: 'http://127.0.0.1:5173/models/stories260K' }]);
    // The dataset is read with the settings the run was prepared with.
    expect(double.sent('openDataset')[0].settings).toEqual({
      mapping: SETUP('').prepare.mapping,
      useChatTemplate: false,
      maxLength: 96,
      valSplit: 0.25,
      seed: 7,
    });
    expect(dataset.maxLength).toBe(96);
    expect(dataset.seed).toBe(7);
    expect(training.preset).toBe('custom');
    expect(training.settings).toMatchObject({ rank: 2, alpha: 4, epochs: 3, backend: 'wasm' });
    expect(training.steps.map((s) => [s.step, s.totalSteps])).toEqual([
      [1, 12],
      [2, 12],
      [3, 12],
      [4, 12],
    ]);
    expect(training.evals).toHaveLength(2);
    expect(training.best).toEqual({ step: 2, valLoss: 2.6 });
    expect(training.saved).toBeNull();
    expect(training.running).toBe(true);
    expect(training.startStep).toBe(4);

    call.answer(trainResult({ steps: 12 }));
    await resuming;
    expect(training.result?.steps).toBe(12);
  });

  it('asks for the model first when the run does not say where it came from', async () => {
    const { training, double } = await reloadedWithSavedRun(null);
    await training.checkSaved();
    await training.resumeSaved();
    expect(training.error).toBe(`Load the model ${MODEL.name} first, then resume.`);
    expect(double.sent('resumeSavedRun')).toEqual([]);
  });

  it('says the run cannot be resumed when its dataset was deleted', async () => {
    const page = await reloadedWithSavedRun();
    const { training, double, store } = page;
    await training.checkSaved();
    await store.deleteDataset(training.saved!.datasetId);
    await training.resumeSaved();
    expect(training.error).toBe(
      'The dataset of this run was deleted, so it cannot be resumed. Start training again.',
    );
    expect(double.sent('resumeSavedRun')).toEqual([]);
  });

  it('can be discarded', async () => {
    const { training, store } = await reloadedWithSavedRun();
    await training.checkSaved();
    await training.discardSaved();
    expect(training.saved).toBeNull();
    expect(await store.latestRun()).toBeUndefined();
  });

  it('is not offered for resuming while another tab holds it, after a grace moment for a reload', async () => {
    const { training } = await reloadedWithSavedRun();
    vi.useFakeTimers({ toFake: ['setTimeout', 'Date'] });
    const query = vi.fn(async () => ({ held: [{ name: 'webtune-run-run-1' }] }));
    vi.stubGlobal('navigator', { locks: { query, request: vi.fn() } });
    let done = false;
    const checking = training.checkSaved().then(() => (done = true));
    await until(() => query.mock.calls.length === 1, 'the first look at the locks');
    await vi.advanceTimersByTimeAsync(9_000);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(2_000);
    await checking;
    expect(training.saved?.id).toBe('run-1');
    expect(training.savedElsewhere).toBe(true);
    expect(query.mock.calls.length).toBeGreaterThan(2);
  });

  it('is offered once the previous page of this tab let go of it', async () => {
    const { training } = await reloadedWithSavedRun();
    vi.useFakeTimers({ toFake: ['setTimeout', 'Date'] });
    let held = true;
    const query = vi.fn(async () => ({ held: held ? [{ name: 'webtune-run-run-1' }] : [] }));
    vi.stubGlobal('navigator', { locks: { query, request: vi.fn() } });
    const checking = training.checkSaved();
    await until(() => query.mock.calls.length === 1, 'the first look at the locks');
    held = false;
    await vi.advanceTimersByTimeAsync(250);
    await checking;
    expect(query).toHaveBeenCalledTimes(2);
    expect(training.saved?.id).toBe('run-1');
    expect(training.savedElsewhere).toBe(false);
  });
});

describe('an adapter the disk could not take', () => {
  async function finishedUnsaved(): Promise<Page> {
    const page = await pageWithModel();
    page.double.handle('openDataset', () => prepared());
    await page.dataset.open(new File([CSV], 'qa.csv'));
    page.double.handle('train', () => trainResult({ unsaved: true }));
    await page.training.start();
    return page;
  }

  it('is stored again when asked, and the library lists it', async () => {
    const { training, double, adapters, store } = await finishedUnsaved();
    double.handle(
      'saveAdapterAgain',
      async () =>
        (
          await store.saveAdapter({
            name: 'qa',
            modelName: MODEL.name,
            datasetId: 'd',
            datasetName: 'qa.csv',
            settings: {},
            trainLoss: 1,
            valLoss: null,
            lossHistory: [],
            zip: Uint8Array.of(1),
          })
        ).id,
    );
    await training.saveAgain();
    expect(training.result).toMatchObject({ unsaved: false, adapterId: expect.any(String) });
    await until(() => adapters.list.length === 1, 'the library to list it');
    expect(adapters.list[0].id).toBe(training.result?.adapterId);
  });

  it('says why it still could not be stored, and that the adapter is still kept in this tab', async () => {
    const { training, double } = await finishedUnsaved();
    double.handle('saveAdapterAgain', () => {
      throw new Error("Your browser's storage for this site is full.");
    });
    await training.saveAgain();
    expect(training.warning).toBe(
      "Your browser's storage for this site is full. The adapter is still kept in this tab.",
    );
    expect(training.result?.unsaved).toBe(true);
  });
});
