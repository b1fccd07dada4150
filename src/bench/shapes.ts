/**
 * The bench's models in real shapes: the catalog's config.json fields as published (src/hub/catalog.ts),
 * with random weights (nothing can be downloaded here).
 */
import { parseModelConfig, type ModelArgs } from '../engine/config';
import type { LlamaModel } from '../engine/model';
import { createRng } from '../engine/random';
import { buildModel, type BuildOptions } from '../engine/weights';
import { catalogConfig } from '../hub/catalog';

const SMOLLM2_135M = catalogConfig('HuggingFaceTB/SmolLM2-135M-Instruct');
const QWEN25_05B = catalogConfig('Qwen/Qwen2.5-0.5B-Instruct');

/** Models in real shapes with random weights; the 4-layer SmolLM2 keeps earlier figures comparable. */
export const SHAPES: Record<string, object> = {
  'smollm2-135m-4l': { ...SMOLLM2_135M, num_hidden_layers: 4, max_position_embeddings: 2048 },
  'smollm2-135m': SMOLLM2_135M,
  'qwen2.5-0.5b': QWEN25_05B,
  // Qwen2.5-0.5B at batch 4 × 256 outgrows the 4 GiB wasm heap; 4 of its layers show the rest of its peak.
  'qwen2.5-0.5b-4l': { ...QWEN25_05B, num_hidden_layers: 4 },
  // The 1.5–1.7B models fit a wasm heap only with packed weights (`--weights q8_0` or `nf4`).
  'qwen2.5-1.5b': catalogConfig('Qwen/Qwen2.5-1.5B-Instruct'),
  'smollm2-1.7b': catalogConfig('HuggingFaceTB/SmolLM2-1.7B-Instruct'),
  'qwen3-1.7b': catalogConfig('Qwen/Qwen3-1.7B'),
  'gemma3-270m': catalogConfig('google/gemma-3-270m-it'),
  'gemma3-1b': catalogConfig('google/gemma-3-1b-it'),
};

/**
 * A model of `args` with random weights, made one checkpoint tensor at a time: buildModel packs or uploads
 * each before asking for the next, so a 1.5B model never has a float32 copy of the whole on the host (the
 * largest array at once is the vocabulary matrix, 0.9 GB for Qwen's).
 */
export function randomModel(args: ModelArgs, seed: number, options: BuildOptions = {}): LlamaModel {
  const rng = createRng(seed);
  return buildModel(
    args,
    (name, shape) => {
      const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
      // Norms weigh 1: Gemma's store w for 1 + w.
      if (name.endsWith('norm.weight')) data.fill(args.normKind === 'one-plus-weight' ? 0 : 1);
      else for (let i = 0; i < data.length; i++) data[i] = (rng.next() - 0.5) * 0.04;
      return { shape, data };
    },
    options,
  );
}

/** A model of one of SHAPES, with random weights. */
export function shapedModel(name: string, options: BuildOptions = {}): LlamaModel {
  const config = SHAPES[name];
  if (!config) throw new Error(`Unknown model shape "${name}"; known: ${Object.keys(SHAPES).join(', ')}.`);
  return randomModel(parseModelConfig(config), 1, options);
}
