/**
 * The files of a model folder in Hugging Face layout, as bytes in memory. No dependencies: the page imports
 * this.
 */
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
  /** model.safetensors, or the shards model.safetensors.index.json lists. */
  weights: Uint8Array | Uint8Array[];
}
