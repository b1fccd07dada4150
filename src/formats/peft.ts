/**
 * LoRA adapters in Hugging Face PEFT's layout, so an adapter trained here loads with
 * `PeftModel.from_pretrained(base, folder)` and one trained with PEFT loads here: adapter_config.json
 * plus adapter_model.safetensors holding `base_model.model.<module>.lora_A.weight` [r, in] and
 * `.lora_B.weight` [out, r] for each adapted linear.
 */
import { strFromU8, strToU8, zipSync, type Zippable } from 'fflate';
import { readSafetensors, writeSafetensors, type HostTensor } from '../engine/safetensors';
import { inflateEntry, ZipError, zipEntries, type ZipEntry } from './zip-entries';
import { AdapterFormatError, CONFIG_FILE, WEIGHTS_FILE, ZIP_ADVICE } from './adapter-files';
import {
  checkAdapterWeightsSize,
  checkAdapterZipSize,
  formatSize,
  MAX_CONFIG_BYTES,
  type AdapterModel,
} from './adapter-limits';
import {
  LORA_TARGETS,
  modulePath,
  parseModulePath,
  type AdapterConfig,
  type AdapterWeights,
  type LoraMatrix,
  type LoraTarget,
} from '../engine/adapter-weights';

export {
  LORA_TARGETS,
  modulePath,
  parseModulePath,
  type AdapterConfig,
  type AdapterWeights,
  type LoraMatrix,
  type LoraTarget,
} from '../engine/adapter-weights';

export { AdapterFormatError, CONFIG_FILE, WEIGHTS_FILE } from './adapter-files';
/** PeftModel wraps LoraModel wraps the causal LM, hence the two "model"s before the checkpoint name. */
const KEY_PREFIX = 'base_model.model.';

export function loraScale(config: Pick<AdapterConfig, 'r' | 'lora_alpha' | 'use_rslora'>): number {
  return config.use_rslora ? config.lora_alpha / Math.sqrt(config.r) : config.lora_alpha / config.r;
}

/** adapter_config.json as PEFT writes it (keys sorted, as PEFT's save_pretrained does). */
export function adapterConfigJson(config: AdapterConfig): Record<string, unknown> {
  return {
    alpha_pattern: {},
    base_model_name_or_path: config.base_model_name_or_path,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: null,
    layers_to_transform: null,
    lora_alpha: config.lora_alpha,
    lora_dropout: config.lora_dropout,
    modules_to_save: null,
    peft_type: 'LORA',
    r: config.r,
    rank_pattern: {},
    revision: null,
    target_modules: [...config.target_modules],
    task_type: 'CAUSAL_LM',
    use_dora: false,
    use_rslora: config.use_rslora,
  };
}

export function writeAdapterZip(weights: AdapterWeights, options: { readme?: string } = {}): Uint8Array {
  const tensors: [string, HostTensor][] = [];
  for (const [path, { A, B }] of weights.modules) {
    tensors.push([`${KEY_PREFIX}${path}.lora_A.weight`, A], [`${KEY_PREFIX}${path}.lora_B.weight`, B]);
  }
  const files: Zippable = {
    [CONFIG_FILE]: strToU8(JSON.stringify(adapterConfigJson(weights.config), null, 2) + '\n'),
    [WEIGHTS_FILE]: writeSafetensors(tensors, { ...weights.metadata, format: 'pt' }),
  };
  if (options.readme !== undefined) files['README.md'] = strToU8(options.readme);
  return zipSync(files);
}

const baseName = (name: string) => name.slice(name.lastIndexOf('/') + 1);
const folderOf = (name: string) => name.slice(0, name.lastIndexOf('/') + 1);

/**
 * Reads a PEFT adapter zip without trusting it. The central directory is read first: the zip must hold
 * exactly one adapter_config.json and one adapter_model.safetensors, in one folder. The config must
 * declare at most 1 MB; the weights at most what a LoRA of the config's rank can need for `model` (or the
 * generic cap when no model is given). Each file is then inflated step by step and refused the moment it
 * passes its declared size, so a zip bomb costs no more memory than those bounds.
 */
export function readAdapterZip(bytes: Uint8Array, model?: AdapterModel): AdapterWeights {
  checkAdapterZipSize(bytes.length, model);
  let entries: ZipEntry[];
  try {
    entries = zipEntries(bytes);
  } catch (error) {
    throw new AdapterFormatError(
      `The adapter is not a readable zip file (${(error as Error).message}). Export the adapter again, or unzip it and pass the folder.`,
    );
  }
  // Only the adapter's own files are read; checkpoints or data in the same zip are skipped.
  const wanted = entries.filter((entry) => !entry.name.startsWith('__MACOSX/'));
  const named = (file: string) => wanted.filter((entry) => baseName(entry.name) === file);
  const configs = named(CONFIG_FILE);
  const weightFiles = named(WEIGHTS_FILE);
  if (configs.length === 0) {
    throw new AdapterFormatError(
      `The zip has no ${CONFIG_FILE}, so it is not a PEFT LoRA adapter. Pick the zip that webtune or PEFT's save_pretrained wrote.`,
    );
  }
  const folders = [...new Set([...configs, ...weightFiles].map((entry) => folderOf(entry.name)))];
  if (folders.length > 1) {
    throw new AdapterFormatError(
      `The zip holds several adapters (${folders.map((f) => f || '(top level)').join(', ')}). Zip just the one you want.`,
    );
  }
  for (const [file, found] of [
    [CONFIG_FILE, configs],
    [WEIGHTS_FILE, weightFiles],
  ] as const) {
    if (found.length > 1)
      throw new AdapterFormatError(
        `The zip holds ${file} ${found.length} times, so it is not one adapter; zip just the one adapter you want.`,
      );
  }
  const [config] = configs;
  const [weightsEntry] = weightFiles;
  const [folder] = folders;
  if (!weightsEntry) {
    const hint = named('adapter_model.bin').some((entry) => folderOf(entry.name) === folder)
      ? 'It has adapter_model.bin (PyTorch pickle), which webtune does not read; save it again with save_pretrained(..., safe_serialization=True).'
      : 'Export the adapter again.';
    throw new AdapterFormatError(`The zip has ${CONFIG_FILE} but no ${WEIGHTS_FILE}. ${hint}`);
  }
  if (config.originalSize > MAX_CONFIG_BYTES) {
    throw new AdapterFormatError(
      `The zip says ${CONFIG_FILE} unpacks to ${formatSize(config.originalSize)}, but an adapter's config is at most ${formatSize(MAX_CONFIG_BYTES)}. ${ZIP_ADVICE}`,
    );
  }
  const settings = readAdapterConfig(strFromU8(inflateChecked(bytes, config)));
  checkAdapterWeightsSize(
    weightsEntry.originalSize,
    settings,
    model,
    `The zip says ${WEIGHTS_FILE} unpacks to`,
  );
  return readAdapterWeights(settings, inflateChecked(bytes, weightsEntry));
}

/** An entry's bytes, inflated no further than its (already checked) declared size. */
function inflateChecked(bytes: Uint8Array, entry: ZipEntry): Uint8Array {
  try {
    return inflateEntry(bytes, entry);
  } catch (error) {
    if (!(error instanceof ZipError)) throw error;
    throw new AdapterFormatError(`The zip is damaged or was tampered with: ${error.message}. ${ZIP_ADVICE}`);
  }
}

function parseConfig(raw: unknown): Omit<AdapterConfig, 'target_modules'> {
  const fail = (problem: string, advice = 'Use an adapter_config.json written by webtune or PEFT.') =>
    new AdapterFormatError(`${CONFIG_FILE}: ${problem}. ${advice}`);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw fail('is not a JSON object');
  const c = raw as Record<string, unknown>;
  if (c.peft_type !== 'LORA')
    throw fail(
      `peft_type is ${JSON.stringify(c.peft_type)}, but webtune reads only LoRA adapters ("LORA")`,
      'Pick a LoRA adapter.',
    );
  if (!Number.isSafeInteger(c.r) || (c.r as number) <= 0)
    throw fail(`r must be a positive whole number, not ${JSON.stringify(c.r)}`);
  if (typeof c.lora_alpha !== 'number' || !Number.isFinite(c.lora_alpha))
    throw fail(`lora_alpha must be a number, not ${JSON.stringify(c.lora_alpha)}`);
  const dropout = c.lora_dropout ?? 0;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1))
    throw fail(`lora_dropout must be a number from 0 up to 1, not ${JSON.stringify(dropout)}`);
  const unsupported = 'webtune cannot load it; train a plain LoRA adapter instead.';
  if (c.use_dora === true) throw fail('the adapter uses DoRA (use_dora: true)', unsupported);
  if (c.fan_in_fan_out === true) throw fail('fan_in_fan_out is true (transposed weights)', unsupported);
  if (c.bias !== undefined && c.bias !== 'none')
    throw fail(`the adapter trains biases (bias: ${JSON.stringify(c.bias)})`, unsupported);
  for (const key of ['rank_pattern', 'alpha_pattern'] as const) {
    const pattern = c[key];
    if (pattern && typeof pattern === 'object' && Object.keys(pattern).length > 0)
      throw fail(`${key} gives some modules their own rank or alpha`, unsupported);
  }
  return {
    r: c.r as number,
    lora_alpha: c.lora_alpha,
    lora_dropout: dropout,
    use_rslora: c.use_rslora === true,
    base_model_name_or_path: typeof c.base_model_name_or_path === 'string' ? c.base_model_name_or_path : '',
  };
}

/**
 * Tensor keys PEFT has written: `<prefix>.lora_A.weight`, with an adapter name (`.lora_A.default.weight`),
 * or without the `.weight` suffix. The prefix is `base_model.model.` + the module path (or the bare path).
 */
const TENSOR_KEY = /^(?:base_model\.model\.)?(.+)\.lora_([AB])(?:\.(?!weight$)[\w-]+)?(?:\.weight)?$/;

/**
 * Reads an unzipped adapter folder: the text (or parsed object) of adapter_config.json and the weights'
 * bytes.
 */
export function readAdapterFiles(configJson: string | object, safetensorsBytes: Uint8Array): AdapterWeights {
  return readAdapterWeights(readAdapterConfig(configJson), safetensorsBytes);
}

type AdapterSettings = Omit<AdapterConfig, 'target_modules'>;

/** adapter_config.json's settings (its text or parsed object), checked. */
export function readAdapterConfig(configJson: string | object): AdapterSettings {
  let raw: unknown = configJson;
  if (typeof configJson === 'string') {
    try {
      raw = JSON.parse(configJson);
    } catch (error) {
      throw new AdapterFormatError(
        `${CONFIG_FILE} is not valid JSON (${(error as Error).message}). Export the adapter again.`,
      );
    }
  }
  return parseConfig(raw);
}

function readAdapterWeights(settings: AdapterSettings, safetensorsBytes: Uint8Array): AdapterWeights {
  const { r } = settings;
  const { tensors, metadata } = readSafetensors(safetensorsBytes, WEIGHTS_FILE);
  const fail = (problem: string) =>
    new AdapterFormatError(
      `${WEIGHTS_FILE}: ${problem}. Export the adapter again, or check that it is a LoRA adapter for a Llama-family model.`,
    );

  const found = new Map<string, { layer: number; target: LoraTarget; A?: LoraMatrix; B?: LoraMatrix }>();
  for (const [key, tensor] of tensors) {
    const match = TENSOR_KEY.exec(key);
    if (!match) throw fail(`tensor '${key}' is not a LoRA A or B matrix`);
    const [, path] = match;
    const which = match[2] as 'A' | 'B';
    const place = parseModulePath(path);
    if (!place)
      throw fail(
        `tensor '${key}' adapts '${path}', which webtune does not support (only ${LORA_TARGETS.join(', ')} in each layer)`,
      );
    if (tensor.shape.length !== 2)
      throw fail(`tensor '${key}' has shape [${tensor.shape.join(', ')}], but LoRA matrices are 2-D`);
    const module = found.get(path) ?? { ...place };
    if (module[which]) throw fail(`lora_${which} for '${path}' appears twice`);
    module[which] = { shape: tensor.shape as [number, number], data: tensor.data };
    found.set(path, module);
  }
  if (found.size === 0) throw fail('the file holds no LoRA weights');

  const order = (m: { layer: number; target: LoraTarget }) =>
    m.layer * LORA_TARGETS.length + LORA_TARGETS.indexOf(m.target);
  const modules: AdapterWeights['modules'] = new Map();
  for (const [path, { A, B }] of [...found].sort(([, a], [, b]) => order(a) - order(b))) {
    if (!A || !B) throw fail(`'${path}' has lora_${A ? 'A' : 'B'} but no lora_${A ? 'B' : 'A'}`);
    if (A.shape[0] !== r)
      throw fail(`lora_A of '${path}' has shape [${A.shape.join(', ')}], but r = ${r} needs [${r}, in]`);
    if (B.shape[1] !== r)
      throw fail(`lora_B of '${path}' has shape [${B.shape.join(', ')}], but r = ${r} needs [out, ${r}]`);
    modules.set(path, { A, B });
  }
  // The tensors, not the config, decide the targets: PEFT also allows regexes and "all-linear" there.
  const present = new Set([...found.values()].map((m) => m.target));
  return {
    config: { ...settings, target_modules: LORA_TARGETS.filter((t) => present.has(t)) },
    modules,
    metadata,
  };
}

/** Throws if the adapter was made for a base model with other layer counts or linear sizes. */
export function checkAdapterFits(weights: AdapterWeights, model: AdapterModel): void {
  const { config, modules } = weights;
  const origin = config.base_model_name_or_path
    ? ` (it was trained on ${config.base_model_name_or_path})`
    : '';
  const advice = `The adapter was made for a different base model${origin}; load it with the model it was trained on.`;
  for (const [path, { A, B }] of modules) {
    const place = parseModulePath(path);
    if (!place)
      throw new AdapterFormatError(`The adapter adapts '${path}', which webtune does not support. ${advice}`);
    if (place.layer >= model.numLayers) {
      throw new AdapterFormatError(
        `The adapter has weights for layer ${place.layer}, but this model has only ${model.numLayers} layers. ${advice}`,
      );
    }
    const { in: inFeatures, out } = model.shapes(place.target);
    if (A.shape[1] !== inFeatures || B.shape[0] !== out) {
      throw new AdapterFormatError(
        `'${path}' has lora_A [${A.shape.join(', ')}] and lora_B [${B.shape.join(', ')}], but this model needs [${config.r}, ${inFeatures}] and [${out}, ${config.r}]. ${advice}`,
      );
    }
  }
  // webtune adapts the same targets in every layer, so every layer must have them.
  for (const target of config.target_modules) {
    for (let layer = 0; layer < model.numLayers; layer++) {
      if (!modules.has(modulePath(layer, target))) {
        throw new AdapterFormatError(
          `The adapter has no weights for ${modulePath(layer, target)}. webtune needs ${target} adapted in every layer; this adapter covers only some layers or was made for another base model${origin}.`,
        );
      }
    }
  }
}
