/**
 * The engine's side of the worker protocol: one handler per request, and the one lease on the loaded
 * model (lease.ts) that every request using it takes and gives back. The Web Worker (engine.worker.ts)
 * only wires messages to `handle`; tests drive a host directly in Node with the real engine.
 */
import { modelSummary } from './model-summary';
import {
  pickBestBackend,
  probeWebGpu,
  tensorByteLimit,
  useBackend,
  type BackendChoice,
  type BackendName,
} from '../engine/backend';
import { generate } from '../engine/generate';
import { endTokenIds, loadModel, type LoadedModel } from '../engine/load';
import type { ModelFiles } from '../engine/model-files';
import { closeWeights } from '../engine/weights-source';
import { disposeModel } from '../engine/model';
import { scoreTokens } from '../engine/score';
import { matMulGflops } from '../engine/speed';
import { AdapterSlot } from './adapter-slot';
import { ChatSession } from './chat';
import { DatasetSession } from './dataset-session';
import { DraftingSession } from './drafting';
import { EstimateSession, FIRST_EFFICIENCY } from './estimate';
import { EvaluationSession } from './evaluation';
import { exportAdapter } from './export';
import { clearExports, memoryTarget, opfsAvailable, opfsTarget } from './export-target';
import { fetchModelFiles } from './fetch-model';
import { HubLoader } from './hub';
import { ModelLease, type Holder, type LeaseKind } from './lease';
import { importAdapter, useSavedAdapter } from './library';
import { readPickedModel } from './picked-files';
import type {
  HubLoadRequest,
  ModelSummary,
  RequestName,
  Requests,
  WorkerRequest,
  WorkerResponse,
} from './protocol';
import { TrainingSession } from './training';
import { measureWeightsCost } from './weights-cost';
import { chooseWeights, NOMINAL_RUN, type WeightsSetting } from '../engine/weights-choice';

type Handlers = {
  [K in RequestName]: (params: Requests[K]['params'], id: number) => Promise<Requests[K]['result']>;
};

/** Where the loaded model came from, so an export can read its files again. */
type ModelSource =
  { kind: 'url'; url: string } | { kind: 'hub'; request: HubLoadRequest } | { kind: 'picked' };

export interface HostOptions {
  /** Where tfjs-backend-wasm's binaries are (URLs in the page, a folder in Node). */
  wasmPaths: string | Record<string, string>;
}

const holder = (kind: LeaseKind): Holder => ({ kind });

export class EngineHost {
  private loaded: LoadedModel | null = null;
  private source: ModelSource | null = null;
  private backendChoice: BackendChoice | null = null;
  /** The backend being chosen now: another request for 'auto' waits for it rather than starting a second. */
  private choosing: Promise<BackendChoice> | null = null;
  private gpuLimit: Promise<number | undefined> | null = null;
  /** How models hold their frozen weights (the page's Base weights setting). */
  private weights: WeightsSetting = 'auto';
  readonly slot = new AdapterSlot();
  readonly dataset = new DatasetSession();
  /** The dataset file being read, which settings sent meanwhile wait for. */
  private datasetReading: Promise<void> = Promise.resolve();
  readonly lease: ModelLease;
  readonly training: TrainingSession;
  readonly chat: ChatSession;
  readonly evaluation: EvaluationSession;
  readonly estimates: EstimateSession;
  readonly drafting: DraftingSession;
  readonly hub = new HubLoader();

  constructor(
    private readonly post: (message: WorkerResponse) => void,
    private readonly options: HostOptions,
  ) {
    this.lease = new ModelLease(() => this.training.phase === 'paused');
    this.training = new TrainingSession(this.slot, this.dataset, this.lease);
    this.chat = new ChatSession(this.slot, this.dataset);
    this.evaluation = new EvaluationSession(this.slot, this.dataset);
    this.estimates = new EstimateSession(this.slot, this.dataset, this.lease);
    this.drafting = new DraftingSession(this.slot);
  }

  /** Answers one request: its events, then its result or an error in words. */
  async handle({ id, type, params }: WorkerRequest): Promise<void> {
    try {
      const handler = this.handlers[type] as (p: unknown, id: number) => Promise<unknown>;
      const value = await handler(params, id);
      this.post({ id, type: 'result', value });
    } catch (error) {
      this.post({ id, type: 'error', message: error instanceof Error ? error.message : String(error) });
    }
  }

  /** The loaded model and everything on it are freed (tests; a worker simply ends). */
  dispose(): void {
    this.slot.drop();
    if (this.loaded) disposeModel(this.loaded.model);
    this.loaded = null;
  }

  private requireModel(): LoadedModel {
    if (!this.loaded) throw new Error('No model is loaded yet. Load a model first.');
    return this.loaded;
  }

  /** Switching backends keeps the loaded model: tfjs moves each tensor over the first time it is used. */
  private async chooseBackend(backend: BackendName | 'auto'): Promise<BackendChoice> {
    const options = { wasmPaths: this.options.wasmPaths };
    if (backend === 'auto' && this.backendChoice) return this.backendChoice;
    const choice = backend === 'auto' ? await pickBestBackend(options) : await useBackend(backend, options);
    // SmolLM2-135M's MLP product: a shape the catalog's models spend their steps on.
    const stepGflops = (await matMulGflops(256, 576, 1536, 3)) * FIRST_EFFICIENCY;
    this.backendChoice = { ...choice, stepGflops };
    return this.backendChoice;
  }

  /** The WebGPU adapter's buffer limit, whatever runs now: a wasm model may train on WebGPU later. */
  private tensorLimit(): Promise<number | undefined> {
    this.gpuLimit ??= probeWebGpu().then((adapter) =>
      adapter ? tensorByteLimit({ backend: 'webgpu', reason: '', adapter }) : undefined,
    );
    return this.gpuLimit;
  }

  /**
   * Replaces the loaded model (and any adapter on it) with the one `files()` gives; if that fails, the old
   * one stays. Refused before anything is read while the model is in use or a run is paused.
   */
  private async install(source: ModelSource, files: () => Promise<ModelFiles>): Promise<ModelSummary> {
    const action = 'load another model';
    this.lease.check(action, { replacesAdapter: true });
    const read = await files();
    // An estimate planned for the model being replaced is of no use.
    this.estimates.cancel();
    const installed = this.lease.with(
      holder('model'),
      action,
      async () => {
        // Tensors over the GPU's buffer limit are split (the embedding of a 150k vocabulary is over 500 MB).
        const backend = this.backendChoice?.backend ?? 'wasm';
        const next = loadModel(read, {
          maxTensorBytes: await this.tensorLimit(),
          chooseWeights: (args) => chooseWeights(this.weights, args, NOMINAL_RUN, backend),
        });
        this.slot.drop();
        if (this.loaded) disposeModel(this.loaded.model);
        this.loaded = next;
        this.source = source;
        // The open dataset is tokenised again for this model when the page next asks for it.
        this.dataset.useModel(next);
        return modelSummary(next);
      },
      { replacesAdapter: true },
    );
    // Every tensor is on the device once it is built: the files (an OPFS file's handle) are released.
    return installed.finally(() => closeWeights(read.weights));
  }

  /**
   * The loaded model's files opened again where they came from (the device cache, the page's server, the
   * picked files the page hands back) for the length of the work, rather than kept; the work closes them.
   */
  private async reopenFiles(picked: File[] | undefined, why: string): Promise<ModelFiles> {
    const from = this.source;
    if (from?.kind === 'url') return fetchModelFiles(from.url);
    if (from?.kind === 'hub') return (await this.hub.load(from.request, () => {})).files;
    if (picked?.length) return readPickedModel(picked);
    throw new Error(
      `Pick the model folder's files again (Load model from files) to ${why}: the page cannot reopen them by itself.`,
    );
  }

  private readonly handlers: Handlers = {
    init: async ({ backend }) => {
      if (backend === 'auto' && this.backendChoice) return this.backendChoice;
      if (backend === 'auto' && this.choosing) return this.choosing;
      const choosing = this.lease.with(
        holder('backend'),
        'switch the backend',
        () => this.chooseBackend(backend),
        { replacesAdapter: true },
      );
      // Set at once: the page starting and a model dropped on it ask for 'auto' in the same moment.
      if (backend === 'auto') {
        this.choosing = choosing;
        const clear = () => {
          if (this.choosing === choosing) this.choosing = null;
        };
        choosing.then(clear, clear);
      }
      return choosing;
    },
    loadModel: ({ files }) => this.install({ kind: 'picked' }, async () => files),
    loadModelUrl: ({ url }, id) => {
      const started = performance.now();
      return this.install({ kind: 'url', url }, () =>
        fetchModelFiles(url, (done, total) =>
          this.post({
            id,
            type: 'hub',
            event: {
              kind: 'progress',
              progress: {
                file: 'model.safetensors',
                done,
                total,
                bytesPerSecond: done / Math.max((performance.now() - started) / 1000, 1e-3),
                resumedFrom: 0,
              },
            },
          }),
        ),
      );
    },
    loadHubModel: async (request, id) => {
      let download: { license: string | null; bytes: number; fromCache: boolean } | null = null;
      const summary = await this.install({ kind: 'hub', request }, async () => {
        const { files, ...rest } = await this.hub.load(request, (event) =>
          this.post({ id, type: 'hub', event }),
        );
        download = rest;
        return files;
      });
      const { license, bytes, fromCache } = download!;
      return { ...summary, license, download: { bytes, fromCache } };
    },
    setWeights: async ({ setting }, id) => {
      const from = this.source;
      if (!this.loaded || !from) {
        this.weights = setting;
        return null;
      }
      this.lease.check('hold the weights another way', { replacesAdapter: true });
      if (from.kind === 'picked')
        throw new Error(
          "The model's files were picked from this device and are not kept: pick them again (Load model from files) to hold its weights this way.",
        );
      // All or nothing: a reload that fails leaves the model and the setting as they were.
      const previous = this.weights;
      this.weights = setting;
      try {
        return await (from.kind === 'url'
          ? this.handlers.loadModelUrl({ url: from.url }, id)
          : this.handlers.loadHubModel(from.request, id));
      } catch (error) {
        this.weights = previous;
        throw error;
      }
    },
    weightsCost: ({ text }) =>
      this.lease.with(holder('evaluation'), 'measure what the weights cost', async () =>
        measureWeightsCost(this.requireModel(), this.slot, text, async () => ({
          files: await this.reopenFiles(undefined, 'compare with 32-bit'),
          maxTensorBytes: await this.tensorLimit(),
        })),
      ),
    ...this.hub.handlers(
      () => this.requireModel(),
      (message) => this.post(message),
    ),
    score: ({ text }) =>
      this.lease.with(holder('generation'), 'score a text', async () => {
        const { model, tokenizer } = this.requireModel();
        return scoreTokens(model, tokenizer.encode(text));
      }),
    generate: (request, id) =>
      this.lease.with(holder('generation'), 'generate', async () => {
        const current = this.requireModel();
        const { model, tokenizer } = current;
        const result = await generate(model, tokenizer.encode(request.prompt), {
          ...request,
          eosTokenIds: endTokenIds(current),
          decode: (ids) => tokenizer.decode(ids),
          onToken: (_token, text) => this.post({ id, type: 'token', text }),
        });
        return { text: result.text, tokens: result.tokens, stopReason: result.stopReason };
      }),
    openDataset: async (request, id) => {
      // A workbook's reader is imported on the first one: settings sent meanwhile wait for the file.
      const reading = this.dataset.read(request);
      this.datasetReading = reading.catch(() => {});
      await reading;
      return this.dataset.prepare((event) => this.post({ id, type: 'dataset', event }));
    },
    configureDataset: async (settings, id) => {
      await this.datasetReading;
      this.dataset.setSettings(settings);
      return this.dataset.prepare((event) => this.post({ id, type: 'dataset', event }));
    },
    cancelDataset: async () => this.dataset.cancel(),
    train: async (request, id) => {
      // An estimate made before the run is of no use once it starts.
      this.estimates.cancel();
      let backend: BackendChoice | null = null;
      const result = await this.training.train(
        this.requireModel(),
        request,
        (event) => this.post({ id, type: 'train', event }),
        async () => {
          backend = await this.chooseBackend(request.backend);
          this.post({ id, type: 'train', event: { kind: 'backend', choice: backend } });
        },
      );
      return { ...result, backend: backend! };
    },
    resumeTraining: async (_params, id) => {
      const result = await this.training.resume(this.requireModel(), (event) =>
        this.post({ id, type: 'train', event }),
      );
      return { ...result, backend: this.backendChoice! };
    },
    resumeSavedRun: async ({ runId, backend: requested }, id) => {
      this.estimates.cancel();
      let backend: BackendChoice | null = null;
      const result = await this.training.resumeSaved(
        this.requireModel(),
        runId,
        (event) => this.post({ id, type: 'train', event }),
        async () => {
          backend = await this.chooseBackend(requested);
          this.post({ id, type: 'train', event: { kind: 'backend', choice: backend } });
        },
      );
      return { ...result, backend: backend! };
    },
    saveAdapterAgain: () => this.training.saveAgain(),
    pauseTraining: async () => this.training.pause(),
    stopTraining: async () => this.training.stop(),
    estimateTraining: (request, id) =>
      this.estimates.estimate(
        this.requireModel(),
        request,
        (first) => this.post({ id, type: 'estimate', event: first }),
        {
          current: () => this.backendChoice?.backend ?? null,
          choose: async () => (await this.chooseBackend(request.backend)).backend,
        },
        () => this.loaded,
      ),
    chat: (request, id) =>
      this.lease.with(holder('chat'), 'chat', () =>
        this.chat.reply(this.requireModel(), request, (text) => this.post({ id, type: 'token', text })),
      ),
    stopChat: async () => this.chat.stop(),
    chatSetup: async () => this.chat.setup(this.requireModel()),
    useAdapter: ({ id }) =>
      this.lease.with(
        holder('adapter'),
        'switch adapters',
        async () => {
          const current = this.requireModel();
          if (id === null) this.slot.clear(current.model);
          else if (this.slot.info?.id !== id) await useSavedAdapter(current, this.slot, id);
          return this.chat.setup(current);
        },
        { replacesAdapter: true },
      ),
    evaluate: (request, id) =>
      this.lease.with(holder('evaluation'), 'evaluate', () =>
        this.evaluation.evaluate(this.requireModel(), request, (event) =>
          this.post({ id, type: 'evaluate', event }),
        ),
      ),
    cancelEvaluation: async () => this.evaluation.cancel(),
    draftQuestions: (request, id) =>
      this.lease.with(holder('drafting'), 'draft questions', () =>
        this.drafting.draft(this.requireModel(), request, (event) => this.post({ id, type: 'draft', event })),
      ),
    cancelDrafting: async () => this.drafting.cancel(),
    // Reads only the model's shapes and writes the library: it never touches the model's tensors.
    importAdapter: async ({ bytes, fileName }) => importAdapter(this.requireModel(), bytes, fileName),
    exportAdapter: (request, id) =>
      this.lease.with(holder('export'), 'export', async () => {
        const current = this.requireModel();
        const openModel = () => this.reopenFiles(request.modelFiles, 'export');
        await clearExports();
        return exportAdapter(
          current,
          request,
          openModel,
          opfsAvailable() ? opfsTarget : memoryTarget,
          (event) => this.post({ id, type: 'export', event }),
        );
      }),
  };
}
