// The engine's page state over a scripted engine worker: starting it, loading a model from this site or
// the Hub with progress, what a link may load without asking, a failure shown by the model, and a worker
// that dies: said once, and "Restart engine" brings a fresh worker with the same model.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { modelKey } from '../src/hub/model';
import { DEFAULT_ENDPOINT } from '../src/hub/resolve';
import { describeCrash } from '../src/worker/client';
import { freshPage, MODEL, MODEL_ARGS, pageWithModel, prepared, trainResult } from './helpers/ui-state';

afterEach(() => vi.unstubAllGlobals());

describe('starting the engine', () => {
  it('starts one worker and asks for the best backend once; a backend asked for by name is set again', async () => {
    const { engine, double } = await freshPage();
    const client = await engine.start();
    expect(await engine.start()).toBe(client);
    expect(double.workers).toHaveLength(1);
    expect(double.sent('init')).toEqual([{ backend: 'auto' }]);
    expect(engine.backend).toEqual({ backend: 'cpu', reason: 'test double' });

    double.handle('init', ({ backend }) => ({ backend: backend as 'wasm', reason: 'asked for' }));
    await engine.start('wasm');
    expect(double.sent('init')).toEqual([{ backend: 'auto' }, { backend: 'wasm' }]);
    expect(engine.backend?.backend).toBe('wasm');
  });
});

describe('loading a model', () => {
  it('downloads a folder of this site in the worker, with progress, and remembers where it came from', async () => {
    const { engine, double } = await freshPage();
    double.hold('loadModelUrl');
    const loading = engine.loadFromUrl('/models/stories260K');
    const call = await double.next('loadModelUrl');
    expect(call.params).toEqual({ url: 'http://127.0.0.1:5173/models/stories260K' });
    expect(engine.loading).toBe('Downloading the model from /models/stories260K…');
    call.emit({
      kind: 'progress',
      progress: { file: 'model.safetensors', done: 300, total: 1000, bytesPerSecond: 100, resumedFrom: 0 },
    });
    expect(engine.progress).toEqual({ done: 300, total: 1000 });
    call.answer(MODEL);
    await loading;
    expect(engine.model).toEqual(MODEL);
    expect(engine.modelUrl).toBe('/models/stories260K');
    expect(engine.loading).toBeNull();
    expect(engine.progress).toBeNull();
  });

  it("shows the worker's words by the model when it cannot be loaded", async () => {
    const { engine, double } = await freshPage();
    const message = 'config.json: hidden_size is "big"; it must be a positive integer. The file is damaged.';
    double.handle('loadModelUrl', () => {
      throw new Error(message);
    });
    await engine.loadFromUrl('/models/broken');
    expect(engine.error).toBe(message);
    expect(engine.model).toBeNull();
    expect(engine.loading).toBeNull();
  });

  it('keeps the loaded model’s origin when another folder fails to load (runs save it to resume)', async () => {
    const { engine, double, training, dataset } = await pageWithModel();
    double.handle('loadModelUrl', () => {
      throw new Error('/models/missing/config.json: the server answered 404. Check the folder.');
    });
    await engine.loadFromUrl('/models/missing');
    expect(engine.error).toMatch(/404/);
    expect(engine.model).toEqual(MODEL);
    expect(engine.modelUrl).toBe('/models/stories260K');

    // A run started now says where the model it trains really came from.
    double.handle('openDataset', () => prepared());
    await dataset.open(new File(['q,a\n1,2\n'], 'qa.csv'));
    double.handle('train', () => trainResult());
    await training.start();
    expect(double.sent('train')[0].source.modelUrl).toBe('/models/stories260K');
  });

  it('downloads a Hub model, says when its config is in, and shows the file downloading', async () => {
    const { engine, double } = await freshPage();
    const persist = vi.fn(async () => true);
    vi.stubGlobal('navigator', { storage: { persist } });
    double.hold('loadHubModel');
    const loading = engine.loadFromHub('HuggingFaceTB/SmolLM2-135M');
    const call = await double.next('loadHubModel');
    expect(call.params).toEqual({
      id: 'HuggingFaceTB/SmolLM2-135M',
      revision: 'main',
      endpoint: DEFAULT_ENDPOINT,
    });
    expect(engine.loading).toBe('Fetching HuggingFaceTB/SmolLM2-135M…');
    // The browser is asked to keep the cache under storage pressure.
    expect(persist).toHaveBeenCalled();
    call.emit({ kind: 'config', args: MODEL_ARGS });
    expect(engine.loading).toBe('Downloading HuggingFaceTB/SmolLM2-135M…');
    expect(engine.incoming).toEqual(MODEL_ARGS);
    const progress = { file: 'model.safetensors', done: 5, total: 10, bytesPerSecond: 1, resumedFrom: 0 };
    call.emit({ kind: 'progress', progress });
    expect(engine.download).toEqual(progress);
    const cached = [{ key: 'huggingface.co/HuggingFaceTB/SmolLM2-135M/main', bytes: 270_000_000 }];
    double.handle('cachedModels', () => cached);
    call.answer({ ...MODEL, name: 'SmolLM2-135M' });
    await loading;
    expect(engine.modelUrl).toBe('hf:HuggingFaceTB/SmolLM2-135M');
    expect(engine.download).toBeNull();
    expect(engine.incoming).toBeNull();
    // The device cache now lists it.
    expect(engine.cached).toEqual(cached);
  });
});

describe("the page's link", () => {
  it('loads a folder of this site at once', async () => {
    const { engine, double } = await freshPage();
    double.handle('loadModelUrl', () => MODEL);
    await engine.loadFromParam('/models/stories260K');
    expect(engine.model?.name).toBe('stories260K');
    expect(engine.linkRequest).toBeNull();
  });

  it('asks before downloading from another origin, and loads only when the person agrees', async () => {
    const { engine, double } = await freshPage();
    double.handle('loadModelUrl', () => MODEL);
    await engine.loadFromParam('https://elsewhere.example/models/x');
    expect(engine.linkRequest).toEqual({
      value: 'https://elsewhere.example/models/x',
      origin: 'https://elsewhere.example',
      official: false,
    });
    expect(double.sent('loadModelUrl')).toEqual([]);
    await engine.acceptLink();
    expect(double.sent('loadModelUrl')).toEqual([{ url: 'https://elsewhere.example/models/x' }]);
    expect(engine.linkRequest).toBeNull();
  });

  it('asks before downloading a Hub model, but loads one already on this device at once', async () => {
    const { engine, double } = await freshPage();
    double.handle('loadHubModel', () => MODEL);
    await engine.loadFromParam('owner/model');
    expect(engine.linkRequest).toEqual({ value: 'owner/model', origin: DEFAULT_ENDPOINT, official: true });
    engine.declineLink();
    expect(engine.linkRequest).toBeNull();
    expect(double.sent('loadHubModel')).toEqual([]);

    double.handle('cachedModels', () => [
      { key: modelKey(DEFAULT_ENDPOINT, 'owner/cached', 'main'), bytes: 1 },
    ]);
    await engine.loadFromParam('owner/cached');
    expect(engine.linkRequest).toBeNull();
    expect(double.sent('loadHubModel')).toEqual([
      { id: 'owner/cached', revision: 'main', endpoint: DEFAULT_ENDPOINT },
    ]);
  });

  it('reads hf:owner/name as the Hub id it names, as the page records it, not as a URL of origin "null"', async () => {
    const { engine, double } = await freshPage('?hf_endpoint=https://mirror.example');
    double.handle('loadHubModel', () => MODEL);
    await engine.loadFromParam('hf:owner/model');
    expect(engine.linkRequest).toEqual({
      value: 'owner/model',
      origin: 'https://mirror.example',
      official: false,
    });
    await engine.acceptLink();
    expect(double.sent('loadHubModel')).toEqual([
      { id: 'owner/model', revision: 'main', endpoint: 'https://mirror.example' },
    ]);
    expect(engine.modelUrl).toBe('hf:owner/model');

    await engine.loadFromParam('hf:not an id');
    expect(engine.linkRequest).toBeNull();
    expect(engine.error).toMatch(/^The link names the Hub model "not an id", which is not a model id\./);
    expect(double.sent('loadHubModel')).toHaveLength(1);
  });

  it('loads nothing when its hf_endpoint is refused, and says why', async () => {
    const { engine, double } = await freshPage('?hf_endpoint=https://user:pw@mirror.example/path');
    expect(engine.error).toMatch(/^This link's hf_endpoint was refused, so nothing it names is loaded\. /);
    await engine.loadFromParam('owner/model');
    expect(engine.error).toMatch(/^This link's hf_endpoint was refused/);
    expect(engine.linkRequest).toBeNull();
    expect(double.sent('loadHubModel')).toEqual([]);
  });

  it('uses a mirror the link names, as a bare origin', async () => {
    const { engine } = await freshPage('?hf_endpoint=https://mirror.example/');
    expect(engine.endpoint).toBe('https://mirror.example');
    await engine.loadFromParam('owner/model');
    expect(engine.linkRequest).toEqual({
      value: 'owner/model',
      origin: 'https://mirror.example',
      official: false,
    });
  });
});

describe('when the engine dies', () => {
  it('says what happened once, forgets the model, and fails what waited with the same words', async () => {
    const { engine, double } = await pageWithModel();
    double.hold('loadModelUrl');
    const loading = engine.loadFromUrl('/models/other');
    await double.next('loadModelUrl');
    double.worker.crash('Uncaught Error: wasm trap');
    await loading;
    const words = describeCrash('Uncaught Error: wasm trap');
    expect(engine.crashed).toBe(words);
    expect(engine.model).toBeNull();
    expect(engine.backend).toBeNull();
    // Said once, with the way out; not again by the side of the model.
    expect(engine.error).toBeNull();
    expect(double.worker.terminated).toBe(true);
  });

  it('"Restart engine" starts a fresh worker and loads the same model again', async () => {
    const { engine, double } = await pageWithModel();
    double.worker.crash('Uncaught RangeError: Array buffer allocation failed');
    expect(engine.crashed).toMatch(/^The engine ran out of memory/);

    await engine.restart();
    expect(double.workers).toHaveLength(2);
    expect(engine.crashed).toBeNull();
    expect(engine.restarting).toBe(false);
    expect(engine.model).toEqual(MODEL);
    expect(engine.backend).not.toBeNull();
    // The new worker was initialised and sent the same folder.
    expect(double.calls.filter((c) => c.type === 'loadModelUrl').map((c) => c.params)).toEqual([
      { url: 'http://127.0.0.1:5173/models/stories260K' },
      { url: 'http://127.0.0.1:5173/models/stories260K' },
    ]);
    expect(double.sent('init')).toHaveLength(2);
  });

  it('a crash of a worker already replaced is not reported', async () => {
    const { engine, double } = await pageWithModel();
    const old = double.worker;
    await engine.restart();
    old.crash('Uncaught Error: late');
    expect(engine.crashed).toBeNull();
    expect(engine.model).toEqual(MODEL);
  });
});

describe('the device cache', () => {
  it('lists the cached models and deletes one', async () => {
    const { engine, double } = await freshPage();
    const a = { key: 'huggingface.co/o/a/main', bytes: 10 };
    const b = { key: 'huggingface.co/o/b/main', bytes: 20 };
    double.handle('cachedModels', () => [a, b]);
    double.handle('deleteCachedModel', ({ key }) => [a, b].filter((m) => m.key !== key));
    await engine.start();
    await engine.refreshCache();
    expect(engine.cached).toEqual([a, b]);
    await engine.deleteCached(a.key);
    expect(double.sent('deleteCachedModel')).toEqual([{ key: a.key }]);
    expect(engine.cached).toEqual([b]);
  });
});
