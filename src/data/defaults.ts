/**
 * The one source of a run's default settings, for the CLI, the page, the worker and the TRL export. What
 * depends on the data and the model (epochs, learning rate, rank, alpha, targets) comes from the presets
 * (presets.ts, Balanced unless chosen otherwise); the rest is fixed here.
 */
import { presetSettings, type PresetInput, type PresetName } from './presets';

export const RUN_DEFAULTS = {
  /** Examples per micro-batch. */
  batchSize: 4,
  gradAccum: 1,
  /** Steps whose learning rate rises to the full one. */
  warmupSteps: 2,
  weightDecay: 0,
  maxGradNorm: 1,
  seed: 0,
  /** Tokens per example, BOS and EOS included; longer examples are cut. */
  maxLength: 256,
  /** Tokens a document's window repeats from the one before it, as context (documents.ts). */
  overlap: 32,
  /** Share of the examples held out for validation. */
  valSplit: 0.1,
  dropout: 0.05,
  useRslora: false,
  keep: 'best' as 'best' | 'last',
} as const;

export const DEFAULT_PRESET: PresetName = 'balanced';

/** Every default of a run, the preset's part computed for this dataset and model (unknown parts: null). */
export function runDefaults(input: PresetInput, preset: PresetName = DEFAULT_PRESET) {
  return { ...RUN_DEFAULTS, ...presetSettings(preset, input) };
}
