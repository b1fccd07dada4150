/**
 * How large a PEFT adapter can honestly be, for a model or without one: the bounds an adapter zip and its
 * files are checked against before anything is unpacked, so a zip bomb costs no more than they allow.
 */
import { LORA_TARGETS, type AdapterConfig, type LoraTarget } from '../engine/adapter-weights';
import { AdapterFormatError, CONFIG_FILE, WEIGHTS_FILE, ZIP_ADVICE } from './adapter-files';

/** The model an adapter is read for: its layer count and the [in, out] of each linear LoRA can adapt. */
export interface AdapterModel {
  numLayers: number;
  shapes: (target: LoraTarget) => { in: number; out: number };
}

/** The largest adapter_config.json read (PEFT's are about 1 KB). */
export const MAX_CONFIG_BYTES = 1_000_000;
/**
 * Room in adapter_model.safetensors beyond its f32 tensors: the header's keys and shapes, and webtune's
 * metadata (prompt format, and a loss curve of one point per step: 100,000 points, where the library
 * stops reading them, take about 9 MB as webtune writes them), so adapters of long runs still import.
 */
const WEIGHTS_HEADER_SLACK = 16_000_000;
/** Room in the zip beyond the config and the weights: a README and the zip's own headers. */
const ZIP_SLACK = 1_000_000;
/**
 * Where no model is known (a generic read, as in tests): the cap on adapter_model.safetensors. 256 MB holds
 * a rank-64 adapter on every linear of Qwen3-0.6B (162 MB), the largest model in the page's catalog.
 * Wherever a model is loaded (the page, the CLI) the bound comes from the model and the config's rank.
 */
export const GENERIC_MAX_WEIGHTS_BYTES = 256_000_000;

/** A size as people read it: 3.2 MB, 4.3 GB. */
export function formatSize(bytes: number): string {
  if (bytes < 1000) return `${bytes} bytes`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/**
 * The highest rank that means anything for this model: a LoRA pair of rank min(in, out) is already full rank.
 */
export function maxAdapterRank(model: AdapterModel): number {
  return Math.max(
    ...LORA_TARGETS.map((target) => {
      const s = model.shapes(target);
      return Math.min(s.in, s.out);
    }),
  );
}

/**
 * The most adapter_model.safetensors can hold for a rank-r adapter of this model: every linear of every
 * layer, in f32.
 */
export function maxAdapterWeightsBytes(model: AdapterModel, r: number): number {
  const perRank = LORA_TARGETS.reduce((sum, target) => {
    const s = model.shapes(target);
    return sum + s.in + s.out;
  }, 0);
  return model.numLayers * perRank * r * 4 + WEIGHTS_HEADER_SLACK;
}

/**
 * The largest adapter zip worth reading: a full-rank adapter for the model (or the generic cap), its config
 * and a README.
 */
export function maxAdapterZipBytes(model?: AdapterModel): number {
  const weights = model ? maxAdapterWeightsBytes(model, maxAdapterRank(model)) : GENERIC_MAX_WEIGHTS_BYTES;
  return MAX_CONFIG_BYTES + weights + ZIP_SLACK;
}

/**
 * Refuses an adapter zip too large to be one, before it is read (from its size on disk or the File's size).
 */
export function checkAdapterZipSize(size: number, model?: AdapterModel): void {
  const limit = maxAdapterZipBytes(model);
  if (size > limit) {
    const which = model ? 'an adapter zip for this model, even at full rank,' : 'an adapter zip';
    throw new AdapterFormatError(
      `The file is ${formatSize(size)}, but ${which} is at most ${formatSize(limit)}, so it is not a LoRA adapter; pick the zip that webtune or PEFT wrote.`,
    );
  }
}

/**
 * Refuses adapter_model.safetensors of `size` bytes when a LoRA of the config's rank for `model` could not
 * need that much (or, with no model, when it passes the generic cap), and a rank wider than the model.
 */
export function checkAdapterWeightsSize(
  size: number,
  settings: Pick<AdapterConfig, 'r' | 'base_model_name_or_path'>,
  model?: AdapterModel,
  claim = `${WEIGHTS_FILE} is`,
): void {
  let limit = GENERIC_MAX_WEIGHTS_BYTES;
  let forWhat = 'an adapter';
  let advice = ZIP_ADVICE;
  if (model) {
    const origin = settings.base_model_name_or_path
      ? ` (it was trained on ${settings.base_model_name_or_path})`
      : '';
    // An adapter for a larger model is too big for this one as well: the advice covers both.
    advice = `This is not a webtune or PEFT adapter for this model${origin}; load it with the model it was trained on, or export it again.`;
    const highest = maxAdapterRank(model);
    if (settings.r > highest) {
      throw new AdapterFormatError(
        `${CONFIG_FILE} gives rank ${settings.r}, but this model's linears are at most ${highest} wide, so no LoRA adapter for it has a higher rank; the adapter was made for a different base model${origin}, so load it with the model it was trained on.`,
      );
    }
    limit = maxAdapterWeightsBytes(model, settings.r);
    forWhat = `a rank-${settings.r} adapter for this model`;
  }
  if (size > limit) {
    throw new AdapterFormatError(
      `${claim} ${formatSize(size)}, but ${forWhat} needs at most ${formatSize(limit)}. ${advice}`,
    );
  }
}
