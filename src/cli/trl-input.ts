/**
 * What `webtune export --format trl` carries: the dataset split exactly as the run split it and the run's
 * settings — each from a flag, else from what the adapter remembers of its run, else train's defaults.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { AdapterInfo } from '../formats/adapter-info';
import { trlExamples, type TrlBundleInput } from '../formats/trl';
import { loadTokenizer } from '../engine/load';
import type { ModelFiles } from '../engine/model-files';
import { isHubId } from '../hub/resolve';
import type { AdapterWeights } from '../formats/peft';
import type { Values } from './args';
import { chooseMapping, promptFormat, readDataset, type FormatChoice } from './dataset-args';
import { CliError } from './errors';
import { dataSettings, loraSettings, trainSettings, UNKNOWN } from './run-settings';
import { parameterCount } from '../engine/config';
import { modelArgsOf } from '../formats/checkpoint-tensors';

/** The adapter's remembered settings as the flags that would have set them. */
function flagsFromInfo(settings: unknown): Values {
  const s = (settings ?? {}) as Record<string, unknown>;
  const flags: Values = {};
  const map: [string, string][] = [
    ['rank', 'rank'],
    ['alpha', 'alpha'],
    ['dropout', 'dropout'],
    ['learningRate', 'lr'],
    ['epochs', 'epochs'],
    ['batchSize', 'batch-size'],
    ['gradAccum', 'grad-accum'],
    ['warmupSteps', 'warmup'],
    ['weightDecay', 'weight-decay'],
    ['seed', 'seed'],
    ['maxLength', 'max-length'],
    ['valSplit', 'val-split'],
  ];
  for (const [key, flag] of map) if (typeof s[key] === 'number') flags[flag] = String(s[key]);
  if (Array.isArray(s.targets)) flags.targets = s.targets.join(',');
  return flags;
}

export async function trlInput(
  values: Values,
  options: {
    files: ModelFiles;
    modelSource: string;
    adapter?: AdapterWeights;
    info: Partial<AdapterInfo> | null;
    name: string;
  },
): Promise<TrlBundleInput> {
  const dataFile = values.data as string | undefined;
  if (!dataFile)
    throw new CliError(
      '--format trl carries the dataset to the GPU machine: pass --data FILE (the file the adapter was trained on).',
    );
  const { files, adapter, info } = options;
  const run = {
    ...flagsFromInfo(info?.settings),
    ...Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)),
  };
  const { maxLength, batchSize, valSplit } = dataSettings(run);
  const seed = trainSettings(run, UNKNOWN).seed;
  const sheet = (values.sheet as string | undefined) ?? info?.split?.sheet;
  const { dataset } = await readDataset(dataFile, sheet);
  const { mapping } = chooseMapping(values, dataset);
  const flag = values['prompt-format'] as string | undefined;
  if (flag !== undefined && !['chat', 'plain'].includes(flag))
    throw new CliError(`--prompt-format must be chat or plain (got "${flag}").`);
  const remembered = info?.promptStyle ? (info.promptStyle.useChatTemplate ? 'chat' : 'plain') : 'auto';
  const format = promptFormat((flag ?? remembered) as FormatChoice, loadTokenizer(files), files.name);
  const { train, validation } = trlExamples(dataset, mapping, format, valSplit, seed);
  // What the run did not remember comes from the preset for this dataset and model, as train would choose it.
  const known = { trainExamples: train.length, tokens: null, parameters: parameterCount(modelArgsOf(files)) };
  const lora = loraSettings(run, known);
  if (adapter)
    Object.assign(lora, {
      rank: adapter.config.r,
      alpha: adapter.config.lora_alpha,
      targets: adapter.config.target_modules,
      useRslora: adapter.config.use_rslora,
    });
  const settings = trainSettings(run, known);
  // The GPU machine downloads the model by its Hub id; a local folder's own id is in the adapter's config.
  const base = adapter?.config.base_model_name_or_path ?? '';
  const local = fs.existsSync(options.modelSource);
  const model = !local ? options.modelSource : isHubId(base) ? base : options.modelSource;
  return {
    model,
    name: options.name,
    datasetName: path.basename(dataFile),
    rows: dataset.rows,
    mapping,
    chatTemplate: format.chat !== null,
    train,
    validation,
    settings: { ...settings, batchSize, maxLength, valSplit },
    lora,
  };
}
