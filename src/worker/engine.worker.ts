/// <reference lib="webworker" />
/**
 * The engine in a Web Worker: the page never runs tensor math, so it stays responsive while a model
 * loads, trains or generates.
 */
import { parameterCount } from '../engine/config';
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
import { disposeModel } from '../engine/model';
import { scoreTokens } from '../engine/score';
import type { ModelSummary, Requests, RequestName, WorkerRequest, WorkerResponse } from './protocol';
import type { ModelFiles } from '../engine/model-files';
import { AdapterSlot } from './adapter-slot';
import { fetchModelFiles } from './fetch-model';
import { HubLoader } from './hub';
import { watchHelperThreadErrors } from './helper-errors';
import { ChatSession } from './chat';
import { importAdapter, useSavedAdapter } from './library';
import { exportAdapter } from './export';
import { clearExports, memoryTarget, opfsAvailable, opfsTarget } from './export-target';
import { readPickedModel } from './picked-files';
import type { HubLoadRequest } from './protocol';
import { DatasetSession } from './dataset-session';
import { EvaluationSession } from './evaluation';
import { EstimateSession } from './estimate';
import { TrainingSession } from './training';
import { WASM_PATHS } from './wasm-paths';

// A wasm helper thread that fails while threads start means: fall back to one thread (not: the engine
// crashed).
watchHelperThreadErrors(self);

let loaded: LoadedModel | null = null;
/**
 * Where the loaded model came from, so an export can read its files again (picked files come with the
 * request).
 */
type ModelSource =
  { kind: 'url'; url: string } | { kind: 'hub'; request: HubLoadRequest } | { kind: 'picked' };
let source: ModelSource | null = null;
const slot = new AdapterSlot();
const dataset = new DatasetSession();
const training = new TrainingSession(slot, dataset);
const chat = new ChatSession(slot, training, dataset);
const evaluation = new EvaluationSession(slot, dataset);
const estimates = new EstimateSession(slot, dataset);
const hub = new HubLoader();

const post = (message: WorkerResponse) =>
  (self as unknown as DedicatedWorkerGlobalScope).postMessage(message);

function requireModel(): LoadedModel {
  if (!loaded) throw new Error('No model is loaded yet. Load a model first.');
  return loaded;
}

type Handlers = {
  [K in RequestName]: (params: Requests[K]['params'], id: number) => Promise<Requests[K]['result']>;
};

let backendChoice: BackendChoice | null = null;

/** Switching backends keeps the loaded model: tfjs moves each tensor over the first time it is used. */
async function chooseBackend(backend: BackendName | 'auto'): Promise<BackendChoice> {
  const options = { wasmPaths: WASM_PATHS };
  if (backend === 'auto' && backendChoice) return backendChoice;
  backendChoice = backend === 'auto' ? await pickBestBackend(options) : await useBackend(backend, options);
  return backendChoice;
}

let gpuLimit: Promise<number | undefined> | null = null;

/**
 * The WebGPU adapter's buffer limit when there is an adapter, whichever backend runs now: a model loaded
 * on wasm may train on WebGPU later, so its tensors must fit there too.
 */
function tensorLimit(): Promise<number | undefined> {
  gpuLimit ??= probeWebGpu().then((adapter) =>
    adapter ? tensorByteLimit({ backend: 'webgpu', reason: '', adapter }) : undefined,
  );
  return gpuLimit;
}

/**
 * Replaces the loaded model (and any adapter on it) with the one in `files`; if those fail to load, the old
 * one stays.
 */
async function install(files: ModelFiles): Promise<ModelSummary> {
  if (training.active || chat.busy || evaluation.busy)
    throw new Error('Stop training, the chat and the evaluation before loading another model.');
  // Tensors over the GPU's buffer limit are split (the embedding of a 150k vocabulary is over 500 MB).
  const next = loadModel(files, { maxTensorBytes: await tensorLimit() });
  slot.drop();
  if (loaded) disposeModel(loaded.model);
  loaded = next;
  // The open dataset is tokenised again for this model when the page next asks for it.
  dataset.useModel(next);
  const { args, tokenizer, name } = loaded;
  return {
    name,
    modelType: args.modelType,
    parameters: parameterCount(args),
    layers: args.numLayers,
    hiddenSize: args.hiddenSize,
    vocabSize: args.vocabSize,
    hasChatTemplate: tokenizer.chatTemplate !== null,
    args,
  };
}

const handlers: Handlers = {
  init: ({ backend }) => chooseBackend(backend),
  async loadModel({ files }) {
    const summary = await install(files);
    source = { kind: 'picked' };
    return summary;
  },
  async loadModelUrl({ url }, id) {
    const started = performance.now();
    const files = await fetchModelFiles(url, (done, total) =>
      post({
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
    );
    const summary = await install(files);
    source = { kind: 'url', url };
    return summary;
  },
  async loadHubModel(request, id) {
    if (training.active || chat.busy || evaluation.busy)
      throw new Error('Stop training, the chat and the evaluation before loading another model.');
    const { files, license, bytes, fromCache } = await hub.load(request, (event) =>
      post({ id, type: 'hub', event }),
    );
    const summary = await install(files);
    source = { kind: 'hub', request };
    return { ...summary, license, download: { bytes, fromCache } };
  },
  async cancelDownload() {
    return hub.cancel();
  },
  async cachedModels() {
    return hub.cached();
  },
  async deleteCachedModel({ key }) {
    return hub.remove(key);
  },
  async score({ text }) {
    const { model, tokenizer } = requireModel();
    return scoreTokens(model, tokenizer.encode(text));
  },
  async generate(request, id) {
    const current = requireModel();
    const { model, tokenizer } = current;
    const result = await generate(model, tokenizer.encode(request.prompt), {
      ...request,
      eosTokenIds: endTokenIds(current),
      decode: (ids) => tokenizer.decode(ids),
      onToken: (_token, text) => post({ id, type: 'token', text }),
    });
    return { text: result.text, tokens: result.tokens, stopReason: result.stopReason };
  },
  async openDataset(request, id) {
    dataset.load(request);
    return dataset.prepare((event) => post({ id, type: 'dataset', event }));
  },
  async configureDataset(settings, id) {
    dataset.setSettings(settings);
    return dataset.prepare((event) => post({ id, type: 'dataset', event }));
  },
  async cancelDataset() {
    return dataset.cancel();
  },
  async train(request, id) {
    if (evaluation.busy)
      throw new Error('The evaluation is still running. Wait for it or press Cancel, then train.');
    const backend = await chooseBackend(request.backend);
    post({ id, type: 'train', event: { kind: 'backend', choice: backend } });
    const result = await training.train(requireModel(), request, (event) =>
      post({ id, type: 'train', event }),
    );
    return { ...result, backend };
  },
  async estimateTraining(request) {
    const current = requireModel();
    return estimates.estimate(current, request, async () => {
      const backend = await chooseBackend(request.backend);
      if (training.active)
        throw new Error('A training run is in progress or paused: the estimate waits until it ends.');
      if (chat.busy || evaluation.busy)
        throw new Error('The chat or the evaluation is running: the estimate waits until it ends.');
      return backend.backend;
    });
  },
  async resumeTraining(_params, id) {
    const result = await training.continue(requireModel(), (event) => post({ id, type: 'train', event }));
    return { ...result, backend: backendChoice! };
  },
  async resumeSavedRun({ runId, backend: requested }, id) {
    const backend = await chooseBackend(requested);
    post({ id, type: 'train', event: { kind: 'backend', choice: backend } });
    const result = await training.resumeSaved(requireModel(), runId, (event) =>
      post({ id, type: 'train', event }),
    );
    return { ...result, backend };
  },
  async saveAdapterAgain() {
    return training.saveAgain();
  },
  async pauseTraining() {
    return training.interrupt('pause');
  },
  async stopTraining() {
    return training.interrupt('stop');
  },
  async chat(request, id) {
    if (evaluation.busy)
      throw new Error('The evaluation is still running. Wait for it or press Cancel, then chat.');
    return chat.reply(requireModel(), request, (text) => post({ id, type: 'token', text }));
  },
  async stopChat() {
    return chat.stop();
  },
  async chatSetup() {
    return chat.setup(requireModel());
  },
  async useAdapter({ id }) {
    const current = requireModel();
    if (training.active)
      throw new Error('A training run is in progress or paused; stop it before switching adapters.');
    if (chat.busy) throw new Error('The chat is still answering. Wait for it or press Stop.');
    if (evaluation.busy) throw new Error('The evaluation is still running. Wait for it or press Cancel.');
    if (id === null) slot.clear(current.model);
    else if (slot.info?.id !== id) await useSavedAdapter(current, slot, id);
    return chat.setup(current);
  },
  async evaluate(request, id) {
    const current = requireModel();
    if (training.running)
      throw new Error('Training is running. Pause or wait for it to finish, then evaluate.');
    if (chat.busy) throw new Error('The chat is still answering. Wait for it or press Stop, then evaluate.');
    return evaluation.evaluate(current, request, (event) => post({ id, type: 'evaluate', event }));
  },
  async cancelEvaluation() {
    return evaluation.cancel();
  },
  async importAdapter({ bytes, fileName }) {
    return importAdapter(requireModel(), bytes, fileName);
  },
  async exportAdapter(request, id) {
    const current = requireModel();
    if (training.running)
      throw new Error('Training is running. Pause or wait for it to finish, then export.');
    if (chat.busy || evaluation.busy)
      throw new Error('The chat or the evaluation is still running. Wait for it, then export.');
    const from = source;
    const openModel = async () => {
      // The model's files are read again from where they came (the device cache, the page's server, the
      // picked files), one copy for the length of the export, rather than kept beside the loaded model.
      if (from?.kind === 'url') return fetchModelFiles(from.url);
      if (from?.kind === 'hub') return (await hub.load(from.request, () => {})).files;
      if (request.modelFiles?.length) return readPickedModel(request.modelFiles);
      throw new Error(
        "Pick the model folder's files again (Load model from files) to export: the page cannot reopen them by itself.",
      );
    };
    await clearExports();
    return exportAdapter(current, request, openModel, opfsAvailable() ? opfsTarget : memoryTarget, (event) =>
      post({ id, type: 'export', event }),
    );
  },
};

/**
 * Requests that use the model or switch the backend: a training estimate in progress (which has a
 * throwaway adapter on the model) ends after its current step before they run.
 */
const AFTER_ESTIMATE = new Set<RequestName>([
  'init',
  'loadModel',
  'loadModelUrl',
  'loadHubModel',
  'score',
  'generate',
  'train',
  'resumeTraining',
  'resumeSavedRun',
  'chat',
  'useAdapter',
  'evaluate',
  'importAdapter',
  'exportAdapter',
]);

self.onmessage = async (event: MessageEvent<WorkerRequest>) => {
  const { id, type, params } = event.data;
  try {
    if (AFTER_ESTIMATE.has(type)) await estimates.stop();
    const value = await (handlers[type] as (p: unknown, id: number) => Promise<unknown>)(params, id);
    post({ id, type: 'result', value });
  } catch (error) {
    post({ id, type: 'error', message: error instanceof Error ? error.message : String(error) });
  }
};
