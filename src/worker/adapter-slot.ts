/**
 * The one LoRA adapter attached to the loaded model: the run being trained, or the library adapter the
 * chat uses. Switching it off (`enabled = false`) gives the base model back, so both chat panes share
 * one copy of the weights.
 */
import type { PromptStyle } from '../data/chat-prompt';
import type { TrainingSplit } from '../formats/adapter-info';
import { detachLora, type LoraAdapter } from '../engine/lora';
import type { LlamaModel } from '../engine/model';

export interface AttachedInfo {
  /** Its id in the adapter library; null until a training run has been saved there. */
  id: string | null;
  name: string;
  /** How its training formatted prompts; null when nobody said (an adapter made by PEFT). */
  style: PromptStyle | null;
  /** The dataset it was trained on here; null when this device does not know (an imported adapter). */
  trainedOn: TrainedOn | null;
}

export interface TrainedOn {
  /** The stored dataset's id on this device: the same id is the same file. */
  datasetId: string;
  datasetName: string;
  /** Which of its rows the run held out; null for an adapter saved before webtune kept it. */
  split: TrainingSplit | null;
}

export class AdapterSlot {
  adapter: LoraAdapter | null = null;
  info: AttachedInfo | null = null;

  /**
   * Attaches `adapter` (already wrapped around `model`'s linears by attachLora) in place of the current one.
   */
  put(model: LlamaModel, attach: () => LoraAdapter, info: AttachedInfo): LoraAdapter {
    this.clear(model);
    this.adapter = attach();
    this.info = info;
    return this.adapter;
  }

  /** Puts the base linears back and frees the adapter. */
  clear(model: LlamaModel): void {
    if (this.adapter) detachLora(model, this.adapter);
    this.adapter = null;
    this.info = null;
  }

  /** The model itself is going away: free the adapter's tensors only. */
  drop(): void {
    this.adapter?.dispose();
    this.adapter = null;
    this.info = null;
  }
}
