/**
 * A merged model: the base model's folder with the adapter folded into its weights (W + scale·B·A), in
 * Hugging Face layout, so transformers, vLLM, llama.cpp's converter and webtune itself load it as an
 * ordinary model that needs no adapter.
 */
import type { PromptStyle } from '../data/chat-prompt';
import { missingOutputLayer, ModelConfigError, parseModelConfig } from '../engine/config';
import type { ModelFiles } from '../engine/model-files';
import type { DType } from '../engine/safetensors';
import { checkpointTensors } from './checkpoint-tensors';
import type { AdapterWeights } from './peft';
import { promptAdvice } from './readme';
import { streamSafetensors } from './safetensors-stream';
import { writeText, type FolderSink } from './sink';

/** `base` keeps each tensor's dtype as the base checkpoint stores it. */
export type MergedDType = 'base' | 'f32' | 'f16' | 'bf16';

const DTYPE: Record<Exclude<MergedDType, 'base'>, DType> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };
const TORCH_DTYPE: Record<DType, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

export interface MergedModelInput {
  files: ModelFiles;
  adapter?: AdapterWeights;
  /** The folder's name in the README. */
  name: string;
  promptStyle?: PromptStyle | null;
}

export const MERGED_WEIGHTS_FILE = 'model.safetensors';

export async function writeMergedModel(
  folder: FolderSink,
  input: MergedModelInput,
  options: { dtype?: MergedDType } = {},
): Promise<void> {
  const choice = options.dtype ?? 'base';
  const tensors = checkpointTensors(input.files, input.adapter);
  const dtypeOf = (name: string): DType =>
    choice === 'base' ? tensors.find((t) => t.name === name)!.dtype : DTYPE[choice];
  const config = JSON.parse(input.files.config) as Record<string, unknown>;
  // The folder is read as config.json says: an untied model without lm_head.weight would get a random one.
  const outputProblem = missingOutputLayer(parseModelConfig(config), (name) =>
    tensors.some((t) => t.name === name),
  );
  if (outputProblem) throw new ModelConfigError(outputProblem);
  // torch_dtype says how the weights are stored; with mixed dtypes, the linears' (the bulk) decides.
  const main = tensors.find((t) => t.name.endsWith('q_proj.weight')) ?? tensors[0];
  config.torch_dtype = TORCH_DTYPE[dtypeOf(main.name)];
  await writeText(folder, 'config.json', JSON.stringify(config, null, 2) + '\n');
  await writeText(folder, 'tokenizer.json', input.files.tokenizerJson);
  await writeText(folder, 'tokenizer_config.json', input.files.tokenizerConfig);
  const weights = await folder.file(MERGED_WEIGHTS_FILE);
  // transformers refuses safetensors whose metadata lacks format: "pt".
  await streamSafetensors(weights, tensors, (t) => dtypeOf(t.name), { format: 'pt' });
  await weights.close();
  await writeText(folder, 'README.md', mergedReadme(input, config.torch_dtype as string));
}

function mergedReadme({ name, adapter, files, promptStyle }: MergedModelInput, torchDtype: string): string {
  const base = adapter?.config.base_model_name_or_path || files.name;
  const what = adapter
    ? `\`${base}\` with a LoRA adapter trained in webtune (rank ${adapter.config.r}, alpha ${adapter.config.lora_alpha}, on ${adapter.config.target_modules.join(', ')}) merged into its weights`
    : `\`${base}\`, unchanged`;
  return `# ${name}

${what}, as an ordinary Hugging Face model folder (${torchDtype} weights in ${MERGED_WEIGHTS_FILE}). It needs no
adapter and no PEFT.

## Use it

\`\`\`python
from transformers import AutoModelForCausalLM, AutoTokenizer
model = AutoModelForCausalLM.from_pretrained("path/to/${name}")
tokenizer = AutoTokenizer.from_pretrained("path/to/${name}")
\`\`\`

With webtune: \`webtune generate --model path/to/${name} --prompt "…"\`, or pick the folder's files with "Load model
from files" on the page. For llama.cpp or Ollama, export with \`webtune export --format gguf\` instead.

${adapter ? promptAdvice(promptStyle) : ''}
`;
}
