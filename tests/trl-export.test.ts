/**
 * The `trl` export: the folder a person runs with `trl sft --config sft_config.yaml`. Its JSONL rows are
 * the examples webtune trained on (same texts, same split, same tokens once TRL puts them together the way
 * its SFTTrainer does), and its YAML parses — with the `yaml` package and, when present, with PyYAML, which
 * TRL itself uses — to the run's settings, special characters included.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  chatTemplateFormat,
  detectLayout,
  parseDataset,
  plainFormat,
  type ChatMessage,
  type Dataset,
  type Mapping,
  type PromptFormat,
} from '../src/data';
import { buildTrainingSet, type TrainingSet } from '../src/data/training-set';
import type { LoraSettings } from '../src/engine/lora';
import { learningRateAt } from '../src/engine/schedule';
import type { Tokenizer } from '../src/engine/tokenizer';
import { memoryFolder } from '../src/formats/sink';
import {
  MIN_LR_RATIO,
  sftConfigYaml,
  trlBundleFiles,
  trlExamples,
  trlRow,
  writeTrlBundle,
  type TrlBundleInput,
  type TrlRunSettings,
} from '../src/formats/trl';
import { pyFloat } from '../src/formats/trl-yaml';
import { dataFile, loadTokenizer } from './fixtures/data/shared';

const stories = loadTokenizer('stories260K');
const storiesChat = loadTokenizer('stories260K-chat');
const chatFormat = chatTemplateFormat(storiesChat);
const EOS_TEXT = '</s>'; // tokenizer_config.json's eos_token for both stories260K models

const read = (name: string) => parseDataset(fs.readFileSync(dataFile(name), 'utf8'), name);
const text = (bytes: Uint8Array | undefined) => {
  if (!bytes) throw new Error('file not written');
  return new TextDecoder().decode(bytes);
};
const jsonl = (bytes: Uint8Array | undefined) =>
  text(bytes)
    .split('\n')
    .filter((line) => line !== '')
    .map(
      (line) => JSON.parse(line) as { prompt: string | ChatMessage[]; completion: string | ChatMessage[] },
    );

const SETTINGS: TrlRunSettings = {
  learningRate: 3e-4,
  epochs: 4,
  batchSize: 3,
  gradAccum: 2,
  maxLength: 96,
  warmupSteps: 5,
  weightDecay: 0.01,
  seed: 7,
  maxGradNorm: 1,
  valSplit: 0.25,
  keep: 'best',
};
const LORA: LoraSettings = {
  rank: 4,
  alpha: 12,
  dropout: 0.1,
  targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
  useRslora: true,
};

interface Built {
  dataset: Dataset;
  mapping: Mapping;
  format: PromptFormat;
  set: TrainingSet;
  input: TrlBundleInput;
  files: Map<string, Uint8Array>;
}

async function build(
  name: string,
  tokenizer: Tokenizer,
  format: PromptFormat,
  settings = SETTINGS,
  lora = LORA,
  dataset = read(name),
): Promise<Built> {
  // support-tickets.csv (ticket, department) has no recognised layout: its first column is the prompt.
  const mapping: Mapping = detectLayout(dataset.columns) ?? {
    kind: 'template',
    promptTemplate: `{${dataset.columns[0]}}`,
    completionTemplate: `{${dataset.columns[1]}}`,
  };
  const set = buildTrainingSet(dataset, tokenizer, {
    mapping,
    format,
    maxLength: settings.maxLength,
    valSplit: settings.valSplit ?? 0,
    batchSize: settings.batchSize,
    gradAccum: settings.gradAccum,
    seed: settings.seed,
  });
  const input: TrlBundleInput = {
    model: 'HuggingFaceTB/SmolLM2-135M-Instruct',
    name: `run on ${name}`,
    datasetName: name,
    rows: dataset.rows,
    mapping,
    chatTemplate: format.chat !== null,
    train: set.train.map((p) => p.example),
    validation: set.validation.map((p) => p.example),
    settings,
    lora,
  };
  const folder = memoryFolder();
  await writeTrlBundle(folder, input);
  return { dataset, mapping, format, set, input, files: folder.files };
}

/** TRL's cosine_with_min_lr multiplier (transformers' optimization.py), written out from its definition. */
function hfCosineWithMinLr(step: number, warmup: number, total: number, minLrRate: number): number {
  if (step < warmup) return step / Math.max(1, warmup);
  const progress = (step - warmup) / Math.max(1, total - warmup);
  const factor = 0.5 * (1 + Math.cos(Math.PI * 0.5 * 2 * progress));
  return factor * (1 - minLrRate) + minLrRate;
}

const hasPyYaml = spawnSync('/usr/bin/python3', ['-c', 'import yaml'], { encoding: 'utf8' }).status === 0;
const INSTALL_PYYAML = 'apt-get install -y python3-yaml';

/**
 * Writes the bundle to a temporary folder and runs a Python script in it; returns its stdout parsed as JSON.
 */
function python(files: Map<string, Uint8Array>, script: string): unknown {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-trl-'));
  try {
    for (const [name, bytes] of files) {
      fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      fs.writeFileSync(path.join(dir, name), bytes);
    }
    const run = spawnSync('/usr/bin/python3', ['-c', script], { cwd: dir, encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`python failed: ${run.stderr}`);
    return JSON.parse(run.stdout);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('sft_config.yaml', () => {
  it('parses to the run’s settings, each under its TRL field name', async () => {
    const settings: TrlRunSettings = { ...SETTINGS, learningRate: 3e-7, evalEvery: 5, patience: 2 };
    const { files, input } = await build('best-friends.csv', stories, plainFormat(), settings, {
      ...LORA,
      alpha: 16.5,
    });
    const config = parseYaml(text(files.get('sft_config.yaml'))) as Record<string, unknown>;
    expect(config).toMatchObject({
      model_name_or_path: 'HuggingFaceTB/SmolLM2-135M-Instruct',
      dataset_name: './data',
      dataset_train_split: 'train',
      dataset_test_split: 'validation',
      output_dir: 'output/run-on-best-friends.csv',
      learning_rate: 3e-7,
      num_train_epochs: 4,
      per_device_train_batch_size: 3,
      per_device_eval_batch_size: 3,
      gradient_accumulation_steps: 2,
      max_length: 96,
      lr_scheduler_type: 'cosine_with_min_lr',
      lr_scheduler_kwargs: { min_lr_rate: 0.1 },
      warmup_steps: 5,
      weight_decay: 0.01,
      max_grad_norm: 1,
      seed: 7,
      use_peft: true,
      lora_r: 4,
      lora_alpha: 16.5,
      lora_dropout: 0.1,
      lora_target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
      use_rslora: true,
      completion_only_loss: true,
      packing: false,
      eval_strategy: 'steps',
      eval_steps: 5,
      save_strategy: 'steps',
      save_steps: 5,
      load_best_model_at_end: true,
      metric_for_best_model: 'eval_loss',
      greater_is_better: false,
      bf16: true,
      report_to: 'none',
    });
    expect(input.validation.length).toBeGreaterThan(0);
    // Comments say where values came from, and what TRL cannot carry.
    const yamlText = text(files.get('sft_config.yaml'));
    expect(yamlText).toMatch(/# .*webtune's learning rate/);
    expect(yamlText).toMatch(/--patience 2/);
    expect(yamlText).toMatch(/k\/5 of the peak/);
  });

  it('without a validation split: no eval split, no evaluation, no best-model reload, no validation.jsonl', async () => {
    const { files } = await build('best-friends.csv', stories, plainFormat(), { ...SETTINGS, valSplit: 0 });
    expect([...files.keys()].sort()).toEqual(trlBundleFiles(false).sort());
    expect(files.has('data/validation.jsonl')).toBe(false);
    const config = parseYaml(text(files.get('sft_config.yaml'))) as Record<string, unknown>;
    expect(config.eval_strategy).toBe('no');
    expect(config).not.toHaveProperty('dataset_test_split');
    expect(config).not.toHaveProperty('load_best_model_at_end');
    expect(config).not.toHaveProperty('per_device_eval_batch_size');
  });

  it('keep last: no best-model reload; default evaluation is per epoch', async () => {
    const { files } = await build('best-friends.csv', stories, plainFormat(), { ...SETTINGS, keep: 'last' });
    const config = parseYaml(text(files.get('sft_config.yaml'))) as Record<string, unknown>;
    expect(config.eval_strategy).toBe('epoch');
    expect(config.save_strategy).toBe('epoch');
    expect(config).not.toHaveProperty('load_best_model_at_end');
  });

  it('cosine_with_min_lr with min_lr_rate is webtune’s schedule after warmup, and one step behind it during warmup', () => {
    const total = 40;
    const warmup = 6;
    const peak = 2e-3;
    for (let step = warmup; step < total; step++) {
      expect(peak * hfCosineWithMinLr(step, warmup, total, MIN_LR_RATIO)).toBeCloseTo(
        learningRateAt(step, total, peak, warmup),
        12,
      );
    }
    for (let step = 0; step < warmup; step++) {
      expect(peak * hfCosineWithMinLr(step + 1, warmup, total, MIN_LR_RATIO)).toBeCloseTo(
        learningRateAt(step, total, peak, warmup),
        12,
      );
    }
    // Without warmup the two agree at every step.
    for (let step = 0; step < total; step++)
      expect(peak * hfCosineWithMinLr(step, 0, total, MIN_LR_RATIO)).toBeCloseTo(
        learningRateAt(step, total, peak, 0),
        12,
      );
  });

  it('floats are written so PyYAML reads them as floats (a decimal point, a signed exponent)', () => {
    expect(pyFloat(1e-7)).toBe('1.0e-7');
    expect(pyFloat(2.5e-7)).toBe('2.5e-7');
    expect(pyFloat(0.002)).toBe('0.002');
    expect(pyFloat(1e21)).toBe('1.0e+21');
    for (const value of [1e-7, 2.5e-7, 0.002, 1e21, 16.5])
      expect(parseYaml(`v: ${pyFloat(value)}`)).toEqual({ v: value });
  });
});

describe('plain-text datasets: the JSONL rows are the texts webtune trained on', () => {
  for (const name of ['best-friends.csv', 'support-tickets.csv', 'alpaca-mini.jsonl']) {
    it(`${name}: same split, same prompt + completion, same tokens and mask as TRL builds them`, async () => {
      const { files, set, dataset, mapping, format } = await build(name, stories, plainFormat());
      const train = jsonl(files.get('data/train.jsonl'));
      const validation = jsonl(files.get('data/validation.jsonl'));
      expect(train).toHaveLength(set.train.length);
      expect(validation).toHaveLength(set.validation.length);
      expect(validation.length).toBeGreaterThan(0);
      for (const [rows, pairs] of [
        [train, set.train],
        [validation, set.validation],
      ] as const) {
        rows.forEach((row, i) => {
          const { example, encoded } = pairs[i];
          expect(typeof row.prompt).toBe('string');
          expect({ prompt: row.prompt, completion: row.completion }).toEqual({
            prompt: example.prompt,
            completion: example.completion,
          });
          // TRL: add_eos appends the EOS text to the completion, then tokenises prompt + completion with
          // special tokens (BOS); the completion mask starts after the prompt's own tokens.
          const ids = stories
            .encode(`${row.prompt as string}${row.completion as string}${EOS_TEXT}`, {
              addSpecialTokens: true,
            })
            .slice(0, SETTINGS.maxLength);
          const promptLength = stories.encode(row.prompt as string, { addSpecialTokens: true }).length;
          expect(ids).toEqual(encoded.ids);
          expect(ids.map((_, t) => (t >= promptLength ? 1 : 0))).toEqual(encoded.completionMask);
          // And the text webtune tokenised, decoded back.
          expect(stories.decode(encoded.ids, { skipSpecialTokens: true })).toBe(
            example.prompt + example.completion,
          );
        });
      }
      // The split needs no tokenizer: the same examples, in the same order.
      const split = trlExamples(dataset, mapping, format, SETTINGS.valSplit!, SETTINGS.seed);
      expect(split.train.map((e) => e.row)).toEqual(set.train.map((p) => p.example.row));
      expect(split.validation.map((e) => e.row)).toEqual(set.validation.map((p) => p.example.row));
    });
  }

  it('conversations without a chat template are plain "User: …\\nAssistant: " prompts', async () => {
    const { files, set } = await build('chat-mini.jsonl', stories, plainFormat());
    const train = jsonl(files.get('data/train.jsonl'));
    expect(train.map((r) => r.prompt)).toEqual(set.train.map((p) => p.example.prompt));
    expect(train.map((r) => r.completion)).toEqual(set.train.map((p) => p.example.completion));
    expect(train[0].prompt).toMatch(/^System: .*\nUser: .*\nAssistant: $/s);
  });
});

describe('whole conversations: one TRL row per trained assistant turn', () => {
  it('sharegpt.jsonl: each turn after the turns before it, rendered as TRL renders it, is webtune’s text', async () => {
    const { files, set, input } = await build('sharegpt.jsonl', storiesChat, chatFormat, {
      ...SETTINGS,
      valSplit: 0,
    });
    const train = jsonl(files.get('data/train.jsonl'));
    // 4 conversations of 2, 1, 3 and 1 answers.
    expect(train).toHaveLength(7);
    let at = 0;
    for (const { example } of set.train) {
      const text = example.segments.map((s) => s.text).join('');
      const trained = example.segments.filter((s) => s.trained);
      for (const segment of trained) {
        const row = train[at++];
        const prompt = row.prompt as ChatMessage[];
        const completion = row.completion as ChatMessage[];
        // What TRL masks is the prompt with the generation prompt; it trains on what the turn adds, which is
        // the trained segment of webtune's text, in the same place.
        const promptText = storiesChat.applyChatTemplate(prompt, { addGenerationPrompt: true });
        const fullText = storiesChat.applyChatTemplate([...prompt, ...completion], {
          addGenerationPrompt: false,
        });
        expect(fullText.slice(promptText.length)).toBe(segment.text);
        expect(text.startsWith(fullText)).toBe(true);
      }
    }
    expect(at).toBe(train.length);
    const readme = new TextDecoder().decode(files.get('README.md'));
    expect(readme).toContain('as\n7 rows rather than 4 sequences');
    expect(sftConfigYaml(input)).toContain(
      'webtune trained every assistant turn of 2 conversations in one sequence',
    );
  });
});

describe('chat-template datasets: conversational rows that TRL renders to webtune’s text', () => {
  for (const name of ['chat-mini.jsonl', 'alpaca-mini.jsonl', 'support-tickets.csv']) {
    it(`${name}: prompt messages + the answer, rendered through the chat template, are webtune's text`, async () => {
      const { files, set, dataset, mapping, format } = await build(name, storiesChat, chatFormat);
      const train = jsonl(files.get('data/train.jsonl'));
      const validation = jsonl(files.get('data/validation.jsonl'));
      expect(train).toHaveLength(set.train.length);
      expect(validation).toHaveLength(set.validation.length);
      const endOfTurn = chatFormat.chat!.endOfTurn;
      for (const [rows, pairs] of [
        [train, set.train],
        [validation, set.validation],
      ] as const) {
        rows.forEach((row, i) => {
          const { example, encoded } = pairs[i];
          const prompt = row.prompt as ChatMessage[];
          const completion = row.completion as ChatMessage[];
          expect(Array.isArray(prompt) && Array.isArray(completion)).toBe(true);
          expect(completion).toHaveLength(1);
          expect(completion[0].role).toBe('assistant');
          // What TRL masks: the prompt with the generation prompt; what it trains on: the rest of the
          // conversation.
          const promptText = storiesChat.applyChatTemplate(prompt, { addGenerationPrompt: true });
          const fullText = storiesChat.applyChatTemplate([...prompt, ...completion], {
            addGenerationPrompt: false,
          });
          expect(promptText).toBe(example.prompt);
          expect(promptText + completion[0].content + endOfTurn).toBe(example.prompt + example.completion);
          expect(fullText).toBe(example.prompt + example.completion);
          // The tokens webtune trained on are that text's (BOS, as webtune's encoder adds it; the template's
          // </s> ends the turn, so no second EOS).
          expect(
            storiesChat.encode(fullText, { addSpecialTokens: true }).slice(0, SETTINGS.maxLength),
          ).toEqual(encoded.ids);
          // TRL's apply_chat_template(tokenize=True) adds no special tokens: its ids are webtune's without
          // the tokenizer's BOS (the difference the README names).
          const bos = storiesChat.addsBos && storiesChat.bosTokenId !== null ? [storiesChat.bosTokenId] : [];
          expect(
            [...bos, ...storiesChat.encode(fullText, { addSpecialTokens: false })].slice(
              0,
              SETTINGS.maxLength,
            ),
          ).toEqual(encoded.ids);
        });
      }
      if (mapping.kind === 'chat') {
        // Whole conversations: the prompt is every message before the last assistant one, system included.
        const row = dataset.rows[set.train[0].example.row].messages as ChatMessage[];
        expect([...(train[0].prompt as ChatMessage[]), ...(train[0].completion as ChatMessage[])]).toEqual(
          row,
        );
      }
      const split = trlExamples(dataset, mapping, format, SETTINGS.valSplit!, SETTINGS.seed);
      expect(split.validation.map((e) => e.row)).toEqual(set.validation.map((p) => p.example.row));
    });
  }

  it('a row that does not give the example’s answer is refused (the rows must be those the examples came from)', () => {
    const dataset = read('chat-mini.jsonl');
    const mapping = detectLayout(dataset.columns)!;
    const { train } = trlExamples(dataset, mapping, chatFormat, 0, 0);
    expect(() => trlRow({ ...train[0], row: train[1].row }, dataset.rows, mapping, true)).toThrow(
      /does not match/,
    );
    expect(() => trlRow({ ...train[0], row: dataset.rows.length }, dataset.rows, mapping, true)).toThrow(
      /has no row/,
    );
  });
});

describe('special characters survive the round trip', () => {
  const tricky = [
    {
      prompt: 'He said "hi" & left: #1 — ok?',
      completion: 'It\'s\n"quoted"\ttabbed\\back # not a comment: really',
    },
    { prompt: 'ünïcödé 日本語 😀 — yes', completion: 'no' },
    { prompt: 'key: value # comment', completion: '- a list?\n  - nested: {braces} [brackets]\r\n' },
    { prompt: '', completion: 'on' },
  ];
  const dataset = parseDataset(tricky.map((r) => JSON.stringify(r)).join('\n'), 'tricky.jsonl');
  const weird = { model: 'org/model: v2 # "quoted"', name: 'yes' };

  it('in the JSONL and the YAML, read back by the yaml package', async () => {
    const { files, set } = await build(
      'tricky.jsonl',
      stories,
      plainFormat(),
      { ...SETTINGS, valSplit: 0 },
      LORA,
      dataset,
    );
    const rows = jsonl(files.get('data/train.jsonl'));
    expect(rows.map((r) => r.prompt + '\u0000' + r.completion).sort()).toEqual(
      set.train.map((p) => p.example.prompt + '\u0000' + p.example.completion).sort(),
    );
    expect(rows.some((r) => (r.completion as string).includes('# not a comment: really'))).toBe(true);

    const folder = memoryFolder();
    await writeTrlBundle(folder, {
      ...(await build('tricky.jsonl', stories, plainFormat(), { ...SETTINGS, valSplit: 0 }, LORA, dataset))
        .input,
      ...weird,
    });
    const config = parseYaml(text(folder.files.get('sft_config.yaml'))) as Record<string, unknown>;
    expect(config.model_name_or_path).toBe(weird.model);
    expect(config.output_dir).toBe('output/yes');
    const readme = text(folder.files.get('README.md'));
    expect(readme).toContain(weird.model);
  });

  it('PyYAML (what TRL parses the config with) reads the same values as the yaml package', async () => {
    if (!hasPyYaml)
      throw new Error(
        `/usr/bin/python3 cannot import yaml, which reads the config as TRL does: ${INSTALL_PYYAML}`,
      );
    const { input } = await build(
      'tricky.jsonl',
      stories,
      plainFormat(),
      { ...SETTINGS, learningRate: 2.5e-7 },
      LORA,
      dataset,
    );
    const folder = memoryFolder();
    // "yes" and "on" are booleans to YAML 1.1 readers unless quoted.
    await writeTrlBundle(folder, { ...input, model: 'on', name: weird.model });
    const names = ['sft_config.yaml', 'accelerate/deepspeed_zero3.yaml', 'accelerate/fsdp.yaml'];
    const fromPython = python(
      folder.files,
      `import json, yaml\nprint(json.dumps({n: yaml.safe_load(open(n, encoding="utf-8")) for n in ${JSON.stringify(names)}}))`,
    ) as Record<string, Record<string, unknown>>;
    for (const name of names) expect(fromPython[name]).toEqual(parseYaml(text(folder.files.get(name))));
    expect(fromPython['sft_config.yaml'].model_name_or_path).toBe('on');
    expect(fromPython['sft_config.yaml'].learning_rate).toBe(2.5e-7);
    expect(fromPython['accelerate/deepspeed_zero3.yaml'].downcast_bf16).toBe('no');
    // And Python's json reads the JSONL rows as JavaScript wrote them.
    const rows = python(
      folder.files,
      `import json\nprint(json.dumps([json.loads(l) for l in open("data/train.jsonl", encoding="utf-8")]))`,
    );
    expect(rows).toEqual(jsonl(folder.files.get('data/train.jsonl')));
  });
});

describe('the bundle', () => {
  it('holds the data, the config, both accelerate configs and a README that says how to run it and bring the adapter back', async () => {
    const { files, input } = await build('chat-mini.jsonl', storiesChat, chatFormat);
    expect([...files.keys()]).toEqual(trlBundleFiles(true));
    const readme = text(files.get('README.md'));
    for (const needle of [
      'pip install',
      'trl sft --config sft_config.yaml',
      '--accelerate_config accelerate/deepspeed_zero3.yaml',
      'accelerate/fsdp.yaml',
      'adapter_model.safetensors',
      '--adapter output/',
      '--chat',
      'conversational',
      '| `data/validation.jsonl` |',
    ]) {
      expect(readme).toContain(needle);
    }
    const zero3 = parseYaml(text(files.get('accelerate/deepspeed_zero3.yaml'))) as Record<string, unknown>;
    expect(zero3).toMatchObject({
      distributed_type: 'DEEPSPEED',
      mixed_precision: 'bf16',
      deepspeed_config: { zero_stage: 3 },
    });
    const fsdp = parseYaml(text(files.get('accelerate/fsdp.yaml'))) as Record<string, unknown>;
    expect(fsdp).toMatchObject({ distributed_type: 'FSDP', fsdp_config: { fsdp_version: 2 } });
    expect(input.train.length).toBeGreaterThan(0);
  });

  it('refuses an empty training split and unusable settings before writing anything', async () => {
    const { input } = await build('best-friends.csv', stories, plainFormat());
    const folder = memoryFolder();
    await expect(writeTrlBundle(folder, { ...input, train: [] })).rejects.toThrow(
      /at least one training example/,
    );
    await expect(
      writeTrlBundle(folder, { ...input, settings: { ...input.settings, epochs: 1.5 } }),
    ).rejects.toThrow(/epochs/);
    await expect(
      writeTrlBundle(folder, { ...input, lora: { ...input.lora, rank: Number.NaN } }),
    ).rejects.toThrow(/rank/);
    expect(folder.files.size).toBe(0);
  });
});
