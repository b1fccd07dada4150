/**
 * The `trl` export: a folder a person copies to a GPU machine and runs, unchanged, with Hugging Face TRL
 * (`trl sft --config sft_config.yaml`) to do the same run there — the same model, the same examples split
 * the same way, the same LoRA and optimiser settings — and then scale it up (more epochs, a bigger model,
 * several GPUs).
 *
 *   data/train.jsonl, data/validation.jsonl   the examples webtune trained on, in TRL's layouts
 *   sft_config.yaml                           TRL's SFTConfig + ModelConfig + ScriptArguments in one file
 *   accelerate/deepspeed_zero3.yaml           accelerate configs for several GPUs
 *   accelerate/fsdp.yaml
 *   README.md                                 how to run it and bring the adapter back
 *
 * How the examples map onto TRL (checked against TRL 1.x's SFTTrainer):
 * - Plain text: `{"prompt": prompt + separator, "completion": completion}`. TRL tokenises prompt and
 *   prompt + completion (special tokens on, so BOS as webtune's encoder adds it), trains on the tokens past
 *   the prompt's (`completion_only_loss`), and appends the tokenizer's EOS text to the completion itself
 *   (its `add_eos` step, skipped when the completion already ends with it), as webtune's encoder does.
 * - Through the chat template: conversational prompt/completion (`"prompt": [messages], "completion":
 *   [{"role": "assistant", …}]`). TRL renders the prompt with `add_generation_prompt=True` and the whole
 *   conversation without it, and trains on what follows the prompt: the answer and the template's end of
 *   turn, exactly webtune's completion. TRL adds no EOS to conversational data; webtune adds one only when
 *   the end of turn holds none (see encode.ts), which for templates that end turns with EOS is the same.
 * - The files are in the folder `data/` so that `dataset_name: ./data` loads them with `datasets`'s JSON
 *   builder, which names the splits after the files (train, validation); nothing else is in that folder for
 *   it to pick up.
 *
 * The YAML is written with the `yaml` package as YAML 1.1, the version PyYAML (which TRL's parser uses)
 * reads: strings such as "no", "on" or "1:30" are quoted, and floats always have a decimal point.
 */
import { writeText, type FolderSink } from './sink';
import { trlReadme } from './trl-readme';
import { deepspeedZero3Yaml, fsdpYaml, yamlWithComments, type YamlEntry } from './trl-yaml';
import type { TrlBundleInput, TrlExample } from './trl-input';

export type { TrlBundleInput, TrlExample, TrlRunSettings } from './trl-input';
export {
  trlExamples,
  trlPairExamples,
  trlPairRow,
  trlRow,
  trlRowCounts,
  trlRows,
  type TrlPairRow,
  type TrlRow,
} from './trl-rows';
import { trlPairRow, trlRowCounts, trlRows, type TrlPairRow, type TrlRow } from './trl-rows';
import { acceleratedRun, preferenceEntries, preferenceHeader, trlJob } from './trl-preference';

export { trlJob, type TrlJob } from './trl-preference';

/** Whether the run was DPO or ORPO: pairs, and their config in place of SFT's. */
const isPreference = (input: TrlBundleInput) => (input.objective?.name ?? 'sft') !== 'sft';

/** The run's config: sft_config.yaml, dpo_config.yaml or orpo_config.yaml's text. */
export function runConfigYaml(input: TrlBundleInput): string {
  if (!isPreference(input)) return sftConfigYaml(input);
  return yamlWithComments(
    preferenceEntries(input, configEntries(input)),
    preferenceHeader(input, oneLine(input.name), TRL_VERSION),
  );
}

/** The TRL release line the bundle was written for (field names checked against its source). */
export const TRL_VERSION = '1.9';

/** Where the JSONL files go, and what `dataset_name` names (relative to the bundle's folder). */
export const TRL_DATA_DIR = 'data';

/** Webtune's schedule: linear warmup, then cosine decay to this fraction of the peak (schedule.ts). */
export const MIN_LR_RATIO = 0.1;

/** Rows per write to the sink: a large dataset is not held as one string. */
const JSONL_CHUNK = 256;

async function writeJsonl(
  folder: FolderSink,
  name: string,
  examples: readonly TrlExample[],
  input: TrlBundleInput,
): Promise<void> {
  const file = await folder.file(name);
  const encoder = new TextEncoder();
  for (let start = 0; start < examples.length; start += JSONL_CHUNK) {
    const lines = examples
      .slice(start, start + JSONL_CHUNK)
      .flatMap((e): (TrlRow | TrlPairRow)[] =>
        isPreference(input)
          ? [trlPairRow(e, input.rows, input.mapping, input.chatTemplate)]
          : trlRows(e, input.rows, input.mapping, input.chatTemplate),
      )
      .map((row) => JSON.stringify(row) + '\n');
    await file.write(encoder.encode(lines.join('')));
  }
  await file.close();
}

/** A folder name from the run's name: letters, digits, dot, dash and underscore. */
export function outputDirName(name: string): string {
  const slug = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^\w.-]+/g, '-')
    .replace(/^[-.]+|-+$/g, '')
    .slice(0, 80);
  return slug === '' ? 'adapter' : slug;
}

/**
 * sft_config.yaml: TRL's ScriptArguments, SFTConfig and ModelConfig fields, with where each value came from.
 */
export function sftConfigYaml(input: TrlBundleInput): string {
  const header = [
    `TRL SFT config written by webtune for the run "${oneLine(input.name)}".`,
    `Run from this folder:  trl sft --config sft_config.yaml   (TRL ${TRL_VERSION} or newer; see README.md)`,
    'Every key is a TRL SFTConfig, ModelConfig or ScriptArguments field; command-line flags override them.',
  ].join('\n');
  return yamlWithComments(configEntries(input), header);
}

/**
 * The config's entries in order (null: left out), the SFT run's; a preference run's config
 * (trl-preference.ts) is these with SFT's own fields swapped for its objective's.
 */
export function configEntries(input: TrlBundleInput): (YamlEntry | null)[] {
  const { settings: s, lora } = input;
  const hasValidation = input.validation.length > 0;
  const evalSteps = s.evalEvery;
  const strategy = evalSteps === undefined ? 'epoch' : 'steps';
  const keepBest = hasValidation && (s.keep ?? 'best') === 'best';
  const kind = input.chatTemplate
    ? "conversational prompt/completion: TRL applies the model's chat template"
    : 'plain prompt/completion text: TRL appends EOS to each completion';
  const warmupNote =
    s.warmupSteps > 0
      ? `\nDuring warmup TRL's step k uses k/${s.warmupSteps} of the peak where webtune used (k+1)/${s.warmupSteps}; the decay is the same.`
      : '';
  const entries: (YamlEntry | null)[] = [
    [
      'model_name_or_path',
      input.model,
      'The model webtune trained on (a Hub id, or change it to a local folder).',
    ],
    [
      'dataset_name',
      `./${TRL_DATA_DIR}`,
      `The examples webtune trained on (${kind}), in ${TRL_DATA_DIR}/: a folder of JSONL files whose names\nare the splits. Run trl from this folder so the relative path resolves.`,
    ],
    ['dataset_train_split', 'train', ''],
    hasValidation
      ? [
          'dataset_test_split',
          'validation',
          `webtune's validation split (${input.validation.length} examples${s.valSplit !== undefined ? `, a ${s.valSplit} split` : ''} with seed ${s.seed}).`,
        ]
      : null,
    [
      'output_dir',
      `output/${outputDirName(input.name)}`,
      'Where the adapter is saved (adapter_config.json + adapter_model.safetensors) and checkpoints go.',
    ],

    [
      'max_length',
      s.maxLength,
      "webtune's max length in tokens (BOS and EOS included); longer examples keep their start, as in webtune.",
    ],
    [
      'completion_only_loss',
      true,
      `Train only on the completion, as webtune does (the prompt is context).${multiTurnNote(input)}`,
    ],
    ['packing', false, 'One example per sequence, as in webtune.'],

    ['use_peft', true, "LoRA, with webtune's adapter settings."],
    ['lora_r', lora.rank, ''],
    ['lora_alpha', lora.alpha, ''],
    ['lora_dropout', lora.dropout, ''],
    ['lora_target_modules', [...lora.targets], 'The projections webtune adapted.'],
    ['use_rslora', lora.useRslora, 'rsLoRA scaling (alpha/sqrt(r) instead of alpha/r).'],

    ['learning_rate', s.learningRate, "webtune's learning rate (the peak of the schedule)."],
    ['num_train_epochs', s.epochs, ''],
    [
      'per_device_train_batch_size',
      s.batchSize,
      "webtune's batch size. On several GPUs each takes this many, so the effective batch is\nper_device_train_batch_size x gradient_accumulation_steps x GPUs: divide one of them to keep webtune's.",
    ],
    ['gradient_accumulation_steps', s.gradAccum, ''],
    [
      'lr_scheduler_type',
      'cosine_with_min_lr',
      `webtune's schedule: linear warmup, then cosine decay to ${MIN_LR_RATIO} x the peak at the last step.${warmupNote}`,
    ],
    ['lr_scheduler_kwargs', { min_lr_rate: MIN_LR_RATIO }, ''],
    ['warmup_steps', s.warmupSteps, ''],
    [
      'weight_decay',
      s.weightDecay,
      'AdamW (decoupled) weight decay, as in webtune; betas 0.9/0.999 and eps 1e-8 are the defaults of both.',
    ],
    ['max_grad_norm', s.maxGradNorm ?? 1, 'Gradient clipping, as in webtune.'],
    [
      'seed',
      s.seed,
      "webtune's seed. TRL shuffles with its own generator, so the order of examples differs; the split does not\n(it is in the files).",
    ],

    [
      'gradient_checkpointing',
      true,
      "Less memory for about one more forward pass per step (webtune's default too).",
    ],
    [
      'bf16',
      true,
      'bfloat16 mixed precision (Ampere or newer GPUs). On a T4 or V100 use bf16: false and fp16: true.',
    ],
    ['logging_steps', 1, 'A loss line per optimizer step, as webtune prints.'],
    [
      'eval_strategy',
      hasValidation ? strategy : 'no',
      hasValidation
        ? evalSteps === undefined
          ? 'Validation loss at the end of each epoch, as in webtune.'
          : `Validation loss every ${evalSteps} steps (webtune's --eval-every).`
        : 'webtune held out no validation split for this run.',
    ],
    hasValidation && evalSteps !== undefined ? ['eval_steps', evalSteps, ''] : null,
    hasValidation ? ['per_device_eval_batch_size', s.batchSize, ''] : null,
    [
      'save_strategy',
      hasValidation ? strategy : 'epoch',
      'Checkpoints (to resume with --resume_from_checkpoint), at the evaluations.',
    ],
    hasValidation && evalSteps !== undefined ? ['save_steps', evalSteps, ''] : null,
    ['save_total_limit', 2, ''],
    keepBest
      ? [
          'load_best_model_at_end',
          true,
          `webtune kept the weights of the lowest validation loss (--keep best); so does this.${s.patience !== undefined ? `\nwebtune's --patience ${s.patience} (early stopping) has no setting in the trl CLI: training runs all epochs.` : ''}`,
        ]
      : null,
    keepBest ? ['metric_for_best_model', 'eval_loss', ''] : null,
    keepBest ? ['greater_is_better', false, ''] : null,
    ['report_to', 'none', 'No experiment tracker; set wandb, trackio or tensorboard to log to one.'],
  ];
  return entries;
}

/** For conversations webtune trained several turns of: how the rows carry them (see trlRows). */
function multiTurnNote(input: TrlBundleInput): string {
  const { multiTurn } = trlRowCounts(input.train);
  return multiTurn
    ? `\nwebtune trained every assistant turn of ${multiTurn} conversations in one sequence; each turn is its own row\nhere (the turns before it are its prompt), since TRL's assistant_only_loss needs a {% generation %} template.`
    : '';
}

export const oneLine = (text: string) => text.replace(/[\r\n\u2028\u2029]+/g, ' ').slice(0, 200);

/** The files of a bundle, in the order they are written. */
export function trlBundleFiles(hasValidation: boolean, objective?: TrlBundleInput['objective']): string[] {
  const job = trlJob(objective);
  return [
    `${TRL_DATA_DIR}/train.jsonl`,
    ...(hasValidation ? [`${TRL_DATA_DIR}/validation.jsonl`] : []),
    job.configFile,
    ...(job.script ? [job.script.name] : []),
    'accelerate/deepspeed_zero3.yaml',
    'accelerate/fsdp.yaml',
    'README.md',
  ];
}

/**
 * Writes the bundle into `folder`, one file after another (see trlBundleFiles). Throws before writing
 * anything when there is no training example or a setting is not a usable number.
 */
export async function writeTrlBundle(
  folder: FolderSink,
  input: TrlBundleInput,
): Promise<{ files: string[] }> {
  checkInput(input);
  const hasValidation = input.validation.length > 0;
  await writeJsonl(folder, `${TRL_DATA_DIR}/train.jsonl`, input.train, input);
  if (hasValidation) await writeJsonl(folder, `${TRL_DATA_DIR}/validation.jsonl`, input.validation, input);
  const job = trlJob(input.objective);
  await writeText(folder, job.configFile, runConfigYaml(input));
  if (job.script) await writeText(folder, job.script.name, job.script.text);
  const accelerate = (file: string) => acceleratedRun(job, file);
  await writeText(
    folder,
    'accelerate/deepspeed_zero3.yaml',
    deepspeedZero3Yaml(accelerate('accelerate/deepspeed_zero3.yaml'), job.configFile),
  );
  await writeText(
    folder,
    'accelerate/fsdp.yaml',
    fsdpYaml(accelerate('accelerate/fsdp.yaml'), job.configFile),
  );
  await writeText(
    folder,
    'README.md',
    trlReadme(input, {
      outputDir: `output/${outputDirName(input.name)}`,
      dataDir: TRL_DATA_DIR,
      trlVersion: TRL_VERSION,
    }),
  );
  return { files: trlBundleFiles(hasValidation, input.objective) };
}

function checkInput(input: TrlBundleInput): void {
  if (input.model.trim() === '') throw new Error('The TRL export needs the model (a Hub id or folder name).');
  if (input.train.length === 0) throw new Error('The TRL export needs at least one training example.');
  const { settings: s, lora } = input;
  const numbers: [string, number, boolean][] = [
    ['learning rate', s.learningRate, false],
    ['epochs', s.epochs, true],
    ['batch size', s.batchSize, true],
    ['gradient accumulation', s.gradAccum, true],
    ['max length', s.maxLength, true],
    ['warmup steps', s.warmupSteps, true],
    ['weight decay', s.weightDecay, false],
    ['seed', s.seed, true],
    ['rank', lora.rank, true],
    ['alpha', lora.alpha, false],
    ['dropout', lora.dropout, false],
  ];
  for (const [label, value, integer] of numbers) {
    if (!Number.isFinite(value) || (integer && !Number.isInteger(value)))
      throw new RangeError(
        `The TRL export's ${label} must be a ${integer ? 'whole ' : ''}number, got ${value}.`,
      );
  }
  if (lora.targets.length === 0)
    throw new RangeError('The TRL export needs at least one LoRA target module.');
  if (isPreference(input)) {
    const { name, beta } = input.objective!;
    if (!Number.isFinite(beta) || beta! < 0)
      throw new RangeError(`The TRL export's ${name === 'dpo' ? 'β' : 'λ'} must be a number, got ${beta}.`);
    if (input.mapping.kind !== 'pairs')
      throw new Error(
        `The TRL export of a ${name.toUpperCase()} run needs a pairs dataset (prompt, chosen, rejected).`,
      );
  }
}
