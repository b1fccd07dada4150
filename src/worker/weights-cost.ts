/**
 * What the loaded model's narrower base weights cost on a text against its 32-bit weights (the Evaluate
 * step's General text): the base without its adapter, next-token distributions compared position by position.
 */
import { parameterCount } from '../engine/config';
import { loadModel, type LoadedModel } from '../engine/load';
import type { ModelFiles } from '../engine/model-files';
import { closeWeights } from '../engine/weights-source';
import { disposeModel } from '../engine/model';
import { nextTokenDistributions, quantizationCost } from '../engine/quant-cost';
import type { AdapterSlot } from './adapter-slot';
import type { WeightsCost } from './protocol';

/** A 32-bit copy of the model is loaded beside the packed one only up to this size (wasm's heap is 4 GiB). */
const WIDE_COMPARISON_LIMIT = 2 ** 30;

/**
 * `reopen` opens the model's files again; the model is loaded from them in 32 bits (the files are closed
 * once it is built), and freed before this returns.
 */
export async function measureWeightsCost(
  current: LoadedModel,
  slot: AdapterSlot,
  text: string,
  reopen: () => Promise<{ files: ModelFiles; maxTensorBytes: number | undefined }>,
): Promise<WeightsCost> {
  const format = current.weights.format;
  if (format === 'f32') throw new Error('The base weights are 32-bit already: there is nothing to compare.');
  const wideBytes = parameterCount(current.args) * 4;
  if (wideBytes > WIDE_COMPARISON_LIMIT)
    throw new Error(
      `The 32-bit model needs ${(wideBytes / 2 ** 30).toFixed(1)} GB, more than this tab can hold beside the one loaded. Measure it on a computer with \`webtune score --weights ${format}\`.`,
    );
  const tokens = current.tokenizer.encode(text);
  const adapter = slot.adapter;
  const enabled = adapter?.enabled ?? false;
  if (adapter) adapter.enabled = false;
  let narrow: Float32Array[];
  try {
    narrow = await nextTokenDistributions(current.model, tokens);
  } finally {
    if (adapter) adapter.enabled = enabled;
  }
  const { files, maxTensorBytes } = await reopen();
  let wide: LoadedModel;
  try {
    wide = loadModel(files, { weights: 'f32', maxTensorBytes });
  } finally {
    closeWeights(files.weights);
  }
  try {
    return { format, ...quantizationCost(await nextTokenDistributions(wide.model, tokens), narrow, tokens) };
  } finally {
    disposeModel(wide.model);
  }
}
