/** The dataset the user dropped, how its columns map to prompt and completion, and what the model will see. */
import type { Mapping } from '../../data';
import type { PreparedDataset } from '../../worker/protocol';
import { engine } from './engine.svelte';

class DatasetState {
  file = $state<{ name: string; bytes: Uint8Array } | null>(null);
  prepared = $state<PreparedDataset | null>(null);
  mapping = $state<Mapping | null>(null);
  useChatTemplate = $state(true);
  maxLength = $state(256);
  valSplit = $state(0.1);
  error = $state<string | null>(null);
  busy = $state(false);

  async open(file: File): Promise<void> {
    this.file = { name: file.name, bytes: new Uint8Array(await file.arrayBuffer()) };
    this.mapping = null;
    await this.refresh();
  }

  async refresh(): Promise<void> {
    if (!this.file || !engine.client || !engine.model) return;
    this.error = null;
    this.busy = true;
    try {
      this.prepared = await engine.client.request('prepareData', {
        bytes: this.file.bytes,
        fileName: this.file.name,
        mapping: this.mapping ? $state.snapshot(this.mapping) : null,
        useChatTemplate: this.useChatTemplate && engine.model.hasChatTemplate,
        maxLength: this.maxLength,
        valSplit: this.valSplit,
        seed: 0,
      });
      this.mapping = this.prepared.mapping;
    } catch (error) {
      this.prepared = null;
      this.error = (error as Error).message;
    } finally {
      this.busy = false;
    }
  }
}

export const dataset = new DatasetState();
