/** The adapter library as page state: list, rename, download, import, delete, and which one the chat uses. */
import { linearShape } from '../../engine/config';
import { checkAdapterZipSize, formatSize } from '../../formats/adapter-limits';
import { fileSafe } from '../../formats/file-name';
import {
  deleteAdapter,
  getAdapter,
  listAdapters,
  renameAdapter,
  type AdapterSummary,
} from '../../store/adapters';
import type { ChatSetup, ExportProgress, ExportRequest } from '../../worker/protocol';
import { engine } from './engine.svelte';

/** The GGUF precisions the page offers (the CLI's --dtype also takes f32). */
export type GgufPrecision = 'f16' | 'q8_0';

class AdaptersState {
  list = $state<AdapterSummary[]>([]);
  /** What the chat compares: the attached adapter and how prompts are formatted. */
  setup = $state<ChatSetup | null>(null);
  error = $state<string | null>(null);
  notice = $state<string | null>(null);
  busy = $state(false);
  /** Something was downloaded from the library in this visit (the flow's Export step is done). */
  downloaded = $state(false);
  /** How the GGUF downloads store the weights: 16-bit halves, or llama.cpp's 8-bit Q8_0 (half the size). */
  ggufDtype = $state<GgufPrecision>('f16');
  /** The export being written: which adapter, which format, and bytes so far. */
  exporting = $state<{ id: string; format: ExportRequest['format']; progress: ExportProgress | null } | null>(
    null,
  );

  activeId = $derived(this.setup?.adapter?.id ?? null);

  async refresh(): Promise<void> {
    try {
      this.list = await listAdapters();
    } catch (error) {
      this.list = [];
      this.error = (error as Error).message;
    }
  }

  /** Asks the worker what the chat compares now (after training, a new dataset or another adapter). */
  async refreshSetup(): Promise<void> {
    if (!engine.client || !engine.model) return;
    try {
      this.setup = await engine.client.request('chatSetup', {});
    } catch (error) {
      this.error = (error as Error).message;
    }
  }

  private async act(work: () => Promise<void>): Promise<void> {
    this.error = null;
    this.notice = null;
    this.busy = true;
    try {
      await work();
    } catch (error) {
      this.error = (error as Error).message;
    } finally {
      this.busy = false;
    }
  }

  use(id: string | null): Promise<void> {
    return this.act(async () => {
      if (!engine.client || !engine.model) throw new Error('Load the base model first.');
      this.setup = await engine.client.request('useAdapter', { id });
    });
  }

  rename(id: string, name: string): Promise<void> {
    return this.act(async () => {
      const trimmed = name.trim();
      if (!trimmed) throw new Error('An adapter needs a name; it becomes the file name of the download.');
      await renameAdapter(id, trimmed);
      await this.refresh();
    });
  }

  /** Saves `<name>.zip` (PEFT layout + README) through the browser's download. */
  download(id: string): Promise<void> {
    return this.act(async () => {
      const record = await getAdapter(id);
      if (!record) throw new Error('That adapter is no longer saved on this device.');
      saveFile(
        new Blob([record.zip as Uint8Array<ArrayBuffer>], { type: 'application/zip' }),
        `${fileSafe(record.name)}.zip`,
      );
      this.downloaded = true;
    });
  }

  /**
   * Writes the adapter in another tool's format in the worker, straight to a file in the page's private
   * storage, then hands that file to the browser's download: the page never holds the model in memory.
   */
  export(id: string, format: ExportRequest['format']): Promise<void> {
    return this.act(async () => {
      if (!engine.client || !engine.model)
        throw new Error('Load the base model first: the export reads its weights.');
      this.exporting = { id, format, progress: null };
      try {
        const gguf = format === 'gguf' || format === 'gguf-lora';
        const result = await engine.client.request(
          'exportAdapter',
          {
            adapterId: id,
            format,
            modelFiles: engine.pickedFiles,
            ...(gguf ? { dtype: this.ggufDtype } : {}),
          },
          (progress) => {
            if (this.exporting) this.exporting = { ...this.exporting, progress };
          },
        );
        saveFile(result.file, result.fileName);
        this.downloaded = true;
        this.notice = `Saved ${result.fileName} (${formatSize(result.bytes)}) to your downloads.`;
      } finally {
        this.exporting = null;
      }
    });
  }

  /**
   * Checks a zip (from webtune or PEFT) against the loaded model, adds it to the library and lets the chat
   * use it.
   */
  import(file: File): Promise<void> {
    return this.act(async () => {
      if (!engine.client || !engine.model)
        throw new Error('Load the base model first: an adapter is checked against the model it adapts.');
      // A file larger than any adapter of this model could be is refused before it is read into memory.
      const { args } = engine.model;
      checkAdapterZipSize(file.size, {
        numLayers: args.numLayers,
        shapes: (target) => linearShape(args, target),
      });
      const summary = await engine.client.request('importAdapter', {
        bytes: new Uint8Array(await file.arrayBuffer()),
        fileName: file.name,
      });
      await this.refresh();
      this.setup = await engine.client.request('useAdapter', { id: summary.id });
      this.notice = `Imported ${summary.name}; the chat now uses it.`;
    });
  }

  remove(id: string): Promise<void> {
    return this.act(async () => {
      if (id === this.activeId && engine.client)
        this.setup = await engine.client.request('useAdapter', { id: null });
      await deleteAdapter(id);
      await this.refresh();
    });
  }
}

/** Hands a Blob (in memory, or a file on disk) to the browser's download. */
function saveFile(blob: Blob, fileName: string): void {
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = fileName;
  link.click();
  // The browser has started copying the file by then; a large one keeps its own reference.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

export const adapters = new AdaptersState();
