/** The engine worker and the loaded model, as page state. */
import type { BackendChoice, BackendName } from '../../engine/backend';
import { REQUIRED_FILES, type ModelFiles } from '../../engine/model-files';
import { EngineClient } from '../../worker/client';
import { fetchModelFiles } from '../../worker/fetch-model';
import type { ModelSummary } from '../../worker/protocol';

class EngineState {
  client: EngineClient | null = null;
  backend = $state<BackendChoice | null>(null);
  model = $state<ModelSummary | null>(null);
  loading = $state<string | null>(null);
  /** Bytes of the weights downloaded so far, and the total when the server says. */
  progress = $state<{ done: number; total: number | null } | null>(null);
  error = $state<string | null>(null);
  /** The folder URL the model came from, remembered with training checkpoints. */
  modelUrl: string | null = null;

  async start(backend: BackendName | 'auto' = 'auto'): Promise<EngineClient> {
    if (!this.client) this.client = EngineClient.start();
    if (!this.backend || backend !== 'auto') this.backend = await this.client.request('init', { backend });
    return this.client;
  }

  private async load(describe: string, files: () => Promise<ModelFiles>): Promise<void> {
    this.error = null;
    this.loading = describe;
    try {
      const client = await this.start();
      this.model = await client.request('loadModel', { files: await files() });
    } catch (error) {
      this.error = (error as Error).message;
    } finally {
      this.loading = null;
      this.progress = null;
    }
  }

  loadFromUrl(url: string): Promise<void> {
    this.modelUrl = url;
    return this.load(`Downloading the model from ${url}…`, () => fetchModelFiles(url, (done, total) => (this.progress = { done, total })));
  }

  loadFromFiles(list: FileList | File[]): Promise<void> {
    this.modelUrl = null;
    return this.load('Reading the model files…', async () => {
      const byName = new Map([...list].map((f) => [f.name, f]));
      const missing = REQUIRED_FILES.filter((name) => !byName.has(name));
      if (missing.length) throw new Error(`Missing ${missing.join(', ')}. Pick all four files of the model folder: ${REQUIRED_FILES.join(', ')}.`);
      const text = (name: string) => byName.get(name)!.text();
      return {
        name: byName.get('config.json')!.webkitRelativePath.split('/')[0] || 'local model',
        config: await text('config.json'),
        tokenizerJson: await text('tokenizer.json'),
        tokenizerConfig: await text('tokenizer_config.json'),
        weights: new Uint8Array(await byName.get('model.safetensors')!.arrayBuffer()),
      };
    });
  }
}

export const engine = new EngineState();
