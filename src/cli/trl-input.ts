/**
 * What `webtune export --format trl` carries: the dataset split exactly as the run split it and the run's
 * settings — each from a flag, else from what the adapter remembers of its run, else train's defaults.
 */
import fs from 'node:fs';
import path from 'node:path';
import { checkObjectiveFits } from '../data/pair-set';
import { objectiveOf, type AdapterInfo, type RunObjective } from '../formats/adapter-info';
import { trlExamples, trlPairExamples, type TrlBundleInput } from '../formats/trl';
import { loadTokenizer } from '../engine/load';
import type { ModelFiles } from '../engine/model-files';
import { isHubId } from '../hub/resolve';
import type { AdapterWeights } from '../formats/peft';
import type { Values } from './args';
import { chooseMapping, promptFormat, readDataset, type FormatChoice } from './dataset-args';
import { CliError } from './errors';
import { dataSettings, loraSettings, runObjective, trainSettings, UNKNOWN } from './run-settings';
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
  // The objective as the run named it (an adapter without it was trained with SFT).
  const objective = objectiveOf(settings);
  flags.objective = objective.name;
  if (objective.beta !== undefined) flags.beta = String(objective.beta);
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
  // --objective given without --beta takes that objective's default, not the β the adapter's run had.
  const remembered =
    values.objective !== undefined && values.beta === undefined ? { ...run, beta: undefined } : run;
  const { objective, beta } = runObjective(remembered, mapping);
  checkObjectiveFits(objective, mapping);
  const runObjectiveInfo: RunObjective = objective === 'sft' ? { name: 'sft' } : { name: objective, beta };
  const flag = values['prompt-format'] as string | undefined;
  if (flag !== undefined && !['chat', 'plain'].includes(flag))
    throw new CliError(`--prompt-format must be chat or plain (got "${flag}").`);
  const rememberedFormat = info?.promptStyle ? (info.promptStyle.useChatTemplate ? 'chat' : 'plain') : 'auto';
  const tokenizer = loadTokenizer(files);
  const format = promptFormat((flag ?? rememberedFormat) as FormatChoice, tokenizer, files.name);
  // A preference run's pairs are split as training split them, which leaves out pairs the max length cuts.
  const { train, validation } =
    objective !== 'sft' && mapping.kind === 'pairs'
      ? trlPairExamples(dataset, mapping, format, tokenizer, { maxLength, valSplit, seed })
      : trlExamples(dataset, mapping, format, valSplit, seed);
  // What the run did not remember comes from the preset for this dataset and model, as train would choose it.
  const known = {
    trainExamples: train.length,
    tokens: null,
    parameters: parameterCount(modelArgsOf(files)),
    objective,
  };
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
    objective: runObjectiveInfo,
  };
}
