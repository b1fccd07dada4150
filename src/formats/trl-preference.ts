/**
 * The `trl` export of a DPO or ORPO run: the same folder as SFT's (trl.ts), with the pairs in TRL's
 * preference layout and a config for TRL's DPOTrainer (`trl dpo --config dpo_config.yaml`) or ORPOTrainer.
 * TRL 1.x has no `trl orpo` command (ORPO lives in `trl.experimental.orpo`), so an ORPO bundle carries
 * `orpo.py`, a few lines that read the config with TRL's own parser and run ORPOTrainer.
 *
 * Field names were checked against TRL 1.10's DPOConfig (trl/trainer/dpo_config.py) and ORPOConfig
 * (trl/experimental/orpo/orpo_config.py), both TrainingArguments underneath.
 */
import { describeObjective, type RunObjective } from './adapter-info';
import type { TrlBundleInput } from './trl-input';
import type { YamlEntry } from './trl-yaml';

/** How a bundle's run is started, and what its files are called. */
export interface TrlJob {
  objective: RunObjective['name'];
  /** The config file the command reads. */
  configFile: string;
  /** The command to run from the bundle's folder on one GPU. */
  run: string;
  /** The same on several GPUs with an accelerate config (ACCELERATE stands for its path). */
  runAccelerated: string;
  /** What the job is, in words. */
  title: string;
  /** A script the bundle carries (ORPO's), with its text. */
  script?: { name: string; text: string };
}

const ACCELERATE = 'ACCELERATE';

export function trlJob(objective: RunObjective | undefined): TrlJob {
  const name = objective?.name ?? 'sft';
  if (name === 'orpo')
    return {
      objective: name,
      configFile: 'orpo_config.yaml',
      run: 'python orpo.py --config orpo_config.yaml',
      runAccelerated: `accelerate launch --config_file ${ACCELERATE} orpo.py --config orpo_config.yaml`,
      title: 'ORPO (odds ratio preference optimization)',
      script: { name: 'orpo.py', text: ORPO_SCRIPT },
    };
  const configFile = `${name}_config.yaml`;
  return {
    objective: name,
    configFile,
    run: `trl ${name} --config ${configFile}`,
    runAccelerated: `trl ${name} --config ${configFile} --accelerate_config ${ACCELERATE}`,
    title: name === 'dpo' ? 'DPO (direct preference optimization)' : 'supervised fine-tuning',
  };
}

/** The multi-GPU command with one accelerate config (and a number of GPUs, when given). */
export function acceleratedRun(job: TrlJob, config: string, gpus?: number): string {
  const processes = gpus === undefined ? '' : ` --num_processes ${gpus}`;
  // accelerate launch takes its own options before the script; trl takes them anywhere.
  return job.script
    ? job.runAccelerated.replace(ACCELERATE, `${config}${processes}`)
    : job.runAccelerated.replace(ACCELERATE, config) + processes;
}

/**
 * ORPO's launcher: TRL's parser (which reads --config YAML) over the same three dataclasses as TRL's own
 * examples/scripts/orpo.py, then ORPOTrainer with PEFT's LoRA from the config.
 */
const ORPO_SCRIPT = `"""Runs ORPO with TRL on the data in ./data: python orpo.py --config orpo_config.yaml (written by webtune)."""
from datasets import load_dataset
from transformers import AutoModelForCausalLM, AutoTokenizer

from trl import ModelConfig, ScriptArguments, TrlParser, get_peft_config
from trl.experimental.orpo import ORPOConfig, ORPOTrainer

if __name__ == "__main__":
    parser = TrlParser((ScriptArguments, ORPOConfig, ModelConfig))
    script_args, training_args, model_args = parser.parse_args_and_config()
    model = AutoModelForCausalLM.from_pretrained(model_args.model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(model_args.model_name_or_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dataset = load_dataset(script_args.dataset_name)
    trainer = ORPOTrainer(
        model,
        args=training_args,
        train_dataset=dataset[script_args.dataset_train_split],
        eval_dataset=dataset[script_args.dataset_test_split] if training_args.eval_strategy != "no" else None,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
    )
    trainer.train()
    trainer.save_model(training_args.output_dir)
`;

/** SFT's own fields, which DPOConfig and ORPOConfig do not have. */
const SFT_ONLY = new Set(['completion_only_loss', 'packing']);

/**
 * A DPO or ORPO config from the SFT run's entries (trl.ts's configEntries): SFT's own fields out, the
 * objective's in after max_length, and the dataset described as pairs.
 */
export function preferenceEntries(
  input: TrlBundleInput,
  entries: readonly (YamlEntry | null)[],
): (YamlEntry | null)[] {
  const objective = input.objective!;
  const dropout = input.lora.dropout;
  const own: YamlEntry[] =
    objective.name === 'dpo'
      ? [
          [
            'beta',
            objective.beta,
            "DPO's β, as in webtune: how far the adapter may move from the reference (higher stays nearer).",
          ],
          ['loss_type', ['sigmoid'], "DPO's loss, -log sigmoid(beta x margin), as webtune computes it."],
          [
            'precompute_ref_log_probs',
            true,
            "The reference log-probs computed once before training, as webtune does; with PEFT, TRL's reference\nis the model with the adapter off, webtune's too.",
          ],
        ]
      : [
          [
            'beta',
            objective.beta,
            "ORPO's λ (TRL names it beta): the weight of the odds-ratio term beside the chosen answers' NLL.\nTRL averages that NLL over all the batch's chosen tokens, webtune per answer: equal when the\nchosen answers are equally long.",
          ],
        ];
  own.push([
    'disable_dropout',
    dropout === 0,
    dropout === 0
      ? 'webtune trained without dropout.'
      : `webtune kept LoRA's dropout (${dropout}) in its training steps; TRL would turn it off by default.`,
  ]);
  const result: (YamlEntry | null)[] = [];
  for (const entry of entries) {
    if (entry && SFT_ONLY.has(entry[0])) continue;
    if (entry?.[0] === 'dataset_name') {
      const kind = input.chatTemplate
        ? "conversational: TRL applies the model's chat template"
        : 'plain text: TRL appends EOS to each answer';
      result.push([
        entry[0],
        entry[1],
        `The pairs webtune trained on (TRL's preference layout, prompt/chosen/rejected, ${kind}), in\n${String(entry[1]).slice(2)}/: a folder of JSONL files whose names are the splits. Run from this folder.`,
      ]);
      continue;
    }
    if (entry?.[0] === 'dataset_test_split') {
      result.push([entry[0], entry[1], entry[2].replace(/(\d+) examples/, '$1 pairs')]);
      continue;
    }
    result.push(entry);
    if (entry?.[0] === 'max_length') result.push(...own);
  }
  return result;
}

/** The config's header: what it is, how to run it. */
export function preferenceHeader(input: TrlBundleInput, name: string, trlVersion: string): string {
  const job = trlJob(input.objective);
  const config = input.objective!.name === 'dpo' ? 'DPOConfig' : 'ORPOConfig';
  return [
    `TRL ${describeObjective(input.objective!)} config written by webtune for the run "${name}".`,
    `Run from this folder:  ${job.run}   (TRL ${trlVersion} or newer; see README.md)`,
    `Every key is a TRL ${config}, ModelConfig or ScriptArguments field; command-line flags override them.`,
  ].join('\n');
}
