/**
 * The YAML files of the TRL bundle other than sft_config.yaml's values: comments above each key, floats as
 * PyYAML reads them, and the two Accelerate configs (DeepSpeed ZeRO-3, FSDP 2).
 */
import { Document, isPair, isScalar, type ScalarTag, type ToStringOptions } from 'yaml';

/** A config value and the comment above it (a line each; '' for none). */
export type YamlEntry = [key: string, value: unknown, comment: string];

/**
 * A YAML document of the entries in order, each with its comment, readable by PyYAML and by any YAML 1.2
 * parser alike.
 */
export function yamlWithComments(entries: readonly (YamlEntry | null)[], header: string): string {
  const present = entries.filter((e): e is YamlEntry => e !== null);
  const doc = new Document(Object.fromEntries(present.map(([key, value]) => [key, value])), {
    version: '1.1',
    customTags: (tags) => [PY_FLOAT, ...tags],
  });
  doc.commentBefore = commentText(header);
  const comments = new Map(present.map(([key, , comment]) => [key, comment]));
  const items = (doc.contents as { items?: unknown[] } | null)?.items ?? [];
  for (const pair of items) {
    if (!isPair(pair) || !isScalar(pair.key)) continue;
    const comment = comments.get(String(pair.key.value));
    if (comment) pair.key.commentBefore = commentText(comment);
  }
  const options: ToStringOptions = { lineWidth: 0 };
  return doc.toString(options);
}

/** Each line as a YAML comment line (the writer adds the '#'). */
const commentText = (text: string) =>
  text
    .split('\n')
    .map((line) => ` ${line}`.trimEnd())
    .join('\n');

/**
 * Floats as PyYAML reads them: YAML 1.1 wants a decimal point in the mantissa and a sign in the exponent,
 * so 1e-7 (JavaScript's spelling) is written 1.0e-7; PyYAML would read "1e-7" as a string.
 */
const PY_FLOAT: ScalarTag = {
  identify: (value) => typeof value === 'number' && Number.isFinite(value) && !Number.isInteger(value),
  default: true,
  tag: 'tag:yaml.org,2002:float',
  resolve: (text) => Number(text),
  stringify: ({ value }) => pyFloat(Number(value)),
};

export function pyFloat(value: number): string {
  const text = String(value);
  if (!text.includes('e')) return text.includes('.') ? text : `${text}.0`;
  const [mantissa, exponent] = text.split('e');
  return `${mantissa.includes('.') ? mantissa : `${mantissa}.0`}e${/^[+-]/.test(exponent) ? exponent : `+${exponent}`}`;
}

/** What both accelerate configs end with: one machine, its GPUs, bf16. */
const oneMachine = (configFile: string): YamlEntry[] => [
  ['machine_rank', 0, ''],
  ['main_training_function', 'main', ''],
  ['mixed_precision', 'bf16', `Matches bf16: true in ${configFile}.`],
  ['num_machines', 1, ''],
  ['num_processes', 2, 'The number of GPUs: change it here or pass --num_processes N.'],
  ['rdzv_backend', 'static', ''],
  ['same_network', true, ''],
  ['use_cpu', false, ''],
];

/**
 * Accelerate config: DeepSpeed ZeRO stage 3 (parameters, gradients and optimizer state sharded over the
 * GPUs).
 */
export function deepspeedZero3Yaml(
  run = 'trl sft --config sft_config.yaml --accelerate_config accelerate/deepspeed_zero3.yaml',
  configFile = 'sft_config.yaml',
): string {
  return yamlWithComments(
    [
      ['compute_environment', 'LOCAL_MACHINE', ''],
      ['distributed_type', 'DEEPSPEED', ''],
      [
        'deepspeed_config',
        {
          deepspeed_multinode_launcher: 'standard',
          offload_optimizer_device: 'none',
          offload_param_device: 'none',
          zero3_init_flag: true,
          zero3_save_16bit_model: true,
          zero_stage: 3,
        },
        'ZeRO-3 shards the model over the GPUs. Out of GPU memory: set offload_optimizer_device (then\noffload_param_device) to cpu.',
      ],
      ['downcast_bf16', 'no', ''],
      ...oneMachine(configFile),
    ],
    `accelerate config for DeepSpeed ZeRO-3, written by webtune (needs \`pip install deepspeed\`).\nUse:  ${run}`,
  );
}

/** Accelerate config: PyTorch FSDP 2 (fully sharded data parallel). */
export function fsdpYaml(
  run = 'trl sft --config sft_config.yaml --accelerate_config accelerate/fsdp.yaml',
  configFile = 'sft_config.yaml',
): string {
  return yamlWithComments(
    [
      ['compute_environment', 'LOCAL_MACHINE', ''],
      ['distributed_type', 'FSDP', ''],
      ['downcast_bf16', 'no', ''],
      [
        'fsdp_config',
        {
          fsdp_version: 2,
          fsdp_auto_wrap_policy: 'TRANSFORMER_BASED_WRAP',
          fsdp_cpu_ram_efficient_loading: true,
          fsdp_offload_params: false,
          fsdp_reshard_after_forward: true,
          fsdp_state_dict_type: 'FULL_STATE_DICT',
          fsdp_activation_checkpointing: false,
        },
        'FSDP 2 (accelerate 1.7 or newer) shards each decoder layer over the GPUs.',
      ],
      ...oneMachine(configFile),
    ],
    `accelerate config for FSDP, written by webtune.\nUse:  ${run}`,
  );
}
