/**
 * The README.md of a `trl` export: what the folder is, how to run it on one GPU or several, and how to bring
 * the adapter back.
 */
import type { TrlBundleInput, TrlExample } from './trl-input';
import { acceleratedRun, trlJob } from './trl-preference';

/** Trained turns of each example (one for a prompt/completion row). */
const turnsOf = (e: TrlExample) => (e.segments ? e.segments.filter((s) => s.trained).length : 1);

export interface TrlReadmePaths {
  outputDir: string;
  dataDir: string;
  trlVersion: string;
}

export function trlReadme(input: TrlBundleInput, { outputDir, dataDir, trlVersion }: TrlReadmePaths): string {
  const { settings: s, lora } = input;
  const job = trlJob(input.objective);
  const preference = job.objective !== 'sft';
  const name = input.name.replace(/[\r\n]+/g, ' ');
  const validation = input.validation.length > 0;
  const dataset = input.datasetName ? ` from \`${input.datasetName.replace(/[`\r\n]/g, '')}\`` : '';
  const layout = preference
    ? pairLayout(input.chatTemplate)
    : input.chatTemplate
      ? `Each row is a conversation in TRL's conversational prompt/completion layout: \`"prompt"\` holds the messages before the
answer and \`"completion"\` the assistant's answer. TRL passes them through the model's own chat template, as webtune
did, and trains only on the answer and the template's end of turn.`
      : `Each row is \`{"prompt": …, "completion": …}\` in plain text: the prompt ends with the separator webtune put before the
completion (a newline; none after an empty prompt), and prompt + completion is exactly the text webtune trained on. TRL appends the tokenizer's
end-of-sequence token to each completion itself, as webtune did, and trains only on the completion.`;
  const examples = [...input.train, ...input.validation];
  const conversations = examples.filter((e) => turnsOf(e) > 1).length;
  const rowsWritten = examples.reduce((sum, e) => sum + turnsOf(e), 0);
  const turns = conversations
    ? `

webtune trained every assistant turn of a conversation (${conversations} of the examples have several) in one
sequence, each turn after the conversation before it. TRL's SFT does that only with \`assistant_only_loss\`,
which needs a chat template marked up with \`{% generation %}\`, which few models' are; so each trained turn is
its own row here, with the turns before it as its prompt: the same answers learned in the same context, as
${rowsWritten} rows rather than ${examples.length} sequences (a step sees more, shorter sequences; the loss weighs the
tokens alike).${input.chatTemplate ? '' : " In plain text TRL also ends each earlier turn with the end-of-sequence token, which webtune put only after a conversation's last answer."}`
    : '';
  return `# ${name}: continue this run with TRL

This folder was written by webtune. It holds the run "${name}" — the model \`${input.model}\`, the
${input.train.length} training${validation ? ` and ${input.validation.length} validation` : ''} examples${dataset} exactly as webtune
trained on them, and its LoRA and optimiser settings — as a [TRL](https://huggingface.co/docs/trl)
${job.title} job. Copy it to a machine with an NVIDIA GPU and run it unchanged; then scale it up.

| File | What it is |
| --- | --- |
| \`${dataDir}/train.jsonl\` | the training examples |${validation ? `\n| \`${dataDir}/validation.jsonl\` | the validation examples webtune held out (the same split) |` : ''}
| \`${job.configFile}\` | every setting of the run, with a comment saying where it came from |${job.script ? `\n| \`${job.script.name}\` | runs TRL's ORPOTrainer with that config (TRL has no \`trl orpo\` command) |` : ''}
| \`accelerate/deepspeed_zero3.yaml\` | several GPUs with DeepSpeed ZeRO-3 |
| \`accelerate/fsdp.yaml\` | several GPUs with PyTorch FSDP 2 |

${layout}${turns}

## Install

Written for TRL ${trlVersion} or newer (1.x; its field names were checked against TRL 1.10) with PEFT, on Python 3.10+ and a CUDA build of PyTorch:

\`\`\`bash
pip install "trl>=${trlVersion},<2" peft
pip install deepspeed   # only for accelerate/deepspeed_zero3.yaml
\`\`\`

## Run on one GPU

From this folder (the config names \`./${dataDir}\`, a relative path):

\`\`\`bash
${job.run}
\`\`\`

Any setting can be changed on the command line, e.g. \`${job.run} --num_train_epochs 10\`.
The adapter is written to \`${outputDir}/\`${validation && (s.keep ?? 'best') === 'best' ? ' (the weights of the lowest validation loss, as webtune keeps them)' : ''}.
If \`bf16\` is refused (GPUs older than Ampere, e.g. T4 or V100), pass \`--bf16 false --fp16 true\`.

## Run on several GPUs

TRL launches through 🤗 Accelerate. Pass one of the configs in \`accelerate/\` and the number of GPUs:

\`\`\`bash
${acceleratedRun(job, 'accelerate/deepspeed_zero3.yaml', 4)}
${acceleratedRun(job, 'accelerate/fsdp.yaml', 4)}
\`\`\`
${
  job.script
    ? ''
    : `
TRL also knows these by name (\`--accelerate_config zero3\`, \`zero2\`, \`fsdp2\`, \`multi_gpu\`), and plain Accelerate works too:
\`accelerate launch --config_file accelerate/deepspeed_zero3.yaml -m trl.scripts.${job.objective} --config ${job.configFile}\`.
`
}

- **DeepSpeed ZeRO-3** shards weights, gradients and optimizer state over the GPUs; set \`offload_optimizer_device: cpu\`
  (then \`offload_param_device: cpu\`) in the file when memory is still short.
- **FSDP 2** does the same with PyTorch alone (no DeepSpeed install).
- Plain data parallel (${job.script ? '`accelerate launch --multi_gpu`' : '`--accelerate_config multi_gpu`'}) is enough while the model fits on one GPU.

Each GPU takes \`per_device_train_batch_size\` (${s.batchSize}) examples, so the effective batch is ${s.batchSize} × ${s.gradAccum} (gradient
accumulation) × the number of GPUs. To keep webtune's batch of ${s.batchSize * s.gradAccum} per optimizer step, lower
\`gradient_accumulation_steps\` or \`per_device_train_batch_size\` accordingly — or keep the larger batch and raise the learning rate.

## A bigger model

Change \`model_name_or_path\` to another model of the same family (for example a larger Llama or SmolLM2); the data does
not change${input.chatTemplate ? ', but a model with a different chat template formats the conversations its own way' : ''}. Then usually:

- \`dtype: bfloat16\` (the weights in half the memory) and \`attn_implementation: flash_attention_2\` or \`sdpa\`;
- a lower \`learning_rate\` (webtune's ${s.learningRate} suits small models; ${preference ? '5e-6 to 5e-5 is usual for LoRA preference tuning' : '1e-4 to 2e-4 is usual for LoRA'} on billions of parameters);
- \`max_length\` up to what the examples need (webtune used ${s.maxLength} tokens);
- more \`lora_target_modules\` (all of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj) and a larger \`lora_r\`;
- \`load_in_4bit: true\` (QLoRA, needs bitsandbytes) when even that does not fit.

## Bring the adapter back into webtune

When training ends, \`${outputDir}/\` holds \`adapter_config.json\` and \`adapter_model.safetensors\`: a PEFT adapter
(rank ${lora.rank}, alpha ${lora.alpha}, on ${lora.targets.join(', ')}). Webtune runs adapters for the model it was trained on:

- **In the browser:** zip the two files (\`cd ${outputDir} && zip adapter.zip adapter_config.json adapter_model.safetensors\`)
  and drop the zip on the adapter library.
- **On the command line:** \`webtune generate --model <the model> --adapter ${outputDir}${input.chatTemplate ? ' --chat' : ''} --prompt "…"\`
  (a folder or the zip).

## What differs from webtune's run

- The order of examples: TRL shuffles with its own generator from the same seed, and does not group examples by length.
- Warmup: TRL's step k runs at k/warmup of the peak learning rate where webtune's ran at (k+1)/warmup; the cosine decay is the same.
- Training starts again from the base model with a fresh adapter (PEFT's initialisation, as webtune's); it does not load
  the weights webtune trained.
${
  input.chatTemplate
    ? `- Through a chat template TRL tokenises the rendered conversation without adding special tokens, so a BOS token comes only
  from the template; webtune's encoder also puts the tokenizer's BOS first when the tokenizer adds one (\`add_bos_token\`).
`
    : ''
}${s.patience !== undefined ? `- Early stopping (webtune's patience ${s.patience}) has no setting in the \`trl\` command line: all epochs run.\n` : ''}`;
}

/** How a preference run's rows read. */
function pairLayout(chatTemplate: boolean): string {
  return chatTemplate
    ? `Each row is a pair in TRL's conversational preference layout: \`"prompt"\` holds the messages before the answer,
\`"chosen"\` the better answer and \`"rejected"\` the worse, each a list of one assistant message. TRL passes them through the
model's own chat template, as webtune did, and scores only the answers (and the template's end of turn).`
    : `Each row is \`{"prompt": …, "chosen": …, "rejected": …}\` in plain text: the prompt ends with the separator webtune put
before an answer (a newline), and prompt + answer is exactly the text webtune scored. TRL appends the tokenizer's
end-of-sequence token to each answer itself, as webtune did, and scores only the answers.`;
}
