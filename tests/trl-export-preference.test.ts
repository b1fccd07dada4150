/**
 * The `trl` export of a DPO or ORPO run: the pairs in TRL's preference layout (the texts and tokens TRL's
 * DPOTrainer builds from them are webtune's), and a config whose every key is a field of TRL's DPOConfig or
 * ORPOConfig (TrainingArguments underneath), ModelConfig or ScriptArguments, holding the run's settings.
 *
 * The field names below were read from TRL 1.10's source (trl/trainer/dpo_config.py,
 * trl/experimental/orpo/orpo_config.py, trl/trainer/model_config.py, trl/scripts/utils.py) and from
 * transformers' TrainingArguments; they are written out here, not taken from webtune's code.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  chatTemplateFormat,
  parseDataset,
  plainFormat,
  type ChatMessage,
  type PromptFormat,
} from '../src/data';
import { buildPairTrainingSet, type PairTrainingSet } from '../src/data/pair-set';
import type { PairMapping } from '../src/data/pairs';
import type { Tokenizer } from '../src/engine/tokenizer';
import type { RunObjective } from '../src/formats/adapter-info';
import { memoryFolder } from '../src/formats/sink';
import {
  trlBundleFiles,
  trlPairExamples,
  writeTrlBundle,
  type TrlBundleInput,
  type TrlRunSettings,
} from '../src/formats/trl';
import { dataFile, loadTokenizer } from './fixtures/data/shared';

const stories = loadTokenizer('stories260K');
const storiesChat = loadTokenizer('stories260K-chat');
const EOS_TEXT = '</s>'; // tokenizer_config.json's eos_token for both stories260K models
const MAPPING: PairMapping = { kind: 'pairs', prompt: 'prompt', chosen: 'chosen', rejected: 'rejected' };

/** TRL 1.10's ScriptArguments and ModelConfig fields. */
const SCRIPT_AND_MODEL = [
  'dataset_name',
  'dataset_config',
  'dataset_train_split',
  'dataset_test_split',
  'model_name_or_path',
  'dtype',
  'use_peft',
  'lora_r',
  'lora_alpha',
  'lora_dropout',
  'lora_target_modules',
  'use_rslora',
];
/** transformers' TrainingArguments fields the bundle sets (TRL's configs derive from it). */
const TRAINING_ARGUMENTS = [
  'output_dir',
  'learning_rate',
  'num_train_epochs',
  'per_device_train_batch_size',
  'per_device_eval_batch_size',
  'gradient_accumulation_steps',
  'lr_scheduler_type',
  'lr_scheduler_kwargs',
  'warmup_steps',
  'weight_decay',
  'max_grad_norm',
  'seed',
  'gradient_checkpointing',
  'bf16',
  'logging_steps',
  'eval_strategy',
  'eval_steps',
  'save_strategy',
  'save_steps',
  'save_total_limit',
  'load_best_model_at_end',
  'metric_for_best_model',
  'greater_is_better',
  'report_to',
];
/** TRL 1.10's DPOConfig's own fields (trl/trainer/dpo_config.py). */
const DPO_CONFIG = [
  'learning_rate',
  'model_init_kwargs',
  'disable_dropout',
  'dataset_num_proc',
  'max_length',
  'truncation_mode',
  'padding_free',
  'precompute_ref_log_probs',
  'precompute_ref_batch_size',
  'loss_type',
  'loss_weights',
  'label_smoothing',
  'beta',
  'use_weighting',
];
/** TRL 1.10's ORPOConfig's own fields (trl/experimental/orpo/orpo_config.py). */
const ORPO_CONFIG = [
  'learning_rate',
  'max_length',
  'max_completion_length',
  'beta',
  'disable_dropout',
  'padding_value',
  'model_init_kwargs',
  'dataset_num_proc',
];

const SETTINGS: TrlRunSettings = {
  learningRate: 5e-4,
  epochs: 3,
  batchSize: 2,
  gradAccum: 2,
  maxLength: 48,
  warmupSteps: 1,
  weightDecay: 0,
  seed: 2,
  maxGradNorm: 1,
  valSplit: 0.25,
  keep: 'best',
};

const text = (bytes: Uint8Array | undefined) => {
  if (!bytes) throw new Error('file not written');
  return new TextDecoder().decode(bytes);
};
type PairRow = {
  prompt: string | ChatMessage[];
  chosen: string | ChatMessage[];
  rejected: string | ChatMessage[];
};
const jsonl = (bytes: Uint8Array | undefined) =>
  text(bytes)
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as PairRow);

async function build(
  tokenizer: Tokenizer,
  format: PromptFormat,
  objective: RunObjective,
  dropout = 0.05,
): Promise<{ set: PairTrainingSet; input: TrlBundleInput; files: Map<string, Uint8Array> }> {
  const name = 'happy-endings.csv';
  const dataset = parseDataset(fs.readFileSync(dataFile(name), 'utf8'), name);
  const options = { maxLength: SETTINGS.maxLength, valSplit: SETTINGS.valSplit!, seed: SETTINGS.seed };
  // What training trains on, and what the export writes.
  const set = buildPairTrainingSet(dataset, MAPPING, tokenizer, { format, batchSize: 2, ...options });
  const { train, validation } = trlPairExamples(dataset, MAPPING, format, tokenizer, options);
  const input: TrlBundleInput = {
    model: 'HuggingFaceTB/SmolLM2-135M-Instruct',
    name: 'happy',
    datasetName: name,
    rows: dataset.rows,
    mapping: MAPPING,
    chatTemplate: format.chat !== null,
    train,
    validation,
    settings: SETTINGS,
    lora: { rank: 4, alpha: 8, dropout, targets: ['q_proj', 'v_proj'], useRslora: false },
    objective,
  };
  const folder = memoryFolder();
  await writeTrlBundle(folder, input);
  return { set, input, files: folder.files };
}

describe('dpo_config.yaml', () => {
  it('holds the run’s settings under DPOConfig, ModelConfig and ScriptArguments names only', async () => {
    const { files, set } = await build(stories, plainFormat(), { name: 'dpo', beta: 0.25 });
    expect([...files.keys()].sort()).toEqual(trlBundleFiles(true, { name: 'dpo', beta: 0.25 }).sort());
    expect(files.has('dpo_config.yaml') && !files.has('sft_config.yaml')).toBe(true);
    const config = parseYaml(text(files.get('dpo_config.yaml'))) as Record<string, unknown>;
    const known = new Set([...SCRIPT_AND_MODEL, ...TRAINING_ARGUMENTS, ...DPO_CONFIG]);
    expect(Object.keys(config).filter((key) => !known.has(key))).toEqual([]);
    expect(config).toMatchObject({
      beta: 0.25,
      loss_type: ['sigmoid'],
      precompute_ref_log_probs: true,
      disable_dropout: false,
      max_length: 48,
      learning_rate: 5e-4,
      num_train_epochs: 3,
      per_device_train_batch_size: 2,
      gradient_accumulation_steps: 2,
      warmup_steps: 1,
      seed: 2,
      lora_r: 4,
      lora_alpha: 8,
      lora_dropout: 0.05,
      lora_target_modules: ['q_proj', 'v_proj'],
      dataset_name: './data',
      dataset_test_split: 'validation',
      load_best_model_at_end: true,
      metric_for_best_model: 'eval_loss',
    });
    expect(config).not.toHaveProperty('completion_only_loss');
    expect(jsonl(files.get('data/validation.jsonl'))).toHaveLength(set.validation.length);
    const yamlText = text(files.get('dpo_config.yaml'));
    expect(yamlText).toMatch(/^# Run from this folder: {2}trl dpo --config dpo_config\.yaml/m);
    expect(yamlText).toMatch(/webtune's validation split \(5 pairs/);
    const readme = text(files.get('README.md'));
    expect(readme).toContain('DPO (direct preference optimization) job');
    expect(readme).toContain(
      'trl dpo --config dpo_config.yaml --accelerate_config accelerate/fsdp.yaml --num_processes 4',
    );
    expect(readme).not.toContain('trl sft');
    expect(text(files.get('accelerate/fsdp.yaml'))).toContain('trl dpo --config dpo_config.yaml');
  });

  it('without dropout, TRL’s default (dropout off) is webtune’s', async () => {
    const { files } = await build(stories, plainFormat(), { name: 'dpo', beta: 0.1 }, 0);
    expect(parseYaml(text(files.get('dpo_config.yaml')))).toMatchObject({ disable_dropout: true, beta: 0.1 });
  });
});

describe('ORPO: orpo_config.yaml and orpo.py (TRL 1.x has no trl orpo command)', () => {
  it('the config holds ORPOConfig names only, λ as beta; orpo.py is valid Python that reads it', async () => {
    const { files } = await build(stories, plainFormat(), { name: 'orpo', beta: 0.2 });
    const config = parseYaml(text(files.get('orpo_config.yaml'))) as Record<string, unknown>;
    const known = new Set([...SCRIPT_AND_MODEL, ...TRAINING_ARGUMENTS, ...ORPO_CONFIG]);
    expect(Object.keys(config).filter((key) => !known.has(key))).toEqual([]);
    expect(config).toMatchObject({ beta: 0.2, max_length: 48, disable_dropout: false });
    expect(config).not.toHaveProperty('loss_type');
    const script = text(files.get('orpo.py'));
    expect(script).toContain('from trl.experimental.orpo import ORPOConfig, ORPOTrainer');
    expect(script).toContain('TrlParser((ScriptArguments, ORPOConfig, ModelConfig))');
    // Python's own parser accepts it (TRL itself is not installed here).
    const check = spawnSync('/usr/bin/python3', ['-c', 'import ast, sys; ast.parse(sys.stdin.read())'], {
      input: script,
      encoding: 'utf8',
    });
    expect(check.status, check.stderr).toBe(0);
    const readme = text(files.get('README.md'));
    expect(readme).toContain('python orpo.py --config orpo_config.yaml');
    expect(readme).toContain(
      'accelerate launch --config_file accelerate/deepspeed_zero3.yaml --num_processes 4 orpo.py --config orpo_config.yaml',
    );
  });
});

describe('the pairs: TRL’s preference layout, the texts and tokens webtune scored', () => {
  it('plain text: prompt + answer + EOS, tokenised as TRL does, are webtune’s ids and targets', async () => {
    const { files, set } = await build(stories, plainFormat(), { name: 'dpo', beta: 0.1 });
    for (const [rows, pairs] of [
      [jsonl(files.get('data/train.jsonl')), set.train],
      [jsonl(files.get('data/validation.jsonl')), set.validation],
    ] as const) {
      expect(rows).toHaveLength(pairs.length);
      rows.forEach((row, i) => {
        expect(Object.keys(row)).toEqual(['prompt', 'chosen', 'rejected']);
        const prompt = row.prompt as string;
        // TRL's DPOTrainer (non-conversational): appends the EOS text to each answer, tokenises the prompt
        // and prompt + answer with special tokens, and scores the tokens past the prompt's.
        const promptLength = stories.encode(prompt, { addSpecialTokens: true }).length;
        for (const answer of ['chosen', 'rejected'] as const) {
          const ids = stories
            .encode(`${prompt}${row[answer] as string}${EOS_TEXT}`, { addSpecialTokens: true })
            .slice(0, SETTINGS.maxLength);
          expect(ids).toEqual(pairs[i][answer].ids);
          expect(ids.map((_, t) => (t >= promptLength ? 1 : 0))).toEqual(pairs[i][answer].completionMask);
        }
        expect(row.chosen).toMatch(/happy\.$/);
        expect(row.rejected).toMatch(/sad\.$/);
      });
    }
  });

  it('through the chat template: conversational rows that TRL renders to webtune’s texts', async () => {
    const format = chatTemplateFormat(storiesChat);
    const { files, set } = await build(storiesChat, format, { name: 'dpo', beta: 0.1 });
    const rows = jsonl(files.get('data/train.jsonl'));
    expect(rows).toHaveLength(set.train.length);
    rows.forEach((row, i) => {
      const prompt = row.prompt as ChatMessage[];
      expect(prompt).toEqual([{ role: 'user', content: expect.any(String) as string }]);
      const promptText = storiesChat.applyChatTemplate(prompt, { addGenerationPrompt: true });
      for (const answer of ['chosen', 'rejected'] as const) {
        const messages = row[answer] as ChatMessage[];
        expect(messages).toHaveLength(1);
        expect(messages[0].role).toBe('assistant');
        const full = storiesChat.applyChatTemplate([...prompt, ...messages], { addGenerationPrompt: false });
        const rendered = set.train[i].pair[answer];
        expect(promptText).toBe(rendered.prompt);
        expect(full).toBe(rendered.prompt + rendered.completion);
      }
    });
  });

  it('PyYAML (what TRL parses the config with) reads the same values', async () => {
    const hasPyYaml = spawnSync('/usr/bin/python3', ['-c', 'import yaml'], { encoding: 'utf8' }).status === 0;
    expect(hasPyYaml, 'PyYAML is missing: apt-get install -y python3-yaml').toBe(true);
    const { files } = await build(stories, plainFormat(), { name: 'dpo', beta: 0.1 });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-trl-dpo-'));
    try {
      fs.writeFileSync(path.join(dir, 'dpo_config.yaml'), files.get('dpo_config.yaml')!);
      const run = spawnSync(
        '/usr/bin/python3',
        ['-c', 'import json, yaml; print(json.dumps(yaml.safe_load(open("dpo_config.yaml"))))'],
        { cwd: dir, encoding: 'utf8' },
      );
      expect(run.status, run.stderr).toBe(0);
      expect(JSON.parse(run.stdout)).toEqual(parseYaml(text(files.get('dpo_config.yaml'))));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
