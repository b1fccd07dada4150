/** What an export is made from: the base model's files, an adapter, and how training formatted prompts. */
import type { PromptStyle } from '../data/chat-prompt';
import type { ModelFiles } from '../engine/model-files';
import type { AdapterWeights } from './peft';
import type { TrlBundleInput } from './trl-input';

export const EXPORT_FORMATS = ['gguf', 'gguf-lora', 'merged', 'trl'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** What --dtype may say: GGUF takes f16 (default), f32 or q8_0; merged the base's dtype, f32, f16 or bf16. */
export type ExportDtype = 'f32' | 'f16' | 'bf16' | 'q8_0';
export const GGUF_DTYPES = ['f16', 'f32', 'q8_0'] as const;
export const MERGED_DTYPES = ['f32', 'f16', 'bf16'] as const;

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
