/**
 * The library's download buttons: an adapter (or the base model alone) exported for llama.cpp / Ollama,
 * as a merged model or as a TRL run, written as one zip straight to a file the page then downloads.
 */
import type { LoadedModel } from '../engine/load';
import type { ModelFiles } from '../engine/model-files';
import { closeWeights, weightsByteLength } from '../engine/weights-source';
import { objectiveOf, readAdapterInfo } from '../formats/adapter-info';
import { writeExport, type ExportFormat, type ExportInput } from '../formats/export';
import type { AdapterWeights } from '../formats/peft';
import { fileSafe } from '../formats/file-name';
import { zipFolder } from '../formats/zip-stream';
import { detectLayout, validateMapping, type Mapping } from '../data';
import { readDatasetFile } from '../formats/dataset-file';
import { RUN_DEFAULTS, runDefaults } from '../data/defaults';
import { chatTemplateFormat, plainFormat } from '../data/template';
import { parameterCount } from '../engine/config';
import type { LoraTarget } from '../formats/peft';
import { trlExamples, trlPairExamples, type TrlBundleInput } from '../formats/trl';
import { getAdapter } from '../store/adapters';
import { getDataset } from '../store/datasets';
import type { ExportTarget } from './export-target';
import type { ExportProgress, ExportRequest, ExportResult } from './protocol';
import { readFitting } from './library';

const SUFFIX: Record<ExportFormat, string> = {
  gguf: 'gguf',
  'gguf-lora': 'gguf-lora',
  merged: 'merged',
  trl: 'trl',
};

/** About how many bytes the export writes: its tensors at the chosen width (for progress, not a promise). */
function expectedBytes(
  format: ExportFormat,
  files: ModelFiles,
  adapter: AdapterWeights | undefined,
  dtype: ExportRequest['dtype'],
): number | null {
  if (format === 'trl') return null;
  const weights = weightsByteLength(files.weights);
  const adapterBytes = adapter
    ? [...adapter.modules.values()].reduce((sum, m) => sum + (m.A.data.length + m.B.data.length) * 4, 0)
    : 0;
  const config = JSON.parse(files.config) as { torch_dtype?: string };
  const stored = config.torch_dtype === 'float32' ? 4 : 2;
  // GGUF q8_0: 34 bytes for 32 weights (a few matrices of unusual width stay f16).
  const gguf = dtype === 'f32' ? 4 : dtype === 'q8_0' ? 34 / 32 : 2;
  const width = format === 'merged' ? (dtype === 'f32' ? 4 : dtype ? 2 : stored) : gguf;
  return (weights / stored) * width + adapterBytes;
}

export async function exportAdapter(
  loaded: LoadedModel,
  request: ExportRequest,
  openModel: () => Promise<ModelFiles>,
  target: ExportTarget,
  onProgress: (progress: ExportProgress) => void = () => {},
): Promise<ExportResult> {
  let adapter: AdapterWeights | undefined;
  let name = loaded.name;
  let style = null;
  if (request.adapterId !== null) {
    const record = await getAdapter(request.adapterId);
    if (!record) throw new Error('That adapter is no longer saved on this device.');
    adapter = readFitting(loaded, record.zip);
    name = record.name;
    style = record.promptStyle ?? readAdapterInfo(adapter.metadata)?.promptStyle ?? null;
  }
  const trl = request.format === 'trl' ? await trlInput(loaded, request.adapterId, adapter) : undefined;
  const files = await openModel();
  try {
    return await exportFrom({ files, adapter, name, style, trl }, request, target, onProgress);
  } finally {
    // The export read the model's files a tensor at a time: they are released however it ended.
    closeWeights(files.weights);
  }
}

async function exportFrom(
  input: ExportInput,
  request: ExportRequest,
  target: ExportTarget,
  onProgress: (progress: ExportProgress) => void,
): Promise<ExportResult> {
  const { files, adapter, name } = input;
  const stem = `${fileSafe(name)}-${SUFFIX[request.format]}`;
  const file = await target(`${stem}.zip`);
  const total = expectedBytes(request.format, files, adapter, request.dtype);
  let done = 0;
  let reported = 0;
  const counted = {
    async write(chunk: Uint8Array) {
      await file.write(chunk);
      done += chunk.byteLength;
      if (done - reported >= 8e6) {
        reported = done;
        onProgress({ done, total: total === null ? null : Math.max(total, done) });
      }
    },
  };
  try {
    const zip = zipFolder(counted, stem);
    await writeExport(zip, request.format, input, { dtype: request.dtype });
    await zip.end();
    onProgress({ done, total: done });
    return { file: await file.finish(), fileName: `${stem}.zip`, bytes: done };
  } catch (error) {
    await file.discard();
    throw error;
  }
}

const number = (settings: Record<string, unknown>, key: string, fallback: number) =>
  typeof settings[key] === 'number' ? (settings[key] as number) : fallback;

/** A TRL run of the adapter's own training: its dataset from the library, split and formatted as it was. */
async function trlInput(
  loaded: LoadedModel,
  adapterId: string | null,
  adapter: AdapterWeights | undefined,
): Promise<TrlBundleInput> {
  const record = adapterId === null ? undefined : await getAdapter(adapterId);
  if (!record || !adapter)
    throw new Error("A TRL run carries an adapter's training: pick an adapter trained on this page.");
  if (!record.datasetId)
    throw new Error(
      `"${record.name}" was imported, so its dataset is not on this device. Use webtune export --format trl --data FILE with the file it was trained on.`,
    );
  const stored = await getDataset(record.datasetId);
  if (!stored)
    throw new Error(
      `The dataset "${record.datasetName}" that "${record.name}" was trained on is no longer saved on this device. Drop it on the page again, or use webtune export --format trl --data FILE.`,
    );
  // The split the run made, as the adapter stored it; records from before it did: the dataset's mapping and
  // the run's settings.
  const split = record.split;
  const sheet = split?.sheet ?? stored.sheet;
  const { dataset } = await readDatasetFile(stored.bytes, stored.fileName, sheet);
  const mapping =
    split?.mapping ?? (stored.mapping as Mapping | null) ?? detectLayout(dataset.columns, dataset.rows);
  if (!mapping)
    throw new Error(
      `Could not tell which columns of ${stored.fileName} are the prompt and the completion; choose them in step 2 and export again.`,
    );
  validateMapping(mapping, dataset.columns);
  const settings = (record.settings ?? {}) as Record<string, unknown>;
  const wantsChat = split?.useChatTemplate ?? record.promptStyle?.useChatTemplate ?? false;
  const useChat = wantsChat && loaded.tokenizer.chatTemplate !== null;
  const format = useChat ? chatTemplateFormat(loaded.tokenizer) : plainFormat();
  const valSplit = split?.valSplit ?? number(settings, 'valSplit', RUN_DEFAULTS.valSplit);
  const seed = split?.seed ?? number(settings, 'seed', RUN_DEFAULTS.seed);
  // A DPO or ORPO run's pairs go out as TRL's preference rows, split exactly as the run split them.
  const objective = objectiveOf(settings);
  const maxLength = split?.maxLength ?? number(settings, 'maxLength', RUN_DEFAULTS.maxLength);
  const { train, validation } =
    objective.name !== 'sft' && mapping.kind === 'pairs'
      ? trlPairExamples(dataset, mapping, format, loaded.tokenizer, { maxLength, valSplit, seed })
      : trlExamples(dataset, mapping, format, valSplit, seed);
  // What an older record does not hold comes from the defaults the page would use for this dataset and model.
  const defaults = runDefaults({
    trainExamples: train.length,
    tokens: null,
    parameters: parameterCount(loaded.args),
    objective: objective.name,
  });
  const { r, lora_alpha, lora_dropout, target_modules, use_rslora } = adapter.config;
  return {
    model: record.modelName || loaded.name,
    name: record.name,
    datasetName: record.datasetName,
    rows: dataset.rows,
    mapping,
    chatTemplate: format.chat !== null,
    train,
    validation,
    objective,
    settings: {
      learningRate: number(settings, 'learningRate', defaults.learningRate),
      epochs: number(settings, 'epochs', defaults.epochs),
      gradAccum: number(settings, 'gradAccum', defaults.gradAccum),
      warmupSteps: number(settings, 'warmupSteps', defaults.warmupSteps),
      weightDecay: number(settings, 'weightDecay', defaults.weightDecay),
      seed,
      maxGradNorm: defaults.maxGradNorm,
      batchSize: number(settings, 'batchSize', defaults.batchSize),
      maxLength,
      valSplit,
    },
    lora: {
      rank: r,
      alpha: lora_alpha,
      dropout: number(settings, 'dropout', lora_dropout),
      targets: target_modules as LoraTarget[],
      useRslora: use_rslora,
    },
  };
}
