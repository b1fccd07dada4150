/**
 * Loading a model in Hugging Face layout from its files: bytes in memory (files a user dropped, a small
 * folder) or sources read a tensor at a time (a folder on disk, the device's cache). Every problem is
 * reported with the file it concerns and what to do.
 */
import { parseModelConfig, type ModelArgs } from './config';
import type { LlamaModel } from './model';
import { readSafetensorsHeader, readTensor, type TensorEntry } from './safetensors';
import { createTokenizer, type Tokenizer } from './tokenizer';
import type { ModelFiles } from './model-files';
import { buildModel, type BuildOptions } from './weights';
import { WEIGHTS_LABEL, type WeightsDecision } from './weights-choice';
import { weightsSources, type WeightsSource } from './weights-source';

export { REQUIRED_FILES, type ModelFiles } from './model-files';

export interface LoadedModel {
  name: string;
  args: ModelArgs;
  model: LlamaModel;
  tokenizer: Tokenizer;
  /** How the frozen weights are held, and why. */
  weights: WeightsDecision;
}

export interface LoadOptions extends BuildOptions {
  /** The format of the frozen weights once the model's shape is known (over `weights`). */
  chooseWeights?: (args: ModelArgs) => WeightsDecision;
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(
      `${file} is not valid JSON (${(error as Error).message}). Use the file exactly as the model repository has it.`,
      { cause: error },
    );
  }
}

export function loadTokenizer(files: Pick<ModelFiles, 'tokenizerJson' | 'tokenizerConfig'>): Tokenizer {
  return createTokenizer({
    tokenizerJson: parseJson(files.tokenizerJson, 'tokenizer.json'),
    tokenizerConfig: parseJson(files.tokenizerConfig, 'tokenizer_config.json') as Record<string, unknown>,
  });
}

/**
 * Builds the model from `files`; `options.maxTensorBytes` splits tensors over the device's buffer limit (see
 * weights.ts), `options.weights` chooses how the frozen weights are held.
 */
export function loadModel(files: ModelFiles, options: LoadOptions = {}): LoadedModel {
  const args = parseModelConfig(parseJson(files.config, 'config.json'));
  const asked = options.weights ?? 'f32';
  const weights = options.chooseWeights?.(args) ?? {
    format: asked,
    reason: `${WEIGHTS_LABEL[asked]}, as loaded`,
  };
  const tokenizer = loadTokenizer(files);
  // Every tensor of every shard by name (a sharded checkpoint splits them across files): headers only.
  const entries = new Map<string, { source: WeightsSource; entry: TensorEntry }>();
  for (const source of weightsSources(files.weights)) {
    for (const entry of readSafetensorsHeader(source).tensors) entries.set(entry.name, { source, entry });
  }
  // Read and convert one tensor at a time, just before it goes to the device: from a file, only that
  // tensor's bytes are in memory, and from bytes, at most one extra copy exists.
  const model = buildModel(
    args,
    (name) => {
      const found = entries.get(name);
      return found
        ? { shape: found.entry.shape, data: readTensor(found.source, found.entry), dtype: found.entry.dtype }
        : undefined;
    },
    { ...options, weights: weights.format },
  );
  return { name: files.name, args, model, tokenizer, weights };
}

/** Token ids that end an answer: config.json's eos_token_id(s) and the tokenizer's EOS. */
export function endTokenIds({ args, tokenizer }: Pick<LoadedModel, 'args' | 'tokenizer'>): number[] {
  return [
    ...new Set([...args.eosTokenIds, ...(tokenizer.eosTokenId !== null ? [tokenizer.eosTokenId] : [])]),
  ];
}
