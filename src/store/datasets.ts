/**
 * The datasets a person dropped: the original file's bytes (in `datasetFiles`) and a small summary
 * (in `datasets`) with the mapping chosen for it. Lists read summaries only.
 */
import { newId, read, write, type DatasetRecord, type DatasetSummary } from './db';

export type { DatasetRecord, DatasetSummary };

export type NewDataset = Omit<DatasetRecord, 'id' | 'createdAt' | 'updatedAt'> & { id?: string };

const sameBytes = (a: Uint8Array, b: Uint8Array) =>
  a.byteLength === b.byteLength && a.every((value, i) => value === b[i]);

/**
 * Saves a dataset and returns its summary. With an `id`, that record is updated; without one, the same
 * file dropped again (same file name and bytes) updates its earlier record, keeping the name the person
 * gave it, instead of storing a second copy.
 */
export async function saveDataset(dataset: NewDataset): Promise<DatasetSummary> {
  const { bytes, id: requestedId, ...fields } = dataset;
  return write(`save the dataset "${dataset.name}"`, ['datasets', 'datasetFiles'], async (tx) => {
    const summaries = tx.objectStore('datasets');
    let earlier = requestedId === undefined ? undefined : await summaries.get(requestedId);
    if (requestedId === undefined) {
      // Only files of the same name and size are candidates, so at most a few byte arrays are read.
      const candidates = (await summaries.getAll()).filter(
        (d) => d.fileName === fields.fileName && d.byteLength === bytes.byteLength,
      );
      for (const candidate of candidates) {
        const file = await tx.objectStore('datasetFiles').get(candidate.id);
        if (file && sameBytes(file.bytes, bytes)) earlier = candidate;
      }
    }
    const now = Date.now();
    const summary: DatasetSummary = {
      ...fields,
      name: requestedId === undefined && earlier ? earlier.name : fields.name,
      id: earlier?.id ?? requestedId ?? newId(),
      createdAt: earlier?.createdAt ?? now,
      updatedAt: now,
      byteLength: bytes.byteLength,
    };
    await summaries.put(summary);
    await tx.objectStore('datasetFiles').put({ id: summary.id, bytes });
    return summary;
  });
}

/** Summaries of every saved dataset, the most recently saved first. */
export async function listDatasets(): Promise<DatasetSummary[]> {
  const summaries = await read('list your saved datasets', ['datasets'], (tx) =>
    tx.objectStore('datasets').index('by-updated').getAll(),
  );
  return summaries.reverse();
}

/** The dataset with its file's bytes, or undefined when it is not (or no longer) saved. */
export async function getDataset(id: string): Promise<DatasetRecord | undefined> {
  return read('open the saved dataset', ['datasets', 'datasetFiles'], async (tx) => {
    const summary = await tx.objectStore('datasets').get(id);
    const file = await tx.objectStore('datasetFiles').get(id);
    if (!summary || !file) return undefined;
    const { byteLength: _byteLength, ...fields } = summary;
    return { ...fields, bytes: file.bytes };
  });
}

/**
 * Keeps a new column mapping (and, for a workbook, the sheet it maps) for a saved dataset: only its summary
 * is written, the file's bytes stay as they are. Returns the updated summary (undefined when not saved).
 */
export async function updateDatasetMapping(
  id: string,
  mapping: unknown,
  sheet?: string | null,
): Promise<DatasetSummary | undefined> {
  return write('save the column mapping of the dataset', ['datasets'], async (tx) => {
    const summary = await tx.objectStore('datasets').get(id);
    if (!summary) return undefined;
    const updated = { ...summary, mapping, ...(sheet !== undefined && { sheet }), updatedAt: Date.now() };
    await tx.objectStore('datasets').put(updated);
    return updated;
  });
}

/** Gives a saved dataset a new name; returns its updated summary (undefined when it is not saved). */
export async function renameDataset(id: string, name: string): Promise<DatasetSummary | undefined> {
  return write(`rename the dataset to "${name}"`, ['datasets'], async (tx) => {
    const summary = await tx.objectStore('datasets').get(id);
    if (!summary) return undefined;
    const renamed = { ...summary, name, updatedAt: Date.now() };
    await tx.objectStore('datasets').put(renamed);
    return renamed;
  });
}

/** Deletes the dataset and its file together. */
export async function deleteDataset(id: string): Promise<void> {
  await write('delete the dataset', ['datasets', 'datasetFiles'], async (tx) => {
    await tx.objectStore('datasets').delete(id);
    await tx.objectStore('datasetFiles').delete(id);
  });
}
