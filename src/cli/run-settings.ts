/**
 * A run's settings from the command line: each from its flag, else the default every part of webtune
 * shares (data/defaults.ts), the data- and model-dependent ones from the chosen preset (--preset, Balanced
 * unless given) once the dataset and the model are known. `train` and `export --format trl` read them.
 */
import { RUN_DEFAULTS, runDefaults } from '../data/defaults';
import { PRESET_NAMES, type PresetInput, type PresetName } from '../data/presets';
import { LORA_TARGETS, type LoraTarget } from '../engine/adapter-weights';
import type { LoraSettings } from '../engine/lora';
import type { ObjectiveName } from '../engine/objective';
import { DEFAULT_DPO_BETA, DEFAULT_ORPO_LAMBDA } from '../engine/preference';
import type { Mapping } from '../data/dataset';
import type { TrainSettings } from '../engine/train';
import { list, number, type Values } from './args';
import { CliError } from './errors';

/** The flags that set the run (LoRA, optimiser, data split); export --format trl takes them too. */
export const RUN_FLAGS = [
  'preset',
  'rank',
  'alpha',
  'dropout',
  'targets',
  'lr',
  'epochs',
  'batch-size',
  'grad-accum',
  'max-length',
  'warmup',
  'weight-decay',
  'val-split',
  'seed',
  'eval-every',
  'patience',
  'keep',
  'objective',
  'beta',
] as const;
/** On/off flags of a run. */
export const RUN_SWITCHES = ['rslora'] as const;

export const RUN_HELP = `Presets: --preset quick|balanced|thorough (default balanced) sets epochs, learning rate, rank,
           alpha and targets from the dataset's and the model's size, as the page does; flags override it
LoRA:      --rank R  --alpha A (default 2×rank)  --dropout ${RUN_DEFAULTS.dropout}  --targets q_proj,v_proj,…
           (any of ${LORA_TARGETS.join(',')})  --rslora  scale by alpha/√rank (rsLoRA)
Training:  --lr  --epochs  --batch-size ${RUN_DEFAULTS.batchSize}  --grad-accum ${RUN_DEFAULTS.gradAccum}  --max-length ${RUN_DEFAULTS.maxLength}  --warmup ${RUN_DEFAULTS.warmupSteps}
           --weight-decay ${RUN_DEFAULTS.weightDecay}  --val-split ${RUN_DEFAULTS.valSplit} (0 = train on every row)  --seed ${RUN_DEFAULTS.seed}
Objective: --objective sft|dpo|orpo  sft learns the answers; dpo and orpo learn which of two answers is
           better (default: dpo for a pairs dataset, else sft; a tenth of SFT's learning rate)
           --beta B  DPO's β (how far it may move from the base model) or ORPO's λ, default ${DEFAULT_DPO_BETA}`;

export function presetChoice(values: Values): PresetName {
  const value = (values.preset as string | undefined) ?? 'balanced';
  if (!(PRESET_NAMES as readonly string[]).includes(value))
    throw new CliError(`--preset must be one of ${PRESET_NAMES.join(', ')} (got "${value}").`);
  return value as PresetName;
}

/**
 * LoRA's settings; `known` is what the preset looks at (nulls while the dataset or model is not read yet).
 */
export function loraSettings(values: Values, known: PresetInput): LoraSettings {
  const targets = list(values, 'targets');
  const unknown = targets.filter((t) => !(LORA_TARGETS as readonly string[]).includes(t));
  if (unknown.length)
    throw new CliError(`Unknown --targets ${unknown.join(', ')}. Choose from ${LORA_TARGETS.join(', ')}.`);
  const preset = runDefaults(known, presetChoice(values));
  const rank = number(values, 'rank', preset.rank, { min: 1, integer: true });
  return {
    rank,
    // Twice the rank, as the presets keep it, so a changed rank keeps the adapter's scale.
    alpha: number(values, 'alpha', 2 * rank, { min: 0 }),
    dropout: number(values, 'dropout', RUN_DEFAULTS.dropout, { min: 0, max: 0.9 }),
    targets: (targets.length ? targets : preset.targets) as LoraTarget[],
    useRslora: values.rslora === true || values.rslora === 'true',
  };
}

/** The data side of a run: sequence length, batch size and the held-out fraction. */
export function dataSettings(values: Values): { maxLength: number; batchSize: number; valSplit: number } {
  return {
    maxLength: number(values, 'max-length', RUN_DEFAULTS.maxLength, { min: 8, integer: true }),
    batchSize: number(values, 'batch-size', RUN_DEFAULTS.batchSize, { min: 1, integer: true }),
    valSplit: number(values, 'val-split', RUN_DEFAULTS.valSplit, { min: 0, max: 0.9 }),
  };
}

function keepChoice(value: string | undefined): 'best' | 'last' {
  if (value === undefined || value === 'best' || value === 'last') return value ?? RUN_DEFAULTS.keep;
  throw new CliError(`--keep must be best or last (got "${value}").`);
}

export function trainSettings(values: Values, known: PresetInput): TrainSettings {
  const preset = runDefaults(known, presetChoice(values));
  return {
    learningRate: number(values, 'lr', preset.learningRate, { min: 0 }),
    epochs: number(values, 'epochs', preset.epochs, { min: 1, integer: true }),
    gradAccum: number(values, 'grad-accum', RUN_DEFAULTS.gradAccum, { min: 1, integer: true }),
    warmupSteps: number(values, 'warmup', RUN_DEFAULTS.warmupSteps, { min: 0, integer: true }),
    maxGradNorm: RUN_DEFAULTS.maxGradNorm,
    weightDecay: number(values, 'weight-decay', RUN_DEFAULTS.weightDecay, { min: 0 }),
    seed: number(values, 'seed', RUN_DEFAULTS.seed, { integer: true }),
    evalEvery:
      values['eval-every'] === undefined
        ? undefined
        : number(values, 'eval-every', 0, { min: 1, integer: true }),
    patience:
      values.patience === undefined ? undefined : number(values, 'patience', 0, { min: 1, integer: true }),
    keep: keepChoice(values.keep as string | undefined),
  };
}

/** Nothing known yet: for checking the flags before anything is loaded. */
export const UNKNOWN: PresetInput = { trainExamples: null, tokens: null, parameters: null };

const OBJECTIVES: readonly ObjectiveName[] = ['sft', 'dpo', 'orpo'];

/** --objective as given (checked), or null: the data decides (see runObjective). */
export function objectiveFlag(values: Values): ObjectiveName | null {
  const raw = values.objective as string | undefined;
  if (raw === undefined) return null;
  if (!(OBJECTIVES as readonly string[]).includes(raw))
    throw new CliError(`--objective must be sft, dpo or orpo (got "${raw}").`);
  return raw as ObjectiveName;
}

/**
 * What the run minimises and with what strength: --objective, else DPO for a pairs dataset and SFT for any
 * other; `chosen` says whether the data chose it. --beta is checked against the objective: above 0 for DPO,
 * 0 or more for ORPO, refused for SFT.
 */
export function runObjective(
  values: Values,
  mapping: Mapping,
): { objective: ObjectiveName; beta?: number; chosen: boolean } {
  const given = objectiveFlag(values);
  const objective = given ?? (mapping.kind === 'pairs' ? 'dpo' : 'sft');
  if (objective === 'sft') {
    if (values.beta !== undefined)
      throw new CliError(
        `--beta sets DPO's β or ORPO's λ, and this run trains with SFT${given ? '' : ' (the file holds single answers)'}. Drop --beta, or train a pairs dataset with --objective dpo or orpo.`,
      );
    return { objective, chosen: given === null };
  }
  const fallback = objective === 'dpo' ? DEFAULT_DPO_BETA : DEFAULT_ORPO_LAMBDA;
  const raw = values.beta;
  const beta = raw === undefined ? fallback : Number(raw);
  if (objective === 'dpo' && !(beta > 0))
    throw new CliError(
      `--beta must be above 0 for DPO (got "${String(raw)}"): β weighs the preference against staying near the base model. ${DEFAULT_DPO_BETA} is the usual value.`,
    );
  if (objective === 'orpo' && !(beta >= 0))
    throw new CliError(
      `--beta (ORPO's λ) must be 0 or more (got "${String(raw)}"): it weighs the odds-ratio term against the chosen answers' likelihood. ${DEFAULT_ORPO_LAMBDA} is the usual value.`,
    );
  return { objective, beta, chosen: given === null };
}
