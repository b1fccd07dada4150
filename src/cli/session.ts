/** What every command starts with: a backend, the model folder, and optionally an adapter. */
import fs from 'node:fs';
import path from 'node:path';
import type { BackendChoice } from '../engine/backend';
import { linearShape, type ModelArgs } from '../engine/config';
import { loadModel, type LoadedModel } from '../engine/load';
import { closeWeights } from '../engine/weights-source';
import type { TrainingSettingsForMemory } from '../engine/memory';
import {
  chooseWeights,
  NOMINAL_RUN,
  WEIGHT_CHOICES,
  type WeightsDecision,
  type WeightsSetting,
} from '../engine/weights-choice';
import { disposeModel } from '../engine/model';
import { attachAdapterWeights, type LoraAdapter } from '../engine/lora';
import {
  checkAdapterWeightsSize,
  checkAdapterZipSize,
  formatSize,
  MAX_CONFIG_BYTES,
  type AdapterModel,
} from '../formats/adapter-limits';
import {
  checkAdapterFits,
  readAdapterConfig,
  readAdapterFiles,
  readAdapterZip,
  type AdapterWeights,
} from '../formats/peft';
import { readAdapterInfo, type AdapterInfo } from '../formats/adapter-info';
import { checkFiniteWeights } from '../formats/finite-weights';
import { fetchHubAdapter } from '../hub/adapter';
import { isHubId } from '../hub/resolve';
import { readEnvironment } from '../node/environment';
import { CliError } from './errors';
import { FsStore } from './fs-store';
import { tokenForEndpoint } from './hub-token';
import { readModel, type ModelSourceOptions } from './model-source';
import { chooseBackend } from '../node/backends';

export interface Session extends LoadedModel {
  backend: BackendChoice;
  adapter: LoraAdapter | null;
  /** What webtune wrote about the adapter (its run, its split); null without one or from elsewhere. */
  adapterInfo: Partial<AdapterInfo> | null;
}

function readAdapterFile(file: string, model: AdapterModel) {
  if (!fs.existsSync(file))
    throw new CliError(
      `Adapter not found: ${file}. Pass a .zip written by webtune train (or a PEFT adapter folder).`,
    );
  if (fs.statSync(file).isDirectory()) {
    const config = path.join(file, 'adapter_config.json');
    const weights = path.join(file, 'adapter_model.safetensors');
    if (!fs.existsSync(config) || !fs.existsSync(weights))
      throw new CliError(
        `${file} is not a PEFT adapter folder: it needs adapter_config.json and adapter_model.safetensors.`,
      );
    // The same bounds as a zip's, from the sizes on disk, before the weights are read.
    const configSize = fs.statSync(config).size;
    if (configSize > MAX_CONFIG_BYTES)
      throw new CliError(
        `${config} is ${formatSize(configSize)}, but an adapter's config is at most ${formatSize(MAX_CONFIG_BYTES)}; pick the folder PEFT's save_pretrained or webtune wrote.`,
      );
    const configText = fs.readFileSync(config, 'utf8');
    checkAdapterWeightsSize(fs.statSync(weights).size, readAdapterConfig(configText), model);
    return readAdapterFiles(configText, new Uint8Array(fs.readFileSync(weights)));
  }
  // Refused by its size on disk before it is read; readAdapterZip then bounds what it may unpack to.
  checkAdapterZipSize(fs.statSync(file).size, model);
  return readAdapterZip(new Uint8Array(fs.readFileSync(file)), model);
}

/** The --weights option, shared by the commands that load a model. */
export const WEIGHTS_OPTION = { weights: { type: 'string' as const } };
export const WEIGHTS_HELP = `  --weights auto|f32|bf16|q8_0|nf4
                          how the frozen base is held: 32-bit, 16-bit (the checkpoint's own halves),
                          8-bit (llama.cpp's q8_0) or 4-bit (QLoRA's nf4, the embedding in 8 bits);
                          auto (default): the widest whose training fits the 3 GB a browser tab can
                          count on (a 1.5B model in 8 or 4 bits)`;

/** --weights, checked. */
export function weightsSetting(values: Record<string, unknown>): WeightsSetting {
  const raw = (values.weights as string | undefined) ?? 'auto';
  const known: readonly string[] = ['auto', ...WEIGHT_CHOICES];
  if (!known.includes(raw)) throw new CliError(`--weights must be ${known.join(', ')} (got "${raw}").`);
  return raw as WeightsSetting;
}

/**
 * Says how the weights are held, and why, on the progress stream — unless nobody asked and they are the
 * checkpoint's 32 bits, as they always were.
 */
export function reportWeights(
  setting: WeightsSetting,
  decision: WeightsDecision,
  out: { progress(line: string): void },
): void {
  if (setting !== 'auto' || decision.format !== 'f32') out.progress(`weights: ${decision.reason}`);
}

export async function openSession(options: {
  model: string;
  adapter?: string;
  backend?: string;
  source?: ModelSourceOptions;
  /** How the frozen weights are held (default auto, sized for `run`). */
  weights?: WeightsSetting;
  run?: TrainingSettingsForMemory;
}): Promise<Session> {
  const backend = await chooseBackend(options.backend ?? 'cpu');
  const files = await readModel(options.model, options.source);
  let loaded: LoadedModel;
  try {
    loaded = loadModel(files, {
      chooseWeights: (args) =>
        chooseWeights(options.weights ?? 'auto', args, options.run ?? NOMINAL_RUN, backend.backend),
    });
  } catch (error) {
    throw new CliError(`Could not load the model in ${options.model}: ${(error as Error).message}`);
  } finally {
    // Every tensor is on the device now: the files are read no more.
    closeWeights(files.weights);
  }
  let adapter: LoraAdapter | null = null;
  let adapterInfo: Partial<AdapterInfo> | null = null;
  try {
    const weights = options.adapter ? await readAdapter(options.adapter, loaded.args, options.source) : null;
    if (weights) {
      adapterInfo = readAdapterInfo(weights.metadata);
      try {
        adapter = attachAdapterWeights(loaded.model, weights);
      } catch (error) {
        throw new CliError(`Could not use the adapter ${options.adapter}: ${(error as Error).message}`);
      }
    }
  } catch (error) {
    disposeModel(loaded.model);
    throw error;
  }
  return { ...loaded, backend, adapter, adapterInfo };
}

/**
 * Frees the tensors of the model and its adapter. A command ends with it whether it succeeded or not: the
 * process may go on (the tests run commands in theirs), and on WebGPU or wasm the memory is not the heap's.
 */
export function closeSession(session: Session): void {
  session.adapter?.dispose();
  disposeModel(session.model);
}

/**
 * A PEFT zip or folder, or a Hub id (`user/adapter`, cached like models), read within the bounds its config
 * allows and checked against the model (shapes, finite values).
 */
export async function readAdapter(
  file: string,
  args: ModelArgs,
  source: ModelSourceOptions = {},
): Promise<AdapterWeights> {
  try {
    const model: AdapterModel = { numLayers: args.numLayers, shapes: (target) => linearShape(args, target) };
    const weights =
      !fs.existsSync(file) && isHubId(file)
        ? await readHubAdapter(file, model, source)
        : readAdapterFile(file, model);
    checkAdapterFits(weights, model);
    checkFiniteWeights(weights);
    return weights;
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(`Could not use the adapter ${file}: ${(error as Error).message}`);
  }
}

/** An adapter repository on the Hub, downloaded once into the cache and read from there afterwards. */
async function readHubAdapter(id: string, model: AdapterModel, source: ModelSourceOptions) {
  const environment = readEnvironment();
  const endpoint = source.endpoint || environment.hubEndpoint;
  const progress = source.progress ?? (() => {});
  const files = await fetchHubAdapter(id, {
    endpoint,
    revision: source.revision,
    store: new FsStore(source.cacheDir ?? environment.cacheDir),
    token: tokenForEndpoint(endpoint, source.sendTokenTo, environment, progress),
    model,
  });
  progress(`adapter ${id}: ${files.fromCache ? 'read from the cache, no network used' : 'downloaded'}`);
  return readAdapterFiles(new TextDecoder().decode(files.configBytes), files.weightsBytes);
}
