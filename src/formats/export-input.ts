/** What an export is made from: the base model's files, an adapter, and how training formatted prompts. */
import type { PromptStyle } from '../data/chat-prompt';
import type { ModelFiles } from '../engine/model-files';
import type { AdapterWeights } from './peft';
import type { TrlBundleInput } from './trl-input';

export const EXPORT_FORMATS = ['gguf', 'gguf-lora', 'merged', 'trl'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ExportInput {
  files: ModelFiles;
  adapter?: AdapterWeights;
  /** The adapter's (or model's) name: file names and READMEs. */
  name: string;
  /** How training formatted prompts (from the adapter's info); null for a base model or a foreign adapter. */
  style: PromptStyle | null;
  /** `trl` only: the dataset as the run split it, and the run's settings. */
  trl?: TrlBundleInput;
}
