/**
 * Models by Hub id, in the worker: downloads go straight into the device cache (OPFS), so the page
 * never holds the weights and a cached model loads offline.
 */
import type { ModelFiles } from '../engine/model-files';
import { cachedModels, fetchHubModel } from '../hub/model';
import { OpfsStore } from '../hub/opfs-store';
import { MemoryStore, type FileStore } from '../hub/store';
import type { CachedModel, HubEvent, HubLoadRequest } from './protocol';

export class HubLoader {
  private abort: AbortController | null = null;
  /** Without OPFS (some private windows) files live in memory for this session only. */
  readonly store: FileStore = OpfsStore.available() ? new OpfsStore() : new MemoryStore();

  async load(
    request: HubLoadRequest,
    emit: (event: HubEvent) => void,
  ): Promise<{ files: ModelFiles; license: string | null; bytes: number; fromCache: boolean }> {
    if (this.abort) throw new Error('A model is already downloading. Cancel it first.');
    this.abort = new AbortController();
    try {
      const model = await fetchHubModel(request.id, {
        endpoint: request.endpoint,
        revision: request.revision,
        store: this.store,
        signal: this.abort.signal,
        onConfig: (args) => emit({ kind: 'config', args }),
        onProgress: (progress) => emit({ kind: 'progress', progress }),
      });
      const { license, bytes, fromCache, ...files } = model;
      return { files, license, bytes, fromCache };
    } finally {
      this.abort = null;
    }
  }

  cancel(): boolean {
    this.abort?.abort();
    return this.abort !== null;
  }

  cached(): Promise<CachedModel[]> {
    return cachedModels(this.store);
  }

  async remove(key: string): Promise<CachedModel[]> {
    await this.store.remove(key);
    return this.cached();
  }
}
