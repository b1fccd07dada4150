// The adapter library's state over a scripted engine worker and a fake IndexedDB: the list, which adapter
// the chat uses, rename, delete (detaching the one in use first), import, download and export, and the
// words shown when one of them cannot be done.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ChatSetup } from '../src/worker/protocol';
import { freshPage, newAdapter, pageWithModel } from './helpers/ui-state';

const setupFor = (adapter: ChatSetup['adapter']): ChatSetup => ({
  adapter,
  style: { useChatTemplate: false, promptTemplate: '{question}', conversation: false },
  defaultStopStrings: [],
  multiTurn: false,
  shotsAvailable: 10,
});

/** The browser's download, as saveFile drives it: a link clicked for a Blob URL. */
function catchDownloads() {
  vi.useFakeTimers({ toFake: ['setTimeout'] }); // the URL is let go a minute later
  const downloads: { name: string; blob: Blob }[] = [];
  const blobs = new Map<string, Blob>();
  vi.spyOn(URL, 'createObjectURL').mockImplementation((blob) => {
    const url = `blob:test/${blobs.size}`;
    blobs.set(url, blob as Blob);
    return url;
  });
  vi.stubGlobal('document', {
    createElement: () => {
      const link = {
        href: '',
        download: '',
        click: () => downloads.push({ name: link.download, blob: blobs.get(link.href)! }),
      };
      return link;
    },
  });
  return downloads;
}

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
});

describe('the library', () => {
  it('lists the saved adapters, newest first', async () => {
    const { adapters, store } = await freshPage();
    const now = vi.spyOn(Date, 'now');
    now.mockReturnValue(1000);
    await store.saveAdapter(newAdapter('older'));
    now.mockReturnValue(2000);
    await store.saveAdapter(newAdapter('newer'));
    await adapters.refresh();
    expect(adapters.list.map((a) => a.name)).toEqual(['newer', 'older']);
    expect(adapters.list[0]).toMatchObject({ modelName: 'stories260K', byteLength: 4 });
  });

  it('says why the list cannot be read (no storage), and shows it empty', async () => {
    const { adapters } = await freshPage();
    vi.stubGlobal('indexedDB', undefined);
    await adapters.refresh();
    expect(adapters.list).toEqual([]);
    expect(adapters.error).toMatch(
      /^This browser won't let webtune keep anything on this device .*Open webtune in a normal window/,
    );
  });

  it('lets the chat use an adapter, or none', async () => {
    const { adapters, double, store } = await pageWithModel();
    const saved = await store.saveAdapter(newAdapter('qa'));
    double.handle('useAdapter', ({ id }) => setupFor(id ? { id, name: 'qa' } : null));
    await adapters.use(saved.id);
    expect(double.sent('useAdapter')).toEqual([{ id: saved.id }]);
    expect(adapters.activeId).toBe(saved.id);
    expect(adapters.busy).toBe(false);
    await adapters.use(null);
    expect(adapters.activeId).toBeNull();
  });

  it('asks for the model first when there is none to attach an adapter to', async () => {
    const { adapters, double } = await freshPage();
    await adapters.use('a1');
    expect(adapters.error).toBe('Load the base model first.');
    expect(double.sent('useAdapter')).toEqual([]);
  });

  it("shows the worker's words when the chat setup cannot be read", async () => {
    const { adapters, double } = await pageWithModel();
    double.handle('chatSetup', () => {
      throw new Error('The adapter does not fit this model.');
    });
    await adapters.refreshSetup();
    expect(adapters.error).toBe('The adapter does not fit this model.');
  });

  it('renames an adapter (trimmed), and refuses an empty name', async () => {
    const { adapters, store } = await freshPage();
    const saved = await store.saveAdapter(newAdapter('qa'));
    await adapters.rename(saved.id, '  support tickets  ');
    expect(adapters.list.map((a) => a.name)).toEqual(['support tickets']);
    expect((await store.getAdapter(saved.id))?.name).toBe('support tickets');

    await adapters.rename(saved.id, '   ');
    expect(adapters.error).toBe('An adapter needs a name; it becomes the file name of the download.');
    expect((await store.getAdapter(saved.id))?.name).toBe('support tickets');
  });

  it('deletes an adapter; the one the chat uses is detached first', async () => {
    const { adapters, double, store } = await pageWithModel();
    const keep = await store.saveAdapter(newAdapter('keep'));
    const inUse = await store.saveAdapter(newAdapter('in use'));
    double.handle('useAdapter', ({ id }) => setupFor(id ? { id, name: 'in use' } : null));
    await adapters.use(inUse.id);

    await adapters.remove(keep.id);
    expect(double.sent('useAdapter')).toEqual([{ id: inUse.id }]);
    expect(adapters.list.map((a) => a.name)).toEqual(['in use']);

    await adapters.remove(inUse.id);
    expect(double.sent('useAdapter')).toEqual([{ id: inUse.id }, { id: null }]);
    expect(adapters.activeId).toBeNull();
    expect(adapters.list).toEqual([]);
    expect(await store.getAdapter(inUse.id)).toBeUndefined();
  });
});

describe('import, download and export', () => {
  it('imports a zip: the worker checks and stores it, the library lists it, and the chat uses it', async () => {
    const { adapters, double, store } = await pageWithModel();
    double.handle('importAdapter', async ({ fileName }) =>
      store.saveAdapter(newAdapter(fileName.replace('.zip', ''))),
    );
    double.handle('useAdapter', ({ id }) => setupFor({ id, name: 'tickets' }));
    await adapters.import(new File([Uint8Array.of(80, 75, 5, 6)], 'tickets.zip'));

    const [sent] = double.sent('importAdapter');
    expect(sent.fileName).toBe('tickets.zip');
    expect([...sent.bytes]).toEqual([80, 75, 5, 6]);
    expect(adapters.list.map((a) => a.name)).toEqual(['tickets']);
    expect(adapters.activeId).toBe(adapters.list[0].id);
    expect(adapters.notice).toBe('Imported tickets; the chat now uses it.');
  });

  it("shows why an import was refused, in the worker's words", async () => {
    const { adapters, double } = await pageWithModel();
    const message =
      'tickets.zip was trained for a model with 12 layers; this one has 5. Load the model it was trained for.';
    double.handle('importAdapter', () => {
      throw new Error(message);
    });
    await adapters.import(new File([Uint8Array.of(80, 75)], 'tickets.zip'));
    expect(adapters.error).toBe(message);
    expect(adapters.notice).toBeNull();
    expect(double.sent('useAdapter')).toEqual([]);
  });

  it('downloads the stored zip under the adapter’s name', async () => {
    const { adapters, store } = await freshPage();
    const downloads = catchDownloads();
    const saved = await store.saveAdapter(newAdapter('tickets: v2/final'));
    await adapters.download(saved.id);
    // The name made safe for every file system.
    expect(downloads.map((d) => d.name)).toEqual(['tickets_ v2_final.zip']);
    expect([...new Uint8Array(await downloads[0].blob.arrayBuffer())]).toEqual([80, 75, 3, 4]);
    expect(adapters.downloaded).toBe(true);

    await adapters.download('gone');
    expect(adapters.error).toBe('That adapter is no longer saved on this device.');
  });

  it('exports through the worker, shows its progress, and hands the file to the download', async () => {
    const { adapters, double, store } = await pageWithModel();
    const downloads = catchDownloads();
    const saved = await store.saveAdapter(newAdapter('qa'));
    double.hold('exportAdapter');
    const exporting = adapters.export(saved.id, 'gguf');
    const call = await double.next('exportAdapter');
    expect(call.params).toEqual({ adapterId: saved.id, format: 'gguf', modelFiles: undefined, dtype: 'f16' });
    expect(adapters.exporting).toEqual({ id: saved.id, format: 'gguf', progress: null });
    call.emit({ done: 1024, total: 4096 });
    expect(adapters.exporting?.progress).toEqual({ done: 1024, total: 4096 });
    call.answer({ file: new Blob([new Uint8Array(2048)]), fileName: 'qa.gguf', bytes: 2048 });
    await exporting;
    expect(adapters.exporting).toBeNull();
    expect(downloads.map((d) => d.name)).toEqual(['qa.gguf']);
    expect(adapters.notice).toMatch(/^Saved qa\.gguf \(.+\) to your downloads\.$/);
  });

  it("asks for the GGUF precision chosen (f16 or llama.cpp's q8_0), and none for the other formats", async () => {
    const { adapters, double, store } = await pageWithModel();
    catchDownloads();
    const saved = await store.saveAdapter(newAdapter('qa'));
    const paramsOf = async (format: 'gguf' | 'gguf-lora' | 'merged') => {
      double.hold('exportAdapter');
      const exporting = adapters.export(saved.id, format);
      const call = await double.next('exportAdapter');
      call.answer({ file: new Blob([new Uint8Array(8)]), fileName: 'qa.zip', bytes: 8 });
      await exporting;
      return call.params;
    };
    expect(adapters.ggufDtype).toBe('f16');
    adapters.ggufDtype = 'q8_0';
    expect((await paramsOf('gguf')).dtype).toBe('q8_0');
    expect((await paramsOf('gguf-lora')).dtype).toBe('q8_0');
    expect(await paramsOf('merged')).not.toHaveProperty('dtype');
  });
});
