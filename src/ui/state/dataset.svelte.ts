/** The dataset the user dropped, how its columns map to prompt and completion, and what the model will see. */
import { checkDatasetSize } from '../../data/decode';
import type { Mapping } from '../../data';
import { saveDataset, type SavedDataset } from '../../store/saved';
import type { PreparedDataset, PrepareRequest } from '../../worker/protocol';
import { engine } from './engine.svelte';

class DatasetState {
  file = $state<{ name: string; bytes: Uint8Array } | null>(null);
  /** Its id in IndexedDB once saved. */
  id = $state<string | null>(null);
  prepared = $state<PreparedDataset | null>(null);
  mapping = $state<Mapping | null>(null);
  useChatTemplate = $state(true);
  maxLength = $state(256);
  valSplit = $state(0.1);
  error = $state<string | null>(null);
  busy = $state(false);

  async open(file: File): Promise<void> {
    try {
      checkDatasetSize(file.size); // before reading: a huge file must not be loaded at all
    } catch (error) {
      this.error = (error as Error).message;
      return;
    }
    this.file = { name: file.name, bytes: new Uint8Array(await file.arrayBuffer()) };
    this.id = null;
    this.mapping = null;
    await this.refresh();
  }

  /** Opens a dataset stored earlier, with the mapping it was saved with. */
  async reopen(saved: SavedDataset): Promise<void> {
    this.file = { name: saved.name, bytes: saved.bytes };
    this.id = saved.id;
    this.mapping = (saved.mapping as Mapping | null) ?? null;
    await this.refresh();
  }

  /** Reopens a stored dataset with the settings a saved run used. */
  async restore(saved: SavedDataset, prepare: Omit<PrepareRequest, 'bytes'>): Promise<void> {
    this.file = { name: saved.name, bytes: saved.bytes };
    this.id = saved.id;
    this.mapping = prepare.mapping;
    this.useChatTemplate = prepare.useChatTemplate;
    this.maxLength = prepare.maxLength;
    this.valSplit = prepare.valSplit;
    await this.refresh();
  }

  /** Keeps the file and its mapping on the device, so a reload can find them. */
  private async persist(): Promise<void> {
    if (!this.file || !this.mapping) return;
    try {
      this.id = (await saveDataset({ id: this.id ?? undefined, name: this.file.name, bytes: this.file.bytes, mapping: $state.snapshot(this.mapping) })).id;
    } catch (error) {
      this.error = (error as Error).message;
    }
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
      await this.persist();
    } catch (error) {
      this.prepared = null;
      this.error = (error as Error).message;
    } finally {
      this.busy = false;
    }
  }
}

export const dataset = new DatasetState();
