/** The engine worker and the loaded model, as page state. */
import type { BackendChoice, BackendName } from '../../engine/backend';
import { readPickedModel } from '../../worker/picked-files';
import { EngineClient } from '../../worker/client';
import { modelKey } from '../../hub/model';
import { DEFAULT_REVISION, isHubId, isOfficialHub } from '../../hub/resolve';
import { readPageEnvironment } from '../environment';
import type { DownloadProgress } from '../../hub/download';
import type { ModelArgs } from '../../engine/config';
import type { CachedModel, ModelSummary } from '../../worker/protocol';
import { WEIGHTS_SETTING_LABEL, type WeightsSetting } from '../../engine/weights-choice';

/** How a model was loaded, remembered with checkpoints so a reload can load it again. */
const HUB_PREFIX = 'hf:';

/** Where the loaded model came from, so a restarted engine can load it again. */
type ModelSource =
  | { kind: 'url'; url: string }
  | { kind: 'hub'; id: string; revision: string }
  | { kind: 'files'; files: File[] };

class EngineState {
  client: EngineClient | null = null;
  backend = $state<BackendChoice | null>(null);
  model = $state<ModelSummary | null>(null);
  loading = $state<string | null>(null);
  /** Bytes of the weights downloaded so far, and the total when the server says. */
  progress = $state<{ done: number; total: number | null } | null>(null);
  error = $state<string | null>(null);
  /** The folder URL (or hf:<id>) the model came from, remembered with training checkpoints. */
  modelUrl: string | null = null;
  /** The Hub, or the mirror the link names with `?hf_endpoint=` (see ui/environment.ts). */
  endpoint: string;
  /** Why the link's `hf_endpoint` was refused; nothing the link names is then loaded. */
  endpointProblem: string | null;
  /** A model named by the page's link, waiting for the person to agree to download it from its origin. */
  linkRequest = $state<{ value: string; origin: string; official: boolean } | null>(null);
  /** The file downloading now, per file: bytes, total and speed. */
  download = $state<DownloadProgress | null>(null);
  /** The shapes of the model being downloaded, known once its config.json is in (for a memory warning). */
  incoming = $state<ModelArgs | null>(null);
  /** Model revisions kept on this device, with their sizes. */
  cached = $state<CachedModel[]>([]);
  /** Set when the engine worker died: what happened and what to do. The page offers "Restart engine". */
  crashed = $state<string | null>(null);
  restarting = $state(false);
  private source: ModelSource | null = null;
  /** How models hold their frozen weights (Train · Advanced · Base weights); the worker decides 'auto'. */
  weights = $state<WeightsSetting>('auto');

  /** The picked files of the loaded model (the worker cannot reopen those itself), for exports. */
  get pickedFiles(): File[] | undefined {
    return this.source?.kind === 'files' ? this.source.files : undefined;
  }

  constructor() {
    ({ hubEndpoint: this.endpoint, endpointProblem: this.endpointProblem } = readPageEnvironment());
    this.error = this.endpointProblem;
  }

  async start(backend: BackendName | 'auto' = 'auto'): Promise<EngineClient> {
    if (!this.client) {
      const client = EngineClient.start((message) => {
        if (this.client !== client) return;
        // The model lived in the worker: it is gone with it.
        this.crashed = message;
        this.model = null;
        this.backend = null;
      });
      this.client = client;
    }
    if (!this.backend || backend !== 'auto') this.backend = await this.client.request('init', { backend });
    return this.client;
  }

  /**
   * Holds the frozen weights as `setting` says from now on: the loaded model is loaded again that way (the
   * worker refuses while a run is paused or the model is busy, and the setting stays as it was).
   */
  async setWeights(setting: WeightsSetting): Promise<void> {
    const previous = this.weights;
    if (setting === previous) return;
    this.weights = setting;
    this.error = null;
    if (this.model)
      this.loading = `Loading ${this.model.name} again with ${WEIGHTS_SETTING_LABEL[setting]} weights…`;
    try {
      const summary = await (await this.start()).request('setWeights', { setting });
      if (summary) this.model = summary;
    } catch (error) {
      // The worker changed nothing: neither the model nor the setting.
      this.weights = previous;
      this.fail(error);
    } finally {
      this.loading = null;
      this.progress = null;
    }
  }

  /**
   * Shows a failure by the side of the model, unless the engine crashed: the page says that once, with a way
   * out.
   */
  private fail(error: unknown): void {
    if (!this.crashed) this.error = (error as Error).message;
  }

  private async load(
    describe: string,
    load: (client: EngineClient) => Promise<ModelSummary>,
    source: ModelSource,
  ): Promise<void> {
    this.error = null;
    this.loading = describe;
    try {
      this.model = await load(await this.start());
      this.source = source;
      // Only once it loaded: a folder that failed leaves the model that is still loaded, and its origin.
      this.modelUrl = source.kind === 'url' ? source.url : null;
    } catch (error) {
      this.fail(error);
    } finally {
      this.loading = null;
      this.progress = null;
    }
  }

  /** A folder URL, or hf:<id> for a Hub model. */
  loadFromUrl(url: string): Promise<void> {
    if (url.startsWith(HUB_PREFIX)) return this.loadFromHub(url.slice(HUB_PREFIX.length));
    // Relative to the page; the worker downloads it.
    const absolute = new URL(url, location.href).href;
    return this.load(
      `Downloading the model from ${url}…`,
      async (client) =>
        client.request('loadModelUrl', { url: absolute }, (event) => {
          if (event.kind === 'progress')
            this.progress = { done: event.progress.done, total: event.progress.total };
        }),
      { kind: 'url', url },
    );
  }

  /** Downloads a model by Hub id into the device cache (or reads it from there) and loads it. */
  async loadFromHub(id: string, revision = DEFAULT_REVISION): Promise<void> {
    this.error = null;
    this.loading = `Fetching ${id}…`;
    this.download = null;
    // Ask the browser not to evict the cache under storage pressure (quietly ignored where unsupported).
    void navigator.storage?.persist?.().catch(() => false);
    try {
      const client = await this.start();
      this.model = await client.request(
        'loadHubModel',
        { id, revision, endpoint: this.endpoint },
        (event) => {
          if (event.kind === 'config') {
            this.loading = `Downloading ${id}…`;
            this.incoming = event.args;
          } else this.download = event.progress;
        },
      );
      this.modelUrl = HUB_PREFIX + id;
      this.source = { kind: 'hub', id, revision };
    } catch (error) {
      this.fail(error);
    } finally {
      this.loading = null;
      this.download = null;
      this.incoming = null;
      await this.refreshCache();
    }
  }

  cancelDownload(): void {
    void this.client?.request('cancelDownload', {});
  }

  async refreshCache(): Promise<void> {
    if (!this.client) return;
    try {
      this.cached = await this.client.request('cachedModels', {});
    } catch {
      this.cached = [];
    }
  }

  async deleteCached(key: string): Promise<void> {
    if (!this.client) return;
    this.cached = await this.client.request('deleteCachedModel', { key });
  }

  /**
   * The model the page's link names (`?model=`): a Hub id, as hf:owner/name (how the page records it and the
   * README spells it) or bare owner/name, or a folder URL. Files on this site load at once, and so does a Hub
   * model already on this device; anything to download from elsewhere waits for the person to agree
   * (linkRequest), with the origin shown: a link is somebody else's choice.
   */
  async loadFromParam(link: string): Promise<void> {
    await this.start();
    if (this.endpointProblem) {
      this.error = this.endpointProblem;
      return;
    }
    // Not a URL with the scheme "hf:" (whose origin is "null"): the id it names.
    const value = link.startsWith(HUB_PREFIX) ? link.slice(HUB_PREFIX.length) : link;
    if (value !== link && !isHubId(value)) {
      this.error = `The link names the Hub model "${value}", which is not a model id. A model id looks like owner/name, for example HuggingFaceTB/SmolLM2-135M-Instruct.`;
      return;
    }
    if (isHubId(value)) {
      await this.refreshCache();
      if (this.cached.some((c) => c.key === modelKey(this.endpoint, value, DEFAULT_REVISION)))
        return this.loadFromHub(value);
      this.linkRequest = { value, origin: this.endpoint, official: isOfficialHub(this.endpoint) };
      return;
    }
    const origin = new URL(value, location.href).origin;
    if (origin === location.origin) return this.loadFromUrl(value);
    this.linkRequest = { value, origin, official: false };
  }

  /** The person agreed to the link's model. */
  acceptLink(): Promise<void> {
    const request = this.linkRequest;
    this.linkRequest = null;
    if (!request) return Promise.resolve();
    return isHubId(request.value) ? this.loadFromHub(request.value) : this.loadFromUrl(request.value);
  }

  declineLink(): void {
    this.linkRequest = null;
    void this.refreshCache();
  }

  loadFromFiles(list: FileList | File[]): Promise<void> {
    return this.load(
      'Reading the model files…',
      async (client) => {
        const files = await readPickedModel(list);
        // Handed over, not copied: the page keeps no second copy of the weights.
        return client.request('loadModel', { files }, undefined, [(files.weights as Uint8Array).buffer]);
      },
      { kind: 'files', files: [...list] },
    );
  }

  /**
   * A fresh engine worker after a crash (or whenever asked): the old one is ended, and the model the page had
   * loads again from where it came from. Datasets, adapters and checkpoints live in the page's storage.
   */
  async restart(): Promise<void> {
    if (this.restarting) return;
    this.restarting = true;
    try {
      this.client?.terminate();
      this.client = null;
      this.crashed = null;
      this.error = null;
      this.model = null;
      this.backend = null;
      const source = this.source;
      await this.start();
      if (source?.kind === 'url') await this.loadFromUrl(source.url);
      else if (source?.kind === 'hub') await this.loadFromHub(source.id, source.revision);
      else if (source?.kind === 'files') await this.loadFromFiles(source.files);
      else await this.refreshCache();
    } catch (error) {
      this.fail(error);
    } finally {
      this.restarting = false;
    }
  }
}

export const engine = new EngineState();
