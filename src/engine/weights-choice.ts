/**
 * How wide the frozen base is held when the person leaves it to webtune ('auto'): the widest format whose
 * training run, by the memory estimate, fits what a browser tab can count on — 32-bit, then 16-bit, then
 * 8-bit (q8_0), then 4-bit (nf4). Wider is exact or closer to the checkpoint; narrower is what lets a 1.5B
 * model train in a tab at all. On wasm the run's tensors must also fit WebAssembly's 4 GiB heap (packed
 * weights live outside it).
 */
import type { ModelArgs } from './config';
import {
  estimateTrainingMemory,
  WASM_MEMORY_LIMIT,
  wasmHeapNeed,
  type MemoryEstimate,
  type TrainingSettingsForMemory,
} from './memory';
import type { WeightFormat } from './quant';

export type WeightsSetting = WeightFormat | 'auto';

/** The formats a person can choose, widest first; 'bf16' stands for 16 bits (an f16 checkpoint keeps f16). */
export const WEIGHT_CHOICES = ['f32', 'bf16', 'q8_0', 'nf4'] as const satisfies readonly WeightFormat[];

/** A run like the presets' first (LoRA r8 on q_proj, v_proj, 1 × 256 tokens): 'auto' sizes for it. */
export const NOMINAL_RUN: TrainingSettingsForMemory = {
  rank: 8,
  targets: ['q_proj', 'v_proj'],
  batchSize: 1,
  maxLength: 256,
};

/** What a tab can count on for a run: most laptops give one a few GB, and the page needs its share. */
export const TAB_MEMORY_BUDGET = 3 * 2 ** 30;

/** How each format is called on the page and in messages. */
export const WEIGHTS_LABEL: Readonly<Record<WeightFormat, string>> = {
  f32: '32-bit',
  bf16: '16-bit',
  f16: '16-bit',
  q8_0: '8-bit (q8_0)',
  nf4: '4-bit (nf4)',
};

/** The page's names for each setting of Base weights. */
export const WEIGHTS_SETTING_LABEL: Readonly<Record<WeightsSetting, string>> = {
  auto: 'automatically chosen',
  f32: '32-bit',
  bf16: '16-bit',
  f16: '16-bit',
  q8_0: '8-bit',
  nf4: '4-bit',
};

/** Bytes the tab holds for a run: every tensor, packed weights and XNNPACK's copies on wasm. */
export function tabMemoryNeed(estimate: MemoryEstimate, backend: string): number {
  return estimate.total + (backend === 'wasm' ? estimate.wasmPacked : 0);
}

export interface WeightsDecision {
  format: WeightFormat;
  /** Why, in a sentence the model panel and the CLI show. */
  reason: string;
}

const gb = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GB`;

/**
 * The format for `setting` on `backend` for a run like `run`: the one asked for, or for 'auto' the widest
 * that fits the budget.
 */
export function chooseWeights(
  setting: WeightsSetting,
  args: ModelArgs,
  run: TrainingSettingsForMemory,
  backend: string,
  budget = TAB_MEMORY_BUDGET,
): WeightsDecision {
  if (setting !== 'auto') return { format: setting, reason: `${WEIGHTS_LABEL[setting]}, as chosen` };
  const needs: string[] = [];
  const shape = `${run.batchSize} × ${run.maxLength} tokens`;
  for (const format of WEIGHT_CHOICES) {
    const estimate = estimateTrainingMemory(args, { ...run, weights: format });
    const tab = tabMemoryNeed(estimate, backend);
    const heapFits = backend !== 'wasm' || wasmHeapNeed(estimate) <= WASM_MEMORY_LIMIT;
    if (tab <= budget && heapFits)
      return {
        format,
        reason:
          needs.length === 0
            ? `${WEIGHTS_LABEL[format]}: training on ${shape} needs about ${gb(tab)}, within the ${gb(budget)} a tab can count on`
            : `${WEIGHTS_LABEL[format]}: training on ${shape}, ${needs.join(' and ')}, past the ${gb(budget)} a tab can count on; ${WEIGHTS_LABEL[format]} needs about ${gb(tab)}`,
      };
    needs.push(
      `${WEIGHTS_LABEL[format]} would need about ${gb(heapFits ? tab : wasmHeapNeed(estimate))}${heapFits ? '' : ' of WebAssembly memory'}`,
    );
  }
  return {
    format: 'nf4',
    reason: `${WEIGHTS_LABEL.nf4}, the narrowest: even so training on ${shape} needs about ${gb(tabMemoryNeed(estimateTrainingMemory(args, { ...run, weights: 'nf4' }), backend))}, more than the ${gb(budget)} a tab can count on`,
  };
}
