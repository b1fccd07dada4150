/**
 * The three presets of the Train step ("Quick try", "Balanced", "Thorough"): epochs, learning rate, rank,
 * alpha and LoRA targets chosen from the size of the dataset and of the model, so a person who has never
 * fine-tuned a model gets settings that work on the first try. Pure and DOM-free: tests/presets.test.ts
 * checks each rule.
 */
import { LORA_TARGETS, type LoraTarget } from '../engine/adapter-weights';
import type { ObjectiveName } from '../engine/objective';

export type PresetName = 'quick' | 'balanced' | 'thorough';

export const PRESET_NAMES: readonly PresetName[] = ['quick', 'balanced', 'thorough'];

/** What each preset is called on the page and what it trades, in one sentence. */
export const PRESETS: Record<PresetName, { label: string; trade: string }> = {
  quick: {
    label: 'Quick try',
    trade:
      'A few passes over your examples with a small adapter: done soonest, to see whether the idea works at all.',
  },
  balanced: {
    label: 'Balanced',
    trade: 'Enough passes and a medium adapter to learn most tasks well, in a moderate time.',
  },
  thorough: {
    label: 'Thorough',
    trade:
      'A larger adapter on every part of each layer and more passes: learns the most, takes the longest and the most memory.',
  },
};

/** What the presets look at; null when not known yet (no dataset prepared, no model loaded). */
export interface PresetInput {
  /** Examples in the training split (what one epoch goes through). */
  trainExamples: number | null;
  /** Tokens over all examples, after truncation. */
  tokens: number | null;
  /** The loaded model's parameter count. */
  parameters: number | null;
  /** What the run minimises (default SFT); for DPO and ORPO `trainExamples` counts pairs. */
  objective?: ObjectiveName;
}

/** The settings a preset sets; every other knob stays as it is. */
export interface PresetSettings {
  epochs: number;
  learningRate: number;
  rank: number;
  alpha: number;
  targets: LoraTarget[];
}

/**
 * Epochs for Balanced, from the number of training examples. A tiny dataset is seen many times, or the
 * adapter has barely moved when training ends (a few dozen examples take only a handful of steps per
 * epoch); a large one teaches enough in a few passes, and more passes only memorise it.
 */
function balancedEpochs(examples: number): number {
  if (examples < 50) return 10;
  if (examples < 200) return 6;
  if (examples < 1000) return 3;
  return 2;
}

/**
 * Epochs for each preset: Quick try makes about a third of Balanced's passes (at least one), Thorough
 * twice as many. A very large dataset (over half a million tokens) needs no second pass for a quick try,
 * and caps Thorough at 3 passes: each one already takes long and sees plenty of text.
 */
function epochsFor(preset: PresetName, input: PresetInput): number {
  // Before the dataset is known: plan for a small one (what most first tries are).
  const examples = input.trainExamples ?? 100;
  const balanced = balancedEpochs(examples);
  const large = (input.tokens ?? 0) > 500_000;
  if (preset === 'quick') return large ? 1 : Math.max(1, Math.round(balanced / 3));
  if (preset === 'thorough') return large ? Math.min(3, balanced * 2) : balanced * 2;
  return balanced;
}

/**
 * Balanced's learning rate, from the model's size. Small models (a few million parameters, the toy models
 * used to try webtune) need large steps to move at all; a larger model's adapter moves its outputs more per
 * step, and too large a step makes the loss jump or become "not a number". The values are the usual ones
 * for LoRA at these sizes (2e-4 is the common choice for models of a billion parameters and more).
 */
function balancedLearningRate(parameters: number): number {
  if (parameters < 10e6) return 5e-3;
  if (parameters < 200e6) return 1e-3;
  if (parameters < 1e9) return 5e-4;
  return 2e-4;
}

/**
 * Quick try takes twice Balanced's steps (few epochs must still move the adapter), Thorough two thirds of
 * them (more epochs and a larger adapter: calmer steps keep it from overshooting late in the run).
 */
const LEARNING_RATE_FACTOR: Record<PresetName, number> = { quick: 2, balanced: 1, thorough: 2 / 3 };

/**
 * Where the adapter goes and how large it is: Quick try puts a rank-8 adapter on the query and value
 * projections only (the original LoRA paper's choice, the smallest that learns a style); Balanced on all
 * four attention projections; Thorough a rank-16 one on all seven linears of every layer (attention and
 * MLP), which learns the most and costs the most memory and time. Alpha is twice the rank in all three,
 * so the adapter's scale (alpha / rank) stays the same and the learning rates above keep their meaning.
 */
const SHAPES: Record<PresetName, { rank: number; targets: LoraTarget[] }> = {
  quick: { rank: 8, targets: ['q_proj', 'v_proj'] },
  balanced: { rank: 8, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] },
  thorough: { rank: 16, targets: [...LORA_TARGETS] },
};

/**
 * Preference runs (DPO, ORPO) take a tenth of SFT's learning rate. DPO's gradient pushes the two answers'
 * log-probabilities apart; at SFT's step sizes the adapter soon drifts far from the reference, and the
 * chosen answers' own log-probability falls with the rejected ones' (the known failure of a too-fast DPO).
 * TRL's defaults say the same: 1e-6 for DPO against SFT's 2e-5 in full fine-tuning; LoRA needs about ten
 * times either, and the published LoRA DPO recipes use 5e-6 to 5e-5 for 1–7B models, a tenth to a fortieth
 * of the usual 2e-4 for LoRA SFT at those sizes.
 */
const PREFERENCE_FACTOR = 0.1;

/** Rounds to two significant digits, so the page shows 0.00033 and not 0.0003333333. */
function tidy(x: number): number {
  return Number(x.toPrecision(2));
}

export function presetSettings(preset: PresetName, input: PresetInput): PresetSettings {
  // Before a model is loaded: plan for a toy-sized one, which is what the page loads first.
  const factor = (input.objective ?? 'sft') === 'sft' ? 1 : PREFERENCE_FACTOR;
  const learningRate = tidy(
    balancedLearningRate(input.parameters ?? 1e6) * LEARNING_RATE_FACTOR[preset] * factor,
  );
  const { rank, targets } = SHAPES[preset];
  return { epochs: epochsFor(preset, input), learningRate, rank, alpha: 2 * rank, targets: [...targets] };
}

/** Whether `settings` are exactly what `preset` sets (targets in any order): else the page shows "Custom". */
export function matchesPreset(
  settings: Omit<PresetSettings, 'targets'> & { targets: readonly string[] },
  preset: PresetSettings,
): boolean {
  const sameTargets =
    settings.targets.length === preset.targets.length &&
    preset.targets.every((t) => settings.targets.includes(t));
  return (
    settings.epochs === preset.epochs &&
    settings.learningRate === preset.learningRate &&
    settings.rank === preset.rank &&
    settings.alpha === preset.alpha &&
    sameTargets
  );
}
