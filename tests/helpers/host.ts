/**
 * The engine worker's host (src/worker/host.ts) driven in Node with the real engine: requests go in as the
 * worker receives them, answers and events come back as it posts them. `state()` reads what must hold
 * between requests: who holds the model, the run's phase, and whether the adapters wrapped round the
 * model are exactly the one the adapter slot says is there.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readModelFolder } from '../../src/node/model-folder';
import type { LoraAdapter } from '../../src/engine/lora';
import { EngineHost } from '../../src/worker/host';
import type { DatasetSettings, RequestName, Requests, WorkerResponse } from '../../src/worker/protocol';
import { dataFile, modelDir, WASM_PATHS } from './shared';

type Pending = {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  onEvent?: (e: unknown) => void;
};

export class HostDriver {
  readonly host: EngineHost;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  constructor() {
    this.host = new EngineHost((message) => this.receive(message), { wasmPaths: WASM_PATHS });
  }

  private receive(message: WorkerResponse): void {
    const entry = this.pending.get(message.id);
    if (!entry) return;
    if (message.type === 'result') {
      this.pending.delete(message.id);
      entry.resolve(message.value);
    } else if (message.type === 'error') {
      this.pending.delete(message.id);
      entry.reject(new Error(message.message));
    } else {
      entry.onEvent?.('event' in message ? message.event : message.text);
    }
  }

  /** Sends a request as a message would arrive in the worker; the promise settles with its answer. */
  send<K extends RequestName>(
    type: K,
    params: Requests[K]['params'],
    onEvent?: (event: unknown) => void,
  ): Promise<Requests[K]['result']> {
    const id = this.nextId++;
    const answer = new Promise<Requests[K]['result']>((resolve, reject) =>
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, onEvent }),
    );
    // A refusal may come before the test looks at it: it is not an unhandled rejection.
    answer.catch(() => {});
    void this.host.handle({ id, type, params } as never);
    return answer;
  }

  /** Loads a fixture model from its folder, as picked files would arrive. */
  loadFixture(name = 'stories260K'): Promise<Requests['loadModel']['result']> {
    return this.send('loadModel', { files: readModelFolder(modelDir(name)) });
  }

  /** Opens a data file from the fixtures (or bytes given) with `settings`. */
  openDataset(
    file: string,
    settings: DatasetSettings,
    bytes = new Uint8Array(fs.readFileSync(dataFile(file))),
  ): Promise<Requests['openDataset']['result']> {
    return this.send('openDataset', { bytes, fileName: path.basename(file), settings });
  }

  /** The model's picked files, as the page hands them to an export. */
  pickedFiles(name = 'stories260K'): File[] {
    return fs.readdirSync(modelDir(name)).map((file) => {
      const picked = new File([fs.readFileSync(path.join(modelDir(name), file))], file);
      // A folder picked in the browser names each file by its path in that folder.
      return Object.defineProperty(picked, 'webkitRelativePath', { value: `${name}/${file}` });
    });
  }

  /**
   * What must hold whenever no request is in flight: nobody holds the model, the run is idle or paused,
   * and the LoRA wrappers round the model are exactly the slot's adapter (or none), switched on.
   */
  state(): { holder: string | null; phase: string; consistent: string | null } {
    const { lease, training, slot } = this.host;
    return { holder: lease.holder, phase: training.phase, consistent: this.adapterProblem(slot.adapter) };
  }

  private adapterProblem(adapter: LoraAdapter | null): string | null {
    const model = (
      this.host as unknown as { loaded: { model: { layers: Record<string, unknown>[] } } | null }
    ).loaded?.model;
    if (!model) return adapter ? 'an adapter is in the slot but no model is loaded' : null;
    const wrapped = new Set<unknown>();
    model.layers.forEach((layer) => {
      for (const group of [layer.self_attn, layer.mlp] as Record<string, unknown>[])
        for (const projection of Object.values(group))
          if (projection && typeof projection === 'object' && 'adapter' in projection)
            wrapped.add(projection);
    });
    const expected = new Set<unknown>(adapter ? [...adapter.modules.values()] : []);
    if (wrapped.size !== expected.size || [...wrapped].some((w) => !expected.has(w)))
      return `the model has ${wrapped.size} LoRA wrappers, the slot's adapter ${expected.size}`;
    if (adapter && !adapter.enabled) return "the slot's adapter was left switched off";
    return null;
  }

  /** Everything the host holds is freed. */
  dispose(): void {
    this.host.dispose();
  }
}
