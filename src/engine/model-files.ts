/**
 * The files of a model folder in Hugging Face layout: the small ones as text, the weights as bytes in memory
 * or as sources read a tensor at a time (weights-source.ts). No other dependencies: the page imports this.
 */
import type { WeightsFile } from './weights-source';

export type { WeightsFile, WeightsSource } from './weights-source';

export const REQUIRED_FILES = [
  'config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'model.safetensors',
] as const;

export interface ModelFiles {
  /** A name to show and to record as base_model_name_or_path. */
  name: string;
  config: string;
  tokenizerJson: string;
  tokenizerConfig: string;
  /**
   * model.safetensors, or the shards model.safetensors.index.json lists. Whoever opened a source closes it
   * (closeWeights) once the model is built or the export written.
   */
  weights: WeightsFile | WeightsFile[];
}
