/**
 * `webtune export` and the page's download buttons: one adapter (or none) on one base model, written in
 * the format another tool reads, file by file into a FolderSink.
 *
 *   gguf       model.gguf (the adapter merged in), adapter.gguf, an Ollama Modelfile and a README
 *   gguf-lora  base.gguf and adapter.gguf (llama-cli --lora, Ollama's ADAPTER), Modelfile, README
 *   merged     a Hugging Face model folder with the adapter merged into its weights
 *   trl        the dataset and settings as a Hugging Face TRL run for a GPU machine
 */
import { defaultStopStrings } from '../data/chat-prompt';
import { chatTemplateFormat, plainFormat } from '../data/template';
import { loadTokenizer } from '../engine/load';
import { checkpointTensors } from './checkpoint-tensors';
import type { ExportDtype, ExportFormat, ExportInput } from './export-input';
import { ggufReadme } from './export-readme';
import { writeLoraGguf, writeModelGguf, type GgufDtype } from './gguf-model';
import { writeMergedModel, type MergedDType } from './merged-model';
import { ollamaModelfile } from './modelfile';
import { writeText, type FolderSink } from './sink';
import { writeTrlBundle } from './trl';

export {
  EXPORT_FORMATS,
  GGUF_DTYPES,
  MERGED_DTYPES,
  type ExportDtype,
  type ExportFormat,
  type ExportInput,
} from './export-input';

export class ExportError extends Error {
  override name = 'ExportError';
}

export interface ExportOptions {
  dtype?: ExportDtype;
}

export const MODEL_GGUF = 'model.gguf';
export const BASE_GGUF = 'base.gguf';
export const ADAPTER_GGUF = 'adapter.gguf';

/** How an exported GGUF is prompted (chat template or not) and what ends an answer. */
function promptSetup(input: ExportInput) {
  const tokenizer = loadTokenizer(input.files);
  const useChat = input.style
    ? input.style.useChatTemplate && tokenizer.chatTemplate !== null
    : tokenizer.chatTemplate !== null;
  const format = useChat ? chatTemplateFormat(tokenizer) : null;
  const bosText =
    tokenizer.bosTokenId !== null
      ? tokenizer.decode([tokenizer.bosTokenId], { skipSpecialTokens: false })
      : null;
  return {
    chat: format?.chat ? format.chat.render : null,
    stops: format ? defaultStopStrings(format) : [],
    bosText,
  };
}

function ggufDtype(options: ExportOptions): GgufDtype {
  if (options.dtype === 'bf16')
    throw new ExportError('GGUF exports are f16, f32 or q8_0; bf16 is for --format merged.');
  return options.dtype ?? 'f16';
}

export async function writeExport(
  folder: FolderSink,
  format: ExportFormat,
  input: ExportInput,
  options: ExportOptions = {},
): Promise<void> {
  if (format === 'gguf-lora' && !input.adapter)
    throw new ExportError('--format gguf-lora needs an adapter (--adapter FILE.zip).');
  if (format === 'merged' && options.dtype === 'q8_0')
    throw new ExportError('A merged model is f32, f16 or bf16; q8_0 is for --format gguf and gguf-lora.');
  if (format === 'merged')
    return writeMergedModel(
      folder,
      { files: input.files, adapter: input.adapter, name: input.name, promptStyle: input.style },
      { dtype: (options.dtype ?? 'base') as MergedDType },
    );
  if (format === 'trl') {
    if (!input.trl)
      throw new ExportError(
        '--format trl carries a dataset: pass --data FILE (and the dataset flags train used).',
      );
    await writeTrlBundle(folder, input.trl);
    return;
  }
  const dtype = ggufDtype(options);
  const setup = promptSetup(input);
  const lora = format === 'gguf-lora';
  const modelFile = lora ? BASE_GGUF : MODEL_GGUF;
  const model = await folder.file(modelFile);
  // gguf-lora's base is the base model; gguf's model has the adapter merged in.
  await writeModelGguf(
    model,
    {
      name: input.name,
      files: input.files,
      tensors: checkpointTensors(input.files, lora ? undefined : input.adapter),
    },
    { dtype },
  );
  await model.close();
  if (input.adapter) {
    const adapter = await folder.file(ADAPTER_GGUF);
    await writeLoraGguf(adapter, { name: input.name, files: input.files, adapter: input.adapter }, { dtype });
    await adapter.close();
  }
  const modelfile = ollamaModelfile({
    from: `./${modelFile}`,
    adapter: lora ? `./${ADAPTER_GGUF}` : undefined,
    style: input.style,
    chat: setup.chat,
    bosText: setup.bosText,
    separator: plainFormat().separator,
    stops: setup.stops,
  });
  await writeText(folder, 'Modelfile', modelfile.text);
  await writeText(
    folder,
    'README.md',
    ggufReadme({ ...input, format, dtype, templateWritten: modelfile.template !== null }),
  );
}
