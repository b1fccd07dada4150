/**
 * What webtune knows about an adapter beyond its weights — how prompts were formatted, what it was
 * trained on and how well — carried in the safetensors header under one key, so a downloaded zip
 * imported again (on another device, after clearing storage) chats and lists exactly as before.
 * PEFT ignores header metadata, so the file stays a plain PEFT adapter.
 */
import type { PromptStyle } from '../data/chat-prompt';

export const INFO_KEY = 'webtune';

export interface AdapterInfo {
  name: string;
  modelName: string;
  datasetName: string;
  promptStyle: PromptStyle | null;
  settings: unknown;
  trainLoss: number | null;
  valLoss: number | null;
  lossHistory: { step: number; loss: number; valLoss?: number }[];
}

export function infoMetadata(info: AdapterInfo): Record<string, string> {
  return { [INFO_KEY]: JSON.stringify(info) };
}

/** The info webtune wrote, or null for an adapter from elsewhere (or one whose info does not parse). */
export function readAdapterInfo(metadata: Record<string, string> | undefined): Partial<AdapterInfo> | null {
  const text = metadata?.[INFO_KEY];
  if (!text) return null;
  try {
    const info = JSON.parse(text) as unknown;
    return typeof info === 'object' && info !== null && !Array.isArray(info) ? (info as Partial<AdapterInfo>) : null;
  } catch {
    return null;
  }
}
