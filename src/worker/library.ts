/**
 * The adapter library's side of the worker: attach a saved adapter for the chat, import a PEFT zip
 * (made here or by PEFT itself) after checking that it fits the loaded model, and keep an evaluation's
 * figures with the adapter it measured.
 */
import { linearShape } from '../engine/config';
import type { LoadedModel } from '../engine/load';
import { attachAdapterWeights } from '../engine/lora';
import { readAdapterInfo, sanitizeTrainingSplit } from '../formats/adapter-info';
import { checkFiniteWeights } from '../formats/finite-weights';
import { checkAdapterFits, readAdapterZip, type AdapterWeights, type LoraTarget } from '../formats/peft';
import type { EvalReport } from '../data/evaluate';
import {
  getAdapter,
  saveAdapter,
  saveEvaluation,
  type AdapterRecord,
  type AdapterSummary,
  type EvaluationScores,
  type EvaluationSummary,
} from '../store/adapters';
import { zipSync } from 'fflate';
import { CONFIG_FILE, WEIGHTS_FILE } from '../formats/adapter-files';
import { hubSource, type HubAdapterFiles } from '../hub/adapter';
import type { AdapterSlot, TrainedOn } from './adapter-slot';
import type { EvaluationResult } from './protocol';

/** The zip's adapter, refused with a message naming the mismatch when it was made for another model. */
export function readFitting(loaded: LoadedModel, zip: Uint8Array): AdapterWeights {
  // The model bounds what the zip may unpack to (its rank-r LoRA, at most), so a zip bomb is refused unread.
  const model = {
    numLayers: loaded.args.numLayers,
    shapes: (target: LoraTarget) => linearShape(loaded.args, target),
  };
  const weights = readAdapterZip(zip, model);
  checkAdapterFits(weights, model);
  checkFiniteWeights(weights);
  return weights;
}

/** Attaches the saved adapter `id` in place of the current one. */
export async function useSavedAdapter(loaded: LoadedModel, slot: AdapterSlot, id: string): Promise<void> {
  const record = await getAdapter(id);
  if (!record)
    throw new Error(
      'That adapter is no longer saved on this device. Pick another one, or import its zip again.',
    );
  const weights = readFitting(loaded, record.zip);
  slot.put(loaded.model, () => attachAdapterWeights(loaded.model, weights), {
    id,
    name: record.name,
    style: record.promptStyle ?? null,
    trainedOn: trainedOnOf(record),
  });
}

/**
 * The dataset a library adapter was trained on and which rows it held out; null for an imported one, whose
 * dataset this device does not know.
 */
export function trainedOnOf(
  record: Pick<AdapterRecord, 'origin' | 'datasetId' | 'datasetName' | 'split'>,
): TrainedOn | null {
  if (record.origin === 'imported' || !record.datasetId) return null;
  return {
    datasetId: record.datasetId,
    datasetName: record.datasetName,
    split: sanitizeTrainingSplit(record.split),
  };
}

/**
 * Checks an adapter zip against the loaded model and saves it in the library; webtune's own zips keep their
 * details.
 */
export async function importAdapter(
  loaded: LoadedModel,
  bytes: Uint8Array,
  fileName: string,
  source?: string,
): Promise<AdapterSummary> {
  const weights = readFitting(loaded, bytes);
  const info = readAdapterInfo(weights.metadata);
  const { r, lora_alpha, target_modules, base_model_name_or_path } = weights.config;
  return saveAdapter({
    name: fileName.replace(/\.zip$/i, '') || info?.name || 'imported adapter',
    modelName: info?.modelName ?? (base_model_name_or_path || loaded.name),
    datasetId: '',
    datasetName: info?.datasetName ?? '',
    settings: info?.settings ?? { rank: r, alpha: lora_alpha, targets: target_modules },
    trainLoss: info?.trainLoss ?? null,
    valLoss: info?.valLoss ?? null,
    lossHistory: Array.isArray(info?.lossHistory) ? info.lossHistory : [],
    promptStyle: info?.promptStyle ?? null,
    origin: 'imported',
    ...(source ? { source } : {}),
    zip: bytes,
  });
}

/**
 * An adapter downloaded by Hub id: its two files, as the Hub sent them, zipped as the library keeps
 * adapters, then checked and saved exactly as an imported zip is, with where it came from.
 */
export function addHubAdapter(loaded: LoadedModel, files: HubAdapterFiles): Promise<AdapterSummary> {
  const zip = zipSync({ [CONFIG_FILE]: files.configBytes, [WEIGHTS_FILE]: files.weightsBytes });
  return importAdapter(loaded, zip, files.id.split('/')[1], hubSource(files.id, files.revision));
}

const scores = (report: EvalReport): EvaluationScores => ({
  exact_match: report.exact_match,
  token_accuracy: report.token_accuracy,
  label_accuracy: report.classification?.accuracy ?? null,
  loss: report.loss,
});

/** What the library keeps of an evaluation: its figures, not the answers per example (records stay small). */
export function summarizeEvaluation(result: EvaluationResult, evaluatedAt = Date.now()): EvaluationSummary {
  const { split, examples, datasetName, shots, forgetting } = result;
  return {
    evaluatedAt,
    split,
    examples,
    datasetName,
    shots,
    base: scores(result.base),
    fewShot: scores(result.fewShot),
    tuned: scores(result.tuned),
    forgetting,
  };
}

/**
 * Keeps the evaluation's figures with the library adapter it measured. Never throws: the figures are
 * on the page already, so a failure (a full disk) comes back as a warning to show beside them.
 */
export async function keepEvaluation(result: EvaluationResult): Promise<string | null> {
  const { id, name } = result.adapter;
  if (id === null)
    return `These figures are not kept: ${name} is not in the adapter library, and only library adapters keep their evaluation after the page closes.`;
  try {
    await saveEvaluation(id, summarizeEvaluation(result));
    return null;
  } catch (error) {
    return `These figures are shown here but not kept with "${name}" in the library. ${(error as Error).message}`;
  }
}
