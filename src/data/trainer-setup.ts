/**
 * A run's settings made into a trainer, in one place for the CLI, the page's worker and its estimate:
 * targets in the model's own order, defaults from data/defaults.ts, the recomputation of layers decided
 * from the memory estimate at the length of the longest batch, a PEFT-initialised adapter, and AdamW.
 */
import { LORA_TARGETS } from '../engine/adapter-weights';
import type { ModelArgs } from '../engine/config';
import { attachLora, peftInit, type LoraAdapter, type LoraSettings } from '../engine/lora';
import {
  estimateTrainingMemory,
  resolveRecompute,
  type MemoryEstimate,
  type RecomputeChoice,
} from '../engine/memory';
import type { LlamaModel } from '../engine/model';
import type { ObjectiveName } from '../engine/objective';
import { objectiveNamed } from '../engine/preference';
import { Trainer, TrainingError, type TrainingData, type TrainSettings } from '../engine/train';
import type { WeightsDecision } from '../engine/weights-choice';
import { RUN_DEFAULTS } from './defaults';

/** Everything a run is set up from; what is left out takes RUN_DEFAULTS. */
export interface RunSettings {
  rank: number;
  alpha: number;
  dropout: number;
  targets: readonly string[];
  useRslora?: boolean;
  learningRate: number;
  epochs: number;
  batchSize: number;
  gradAccum: number;
  warmupSteps: number;
  seed: number;
  weightDecay?: number;
  maxGradNorm?: number;
  /** 'auto' (or absent): the memory estimate decides. */
  recompute?: RecomputeChoice;
  evalEvery?: number;
  patience?: number;
  keep?: 'best' | 'last';
  /** What a step minimises (default 'sft'); 'dpo' and 'orpo' train on batches of answer pairs. */
  objective?: ObjectiveName;
  /** DPO's β or ORPO's λ (default 0.1 for both). */
  beta?: number;
}

export interface TrainerSetup {
  trainer: Trainer;
  adapter: LoraAdapter;
  lora: LoraSettings;
  /** Whether layers are recomputed in the backward pass, and the memory estimate that decided it. */
  recompute: boolean;
  memory: MemoryEstimate;
  /** The longest batch's length, which the memory estimate assumed. */
  longest: number;
}

/** LoRA's part of the settings, targets in the model's order however they were listed. */
export function loraSettingsOf(settings: RunSettings): LoraSettings {
  return {
    rank: settings.rank,
    alpha: settings.alpha,
    dropout: settings.dropout,
    targets: LORA_TARGETS.filter((t) => settings.targets.includes(t)),
    useRslora: settings.useRslora ?? RUN_DEFAULTS.useRslora,
  };
}

/** The optimiser's and the loop's part of the settings. */
export function trainSettingsOf(settings: RunSettings, recompute: boolean): TrainSettings {
  return {
    learningRate: settings.learningRate,
    epochs: settings.epochs,
    gradAccum: settings.gradAccum,
    warmupSteps: settings.warmupSteps,
    maxGradNorm: settings.maxGradNorm ?? RUN_DEFAULTS.maxGradNorm,
    weightDecay: settings.weightDecay ?? RUN_DEFAULTS.weightDecay,
    seed: settings.seed,
    recompute,
    evalEvery: settings.evalEvery,
    patience: settings.patience,
    keep: settings.keep,
  };
}

/**
 * Attaches a fresh adapter to `model` (through `attach`, which the worker routes through its adapter slot)
 * and builds the trainer for `data`. Data with nothing to train on is refused before anything is attached.
 */
export function setUpTrainer(
  model: { model: LlamaModel; args: ModelArgs; name: string; weights?: WeightsDecision },
  data: TrainingData,
  settings: RunSettings,
  attach: (lora: LoraSettings, make: () => LoraAdapter) => LoraAdapter = (_lora, make) => make(),
): TrainerSetup {
  const batches = data.epochBatches(0);
  if (batches.length === 0)
    throw new TrainingError('There is nothing to train on: the training split has no examples.');
  const lora = loraSettingsOf(settings);
  const objective = objectiveNamed(settings.objective ?? 'sft', settings.beta);
  // Batches are as long as their longest example: the memory estimate uses that length.
  const longest = Math.max(...batches.map((b) => b.seqLength));
  const forMemory = {
    rank: lora.rank,
    targets: lora.targets,
    // A batch of pairs holds each prompt twice, with its chosen and with its rejected answer.
    batchSize: objective.grouping === 'sequence' ? 2 * settings.batchSize : settings.batchSize,
    maxLength: longest,
    weights: model.weights?.format,
  };
  const recompute = resolveRecompute(settings.recompute ?? 'auto', model.args, forMemory);
  const memory = estimateTrainingMemory(model.args, { ...forMemory, recompute });
  const adapter = attach(lora, () => attachLora(model.model, lora, peftInit(settings.seed), model.name));
  const trainer = new Trainer(model.model, adapter, data, trainSettingsOf(settings, recompute), objective);
  return { trainer, adapter, lora, recompute, memory, longest };
}
