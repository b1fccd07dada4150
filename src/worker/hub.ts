/**
 * The Hub in the worker: models by id, downloaded straight into the device cache (OPFS) so the page never
 * holds the weights and a cached model loads offline; the person's token (hub-account.ts), sent with
 * downloads to the endpoint it was given for; adapters added by id; and publishing (hub-publish.ts).
 */
import type { LoadedModel } from '../engine/load';
import type { ModelFiles } from '../engine/model-files';
import { linearShape } from '../engine/config';
import { fetchHubAdapter } from '../hub/adapter';
import { cachedModels, fetchHubModel } from '../hub/model';
import { OpfsStore } from '../hub/opfs-store';
import { MemoryStore, type FileStore } from '../hub/store';
import { HubAccounts } from './hub-account';
import { publishDraft, Publisher } from './hub-publish';
import { addHubAdapter } from './library';
import type { CachedModel, HubEvent, HubLoadRequest, HubRequests } from './protocol-hub';
import type { WorkerResponse } from './protocol';

type HubHandlers = {
  [K in keyof HubRequests]: (
    params: HubRequests[K]['params'],
    id: number,
  ) => Promise<HubRequests[K]['result']>;
};

export class HubLoader {
  private abort: AbortController | null = null;
  /** Without OPFS (some private windows) files live in memory for this session only. */
  readonly store: FileStore = OpfsStore.available() ? new OpfsStore() : new MemoryStore();
  readonly accounts = new HubAccounts();
  readonly publisher = new Publisher(this.accounts);

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
        token: await this.accounts.tokenFor(request.endpoint),
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

  /** The handlers of the Hub requests but loadHubModel (which installs a model: the host's job). */
  handlers(loaded: () => LoadedModel, post: (message: WorkerResponse) => void): HubHandlers {
    return {
      cancelDownload: async () => this.cancel(),
      cachedModels: () => this.cached(),
      deleteCachedModel: ({ key }) => this.remove(key),
      hubToken: (request) => this.accounts.act(request),
      publishDraft: ({ adapterId, endpoint }) => publishDraft(this.accounts, adapterId, endpoint),
      publishAdapter: (request, id) =>
        this.publisher.publish(request, request.endpoint, (event) => post({ id, type: 'publish', event })),
      cancelPublish: async () => this.publisher.cancel(),
      // Reads only the model's shapes and writes the library, like an imported zip.
      addHubAdapter: async (request, id) => {
        const current = loaded();
        const files = await fetchHubAdapter(request.id, {
          endpoint: request.endpoint,
          revision: request.revision,
          store: this.store,
          token: await this.accounts.tokenFor(request.endpoint),
          model: { numLayers: current.args.numLayers, shapes: (t) => linearShape(current.args, t) },
          onProgress: (progress) => post({ id, type: 'hub', event: { kind: 'progress', progress } }),
        });
        return addHubAdapter(current, files);
      },
    };
  }
}
