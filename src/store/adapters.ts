/**
 * Finished adapters: the zip to download (in `adapterZips`) beside a small summary (in `adapters`)
 * with what it was trained on and how well. Lists read summaries only.
 */
import { sanitizeAdapterInfo } from '../formats/adapter-info';
import {
  newId,
  read,
  write,
  type AdapterRecord,
  type AdapterSummary,
  type EvaluationScores,
  type EvaluationSummary,
} from './db';

export type { AdapterRecord, AdapterSummary, EvaluationScores, EvaluationSummary };

export type NewAdapter = Omit<AdapterRecord, 'id' | 'createdAt'>;

/** Saves a finished adapter under a new id and returns its summary. */
export async function saveAdapter(adapter: NewAdapter): Promise<AdapterSummary> {
  const { zip, ...fields } = adapter;
  const summary: AdapterSummary = {
    ...fields,
    id: newId(),
    createdAt: Date.now(),
    byteLength: zip.byteLength,
  };
  return write(`save the adapter "${adapter.name}"`, ['adapters', 'adapterZips'], async (tx) => {
    await tx.objectStore('adapters').put(summary);
    await tx.objectStore('adapterZips').put({ id: summary.id, zip });
    return summary;
  });
}

/** Summaries of every saved adapter, the newest first. */
export async function listAdapters(): Promise<AdapterSummary[]> {
  const summaries = await read('list your saved adapters', ['adapters'], (tx) =>
    tx.objectStore('adapters').index('by-created').getAll(),
  );
  return summaries.reverse().map(wellFormed);
}

/**
 * A stored summary as the page can show it: records written by older versions or imported before
 * their details were checked may hold odd values, which are replaced by empty ones instead of
 * breaking the library.
 */
function wellFormed(summary: AdapterSummary): AdapterSummary {
  const info = sanitizeAdapterInfo(summary) ?? {};
  return {
    ...summary,
    name: info.name ?? 'adapter',
    modelName: info.modelName ?? '',
    datasetName: info.datasetName ?? '',
    settings: info.settings ?? {},
    trainLoss: info.trainLoss ?? null,
    valLoss: info.valLoss ?? null,
    lossHistory: info.lossHistory ?? [],
    promptStyle: info.promptStyle ?? null,
    evaluation: wellFormedEvaluation(summary.evaluation),
  };
}

const isNumber = (v: unknown): v is number => typeof v === 'number';
const isScores = (v: unknown): v is EvaluationScores => {
  const s = v as Partial<EvaluationScores> | null;
  return (
    typeof s === 'object' &&
    s !== null &&
    isNumber(s.exact_match) &&
    isNumber(s.token_accuracy) &&
    isNumber(s.loss) &&
    (s.label_accuracy === null || isNumber(s.label_accuracy))
  );
};

/**
 * The stored evaluation when every figure the library shows is there; otherwise none (never a broken line).
 */
function wellFormedEvaluation(raw: unknown): EvaluationSummary | undefined {
  const e = raw as Partial<EvaluationSummary> | null | undefined;
  if (typeof e !== 'object' || e === null) return undefined;
  const ok =
    isNumber(e.evaluatedAt) &&
    (e.split === 'validation' || e.split === 'all') &&
    isNumber(e.examples) &&
    (e.datasetName === undefined || typeof e.datasetName === 'string') &&
    isNumber(e.shots) &&
    isScores(e.base) &&
    isScores(e.fewShot) &&
    isScores(e.tuned);
  return ok ? (e as EvaluationSummary) : undefined;
}

/** The adapter with its zip, or undefined when it is not (or no longer) saved. */
export async function getAdapter(id: string): Promise<AdapterRecord | undefined> {
  return read('open the saved adapter', ['adapters', 'adapterZips'], async (tx) => {
    const summary = await tx.objectStore('adapters').get(id);
    const file = await tx.objectStore('adapterZips').get(id);
    if (!summary || !file) return undefined;
    const { byteLength: _byteLength, ...fields } = summary;
    return { ...fields, zip: file.zip };
  });
}

/** Gives a saved adapter a new name; returns its updated summary (undefined when it is not saved). */
export async function renameAdapter(id: string, name: string): Promise<AdapterSummary | undefined> {
  return write(`rename the adapter to "${name}"`, ['adapters'], async (tx) => {
    const summary = await tx.objectStore('adapters').get(id);
    if (!summary) return undefined;
    const renamed = { ...summary, name };
    await tx.objectStore('adapters').put(renamed);
    return renamed;
  });
}

/**
 * Keeps `evaluation` with the saved adapter `id`, in place of any earlier one; returns its updated
 * summary (undefined when it is no longer saved). The zip is not touched.
 */
export async function saveEvaluation(
  id: string,
  evaluation: EvaluationSummary,
): Promise<AdapterSummary | undefined> {
  return write('keep the evaluation with its adapter', ['adapters'], async (tx) => {
    const summary = await tx.objectStore('adapters').get(id);
    if (!summary) return undefined;
    const evaluated = { ...summary, evaluation };
    await tx.objectStore('adapters').put(evaluated);
    return evaluated;
  });
}

/** Deletes the adapter and its zip together. */
export async function deleteAdapter(id: string): Promise<void> {
  await write('delete the adapter', ['adapters', 'adapterZips'], async (tx) => {
    await tx.objectStore('adapters').delete(id);
    await tx.objectStore('adapterZips').delete(id);
  });
}
