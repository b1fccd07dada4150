/** Saving, listing and deleting what webtune keeps on the device. */
import { newId, openStore, write, type SavedAdapter, type SavedDataset, type SavedRun } from './database';

export type { SavedAdapter, SavedDataset, SavedRun };

const newestFirst = <T extends { savedAt: number }>(items: T[]) => items.sort((a, b) => b.savedAt - a.savedAt);

/** Saves a dataset; the same file dropped again (same name and bytes) updates its earlier record. */
export async function saveDataset(dataset: Omit<SavedDataset, 'id' | 'savedAt'> & { id?: string }): Promise<SavedDataset> {
  const id = dataset.id ?? (await findSameFile(dataset.name, dataset.bytes))?.id ?? newId();
  const record = { ...dataset, id, savedAt: Date.now() };
  await write(`the dataset "${dataset.name}"`, async () => (await openStore()).put('datasets', record));
  return record;
}

async function findSameFile(name: string, bytes: Uint8Array): Promise<SavedDataset | undefined> {
  const same = (a: Uint8Array, b: Uint8Array) => a.byteLength === b.byteLength && a.every((v, i) => v === b[i]);
  return (await (await openStore()).getAll('datasets')).find((d) => d.name === name && same(d.bytes, bytes));
}

export async function listDatasets(): Promise<SavedDataset[]> {
  return newestFirst(await (await openStore()).getAll('datasets'));
}

export async function getDataset(id: string): Promise<SavedDataset | undefined> {
  return (await openStore()).get('datasets', id);
}

export async function deleteDataset(id: string): Promise<void> {
  await (await openStore()).delete('datasets', id);
}

/** Replaces the run's checkpoint with a newer one (one transaction: the old one stays if this fails). */
export async function saveRun(run: SavedRun): Promise<void> {
  await write('the training checkpoint', async () => (await openStore()).put('runs', run));
}

/** The most recently saved unfinished run, to offer "Resume training" after a reload. */
export async function latestRun(): Promise<SavedRun | undefined> {
  return newestFirst(await (await openStore()).getAll('runs'))[0];
}

export async function getRun(id: string): Promise<SavedRun | undefined> {
  return (await openStore()).get('runs', id);
}

export async function deleteRun(id: string): Promise<void> {
  await (await openStore()).delete('runs', id);
}

export async function saveAdapter(adapter: Omit<SavedAdapter, 'id' | 'savedAt'>): Promise<SavedAdapter> {
  const record = { ...adapter, id: newId(), savedAt: Date.now() };
  await write(`the adapter "${adapter.name}"`, async () => (await openStore()).put('adapters', record));
  return record;
}

export async function listAdapters(): Promise<SavedAdapter[]> {
  return newestFirst(await (await openStore()).getAll('adapters'));
}
