import path from 'node:path';
import { readAdapterInfo } from '../formats/adapter-info';
import {
  EXPORT_FORMATS,
  ExportError,
  GGUF_DTYPES,
  MERGED_DTYPES,
  writeExport,
  type ExportDtype,
  type ExportFormat,
} from '../formats/export';
import { formatSize } from '../formats/adapter-limits';
import { modelArgsOf } from '../formats/checkpoint-tensors';
import { closeWeights } from '../engine/weights-source';
import { parse, required, type Options } from './args';
import { CliError } from './errors';
import { diskFolder } from './folder-sink';
import { MODEL_SOURCE_HELP, MODEL_SOURCE_OPTIONS, readModel, sourceOptions } from './model-source';
import type { Output } from './output';
import { readAdapter, WEIGHTS_OPTION, weightsSetting } from './session';
import { RUN_FLAGS, RUN_SWITCHES } from './run-settings';
import { trlInput } from './trl-input';

export const EXPORT_HELP = `webtune export --model DIR --format FORMAT --out FOLDER [--adapter ADAPTER.zip] [options] [--json]

Writes the model, with the adapter when given, for another tool. FOLDER is created (or must be empty).
  --format gguf        model.gguf for llama.cpp, Ollama and LM Studio (adapter merged in), adapter.gguf,
                       an Ollama Modelfile and a README
  --format gguf-lora   base.gguf + adapter.gguf (llama-cli --lora, Ollama's ADAPTER), Modelfile, README
  --format merged      a Hugging Face model folder with the adapter merged (transformers, webtune --model)
  --format trl         the dataset and the run's settings as a Hugging Face TRL run for a GPU machine:
                       --data FILE, and train's dataset and run flags (--layout, --sheet,
                       --prompt-column, --template, --prompt-format chat|plain, --lr, --epochs,
                       --val-split, --objective, --beta, …) where the adapter does not remember them
                       (adapters written by webtune train or the page do); a DPO or ORPO run writes
                       its pairs and a trl dpo config (ORPO: orpo_config.yaml and orpo.py)
  --dtype f16|f32|q8_0 GGUF weights (default f16); q8_0 is llama.cpp's 8-bit Q8_0, as llama-quantize makes
                       it: about half the bytes of f16, answers a little less exact (adapter.gguf stays
                       f16); merged: f32, f16 or bf16 (default: the base model's)
  --weights auto|f32|bf16|q8_0|nf4
                       accepted as train takes it, and changes nothing here: the adapter is always
                       merged into the model's original weights, re-read from its files (as QLoRA
                       users merge), whatever width the base was held in while training
${MODEL_SOURCE_HELP}
--json prints {"format","out","files":[{"name","bytes"}]}`;

const OPTIONS: Options = {
  ...Object.fromEntries(
    [
      'model',
      'adapter',
      'format',
      'out',
      'dtype',
      'data',
      'layout',
      'sheet',
      'prompt-column',
      'completion-column',
      'chosen-column',
      'rejected-column',
      'template',
      'prompt-format',
      ...RUN_FLAGS,
    ].map((name) => [name, { type: 'string' as const }]),
  ),
  ...Object.fromEntries(RUN_SWITCHES.map((name) => [name, { type: 'boolean' as const }])),
  ...MODEL_SOURCE_OPTIONS,
  ...WEIGHTS_OPTION,
};

function formatOf(value: string): ExportFormat {
  if (!(EXPORT_FORMATS as readonly string[]).includes(value))
    throw new CliError(`--format must be one of ${EXPORT_FORMATS.join(', ')} (got "${value}").`);
  return value as ExportFormat;
}

function dtypeOf(value: string | undefined, format: ExportFormat): ExportDtype | undefined {
  if (value === undefined) return undefined;
  const allowed: readonly string[] = format === 'merged' ? MERGED_DTYPES : GGUF_DTYPES;
  if (!allowed.includes(value))
    throw new CliError(
      `--dtype for --format ${format} must be ${allowed.slice(0, -1).join(', ')} or ${allowed.at(-1)} (got "${value}").`,
    );
  return value as ExportDtype;
}

export async function exportCommand(argv: string[], out: Output): Promise<void> {
  const values = parse(argv, OPTIONS, 'export');
  if (values.help) return out.help(EXPORT_HELP);
  const modelSource = required(values, 'model', 'export');
  const format = formatOf(required(values, 'format', 'export'));
  const outDir = required(values, 'out', 'export');
  const dtype = dtypeOf(values.dtype as string | undefined, format);
  const adapterFile = values.adapter as string | undefined;
  const weights = weightsSetting(values);
  if (format === 'gguf-lora' && !adapterFile)
    throw new CliError('--format gguf-lora writes an adapter: pass --adapter FILE.zip.');
  const files = await readModel(modelSource, sourceOptions(values, out));
  // The export reads the model's files a tensor at a time; they are closed however it ends.
  try {
    let args;
    try {
      args = modelArgsOf(files);
    } catch (error) {
      throw new CliError(`Could not read ${modelSource}'s config.json: ${(error as Error).message}`);
    }
    const adapter = adapterFile ? readAdapter(adapterFile, args) : undefined;
    const info = readAdapterInfo(adapter?.metadata);
    const name = info?.name || (adapterFile ? path.basename(adapterFile, '.zip') : files.name);
    const trl =
      format === 'trl' ? await trlInput(values, { files, modelSource, adapter, info, name }) : undefined;
    if (weights !== 'auto' && weights !== 'f32')
      out.progress(
        `weights: --weights ${weights} is for training and chat; the export reads ${files.name}'s original ` +
          'weights from its files, as QLoRA users merge',
      );
    const folder = diskFolder(outDir);
    try {
      await writeExport(
        folder,
        format,
        { files, adapter, name, style: info?.promptStyle ?? null, trl },
        { dtype },
      );
    } catch (error) {
      if (error instanceof ExportError) throw new CliError(error.message);
      throw error;
    }
    for (const f of folder.written)
      out.progress(`wrote ${path.join(outDir, f.name)} (${formatSize(f.bytes)})`);
    out.result(
      { format, out: outDir, files: folder.written },
      () => `exported ${name} as ${format} → ${outDir}`,
    );
  } finally {
    closeWeights(files.weights);
  }
}
