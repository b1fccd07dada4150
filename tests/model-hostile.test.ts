// Hostile model files (issue 10, finding 6): a config.json whose numbers poison the math, a tokenizer
// webtune does not know, a pre-tokenizer regex that backtracks forever, a chat template that loops or
// grows without end, and a shard index naming files outside the model folder. Each is refused by name,
// in bounded time, in the engine and through the CLI.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as transformers from '@huggingface/transformers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readModelFolder } from '../src/node/model-folder';
import { CATALOG } from '../src/hub/catalog';
import { parseModelConfig, ModelConfigError } from '../src/engine/config';
import { ChatTemplateError } from '../src/engine/chat-template';
import {
  ACCEPTED_PATTERNS,
  createTokenizer,
  MAX_ENCODE_CHARS,
  TokenizerFileError,
} from '../src/engine/tokenizer';
import { shardNamesFromIndex } from '../src/hub/shard-index';
import { modelConfig, modelDir } from './helpers/shared';

const ROOT = path.resolve(__dirname, '..');
const FIXTURES = ['stories260K', 'stories260K-chat', 'tiny-random-qwen2', 'tiny-random-qwen3'];
const readJson = (model: string, file: string) =>
  JSON.parse(fs.readFileSync(path.join(modelDir(model), file), 'utf8')) as Record<string, unknown>;

describe('config.json values the math needs', () => {
  const stories = modelConfig('stories260K') as Record<string, unknown>;
  const hostile: [string, unknown, string][] = [
    ['rope_theta', 0, 'positive number'],
    ['rope_theta', -10000, 'positive number'],
    ['rope_theta', 'abc', 'positive number'],
    ['rope_theta', JSON.parse('1e400'), 'positive number'], // Infinity, as JSON.parse reads 1e400
    ['rms_norm_eps', -1, 'positive number'],
    ['rms_norm_eps', 0, 'positive number'],
    ['hidden_size', 0, 'positive integer'],
    ['hidden_size', 64.5, 'positive integer'],
    ['num_attention_heads', 0, 'positive integer'],
    ['num_attention_heads', -8, 'positive integer'],
    ['num_key_value_heads', 0, 'positive integer'],
    ['num_key_value_heads', 3, 'must divide num_attention_heads'],
    ['head_dim', 0, 'positive integer'],
    ['head_dim', 7, 'even integer'],
    ['intermediate_size', -1, 'positive integer'],
    ['num_hidden_layers', 0, 'positive integer'],
    ['vocab_size', -512, 'positive integer'],
    ['max_position_embeddings', 0, 'positive integer'],
    ['max_position_embeddings', -1, 'positive integer'],
  ];
  for (const [field, value, rule] of hostile) {
    it(`refuses ${field} = ${JSON.stringify(value)}, naming the field and its value`, () => {
      const config: Record<string, unknown> = { ...stories, [field]: value };
      expect(() => parseModelConfig(config)).toThrow(ModelConfigError);
      const message = (() => {
        try {
          parseModelConfig(config);
        } catch (e) {
          return (e as Error).message;
        }
        return '';
      })();
      expect(message).toContain(field);
      expect(message).toContain(
        `is ${typeof value === 'number' ? String(config[field]) : JSON.stringify(value)};`,
      );
      expect(message).toContain(rule);
    });
  }

  it('words the message as the issue asks', () => {
    expect(() => parseModelConfig({ ...stories, rope_theta: 0 })).toThrow(
      'config.json: rope_theta is 0; it must be a positive number. The file is damaged or not a Llama-family config.',
    );
  });

  it('still accepts every fixture and catalog model, and fills the defaults', () => {
    for (const model of FIXTURES) expect(parseModelConfig(modelConfig(model)).ropeTheta).toBeGreaterThan(0);
    expect(CATALOG.length).toBeGreaterThan(0);
    const { rope_theta: _t, rms_norm_eps: _e, ...bare } = stories;
    const args = parseModelConfig(bare);
    expect([args.ropeTheta, args.rmsNormEps]).toEqual([10000, 1e-6]);
  });
});

describe('tokenizer files', () => {
  const json = readJson('stories260K', 'tokenizer.json');
  const config = readJson('stories260K', 'tokenizer_config.json');

  it('builds every fixture tokenizer', () => {
    for (const model of FIXTURES) {
      const tokenizer = createTokenizer({
        tokenizerJson: readJson(model, 'tokenizer.json'),
        tokenizerConfig: readJson(model, 'tokenizer_config.json'),
      });
      expect(tokenizer.encode('Once upon a time').length).toBeGreaterThan(1);
    }
  });

  it('accepts the classes the catalog models name (GPT2, Qwen2, Llama, with or without Fast)', () => {
    for (const cls of [
      'GPT2Tokenizer',
      'Qwen2TokenizerFast',
      'LlamaTokenizerFast',
      'PreTrainedTokenizerFast',
    ]) {
      expect(() =>
        createTokenizer({ tokenizerJson: json, tokenizerConfig: { ...config, tokenizer_class: cls } }),
      ).not.toThrow();
    }
  });

  it('refuses a tokenizer class it does not know, by name', () => {
    for (const cls of ['BertTokenizer', 'WhisperTokenizer', 'MarianTokenizer', 'Function']) {
      expect(() =>
        createTokenizer({ tokenizerJson: json, tokenizerConfig: { ...config, tokenizer_class: cls } }),
      ).toThrow(new RegExp(`tokenizer class "${cls}" is not supported`));
    }
  });

  it('refuses a tokenizer model type other than BPE, by name', () => {
    const wordPiece = { ...json, model: { ...(json.model as object), type: 'WordPiece' } };
    expect(() => createTokenizer({ tokenizerJson: wordPiece, tokenizerConfig: config })).toThrow(
      /tokenizer model "WordPiece" is not supported/,
    );
  });

  const withPattern = (section: string, regex: string) => ({
    ...json,
    [section]:
      section === 'normalizer'
        ? { type: 'Replace', pattern: { Regex: regex }, content: ' ' }
        : {
            type: 'Sequence',
            pretokenizers: [
              { type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false },
            ],
          },
  });

  it('refuses regex patterns that backtrack catastrophically (and any pattern it does not know), before building', () => {
    // `(a+)+$` alone would take longer than the age of the universe on 60 characters in V8; it is never
    // compiled.
    for (const regex of ['(a+)+$', '(a|a)*b', 'a*a*a*!', '\\s*\\s*!']) {
      for (const section of ['pre_tokenizer', 'normalizer']) {
        const started = performance.now();
        expect(() =>
          createTokenizer({ tokenizerJson: withPattern(section, regex), tokenizerConfig: config }),
        ).toThrow(TokenizerFileError);
        expect(() =>
          createTokenizer({ tokenizerJson: withPattern(section, regex), tokenizerConfig: config }),
        ).toThrow(new RegExp(`the ${section} pattern`));
        expect(performance.now() - started).toBeLessThan(1000);
      }
    }
  });

  it(
    'bounds one encode() call: the known patterns stay linear on adversarial text at the length limit',
    { timeout: 120_000 },
    () => {
      const qwen = Object.keys(ACCEPTED_PATTERNS).find((p) => ACCEPTED_PATTERNS[p].startsWith('Qwen2'))!;
      const tokenizer = createTokenizer({
        tokenizerJson: { ...withPattern('pre_tokenizer', qwen), normalizer: null },
        tokenizerConfig: config,
      });
      // The worst inputs measured for these patterns: runs of whitespace that never end in a match.
      for (const text of ['\r\n'.repeat(MAX_ENCODE_CHARS / 2), '\t'.repeat(MAX_ENCODE_CHARS - 1) + '!']) {
        const started = performance.now();
        tokenizer.encode(text);
        expect(performance.now() - started).toBeLessThan(15_000);
      }
      const started = performance.now();
      expect(() => tokenizer.encode('a'.repeat(MAX_ENCODE_CHARS + 1))).toThrow(
        /too long to tokenize at once/,
      );
      expect(performance.now() - started).toBeLessThan(100);
    },
  );
});

describe('chat templates', () => {
  const json = readJson('stories260K-chat', 'tokenizer.json');
  const config = readJson('stories260K-chat', 'tokenizer_config.json');
  const withTemplate = (chat_template: string) =>
    createTokenizer({ tokenizerJson: json, tokenizerConfig: { ...config, chat_template } });
  const turns = [
    { role: 'system', content: 'Be kind.' },
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: 'Hello!' },
    { role: 'user', content: 'Who is Tom?' },
  ];

  /** Renders and returns how long it took; the render must throw a ChatTemplateError. */
  function refused(template: string, pattern: RegExp): number {
    const tokenizer = withTemplate(template);
    const started = performance.now();
    let error: unknown;
    try {
      tokenizer.applyChatTemplate([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true });
    } catch (e) {
      error = e;
    }
    const ms = performance.now() - started;
    expect(error).toBeInstanceOf(ChatTemplateError);
    expect((error as Error).message).toMatch(pattern);
    return ms;
  }

  it('renders real templates exactly as transformers.js does', () => {
    const namespaced = [
      "{%- set ns = namespace(last=-1) %}{%- for m in messages %}{%- if m.role == 'user' %}{%- set ns.last = loop.index0 %}{%- endif %}{%- endfor %}",
      "{{ bos_token }}{%- for m in messages %}{{ '<|' ~ m['role'] ~ '|>' }}{{ m.content | trim }}{% if loop.index0 == ns.last %}*{% endif %}{{ eos_token }}\n{%- endfor %}",
      "{%- if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}{{ (messages | length) ~ ' ' ~ range(3) | join(',') ~ ' ' ~ ('x' if tools is none) }}",
    ].join('');
    for (const template of [String(config.chat_template), namespaced]) {
      const inner = new transformers.LlamaTokenizer(json, { ...config, chat_template: template });
      for (const addGenerationPrompt of [true, false]) {
        const ours = withTemplate(template).applyChatTemplate(turns, { addGenerationPrompt });
        const theirs = inner.apply_chat_template(turns as never, {
          tokenize: false,
          add_generation_prompt: addGenerationPrompt,
        });
        expect(ours).toBe(theirs);
      }
    }
  });

  it('refuses range(10**9) at once instead of building a billion numbers', () => {
    expect(
      refused('{% for i in range(10**9) %}x{% endfor %}', /range\(\) for 1000000000 numbers/),
    ).toBeLessThan(5000);
  });

  it('stops nested loops (10^9 iterations of small ranges) within seconds', () => {
    const template =
      '{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}x{% endfor %}{% endfor %}{% endfor %}';
    expect(refused(template, /more than [\d,]+ steps|ran for more than/)).toBeLessThan(8000);
  });

  it('stops a prompt that grows past the output cap (doubling a string)', () => {
    const template =
      '{% set ns = namespace(s="x") %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}';
    expect(refused(template, /made a text of [\d,]+ characters/)).toBeLessThan(5000);
  });

  it('stops a loop that writes a large message over and over', () => {
    const tokenizer = withTemplate('{% for i in range(100000) %}{{ messages[0].content }}{% endfor %}');
    const started = performance.now();
    expect(() => tokenizer.applyChatTemplate([{ role: 'user', content: 'y'.repeat(100_000) }])).toThrow(
      ChatTemplateError,
    );
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it('turns raise_exception into a ChatTemplateError', () => {
    refused(
      "{{ raise_exception('only user and assistant roles') }}",
      /refused the conversation: only user and assistant roles/,
    );
  });
});

describe('shard index naming files outside the model folder', () => {
  let tmp = '';
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-hostile-'));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  /** stories260K copied to `name`, then changed by `edit` (which gets the folder). */
  function hostileFolder(name: string, edit: (dir: string) => void): string {
    const dir = path.join(tmp, name);
    fs.cpSync(modelDir('stories260K'), dir, { recursive: true });
    edit(dir);
    return dir;
  }
  const shardedAs = (files: string[]) => (dir: string) => {
    fs.renameSync(path.join(dir, 'model.safetensors'), path.join(dir, 'model-00001-of-00001.safetensors'));
    const weight_map = Object.fromEntries(files.map((f, i) => [`layer.${i}.weight`, f]));
    fs.writeFileSync(
      path.join(dir, 'model.safetensors.index.json'),
      JSON.stringify({
        metadata: {},
        weight_map: { 'model.embed_tokens.weight': 'model-00001-of-00001.safetensors', ...weight_map },
      }),
    );
  };

  it('refuses ../../etc/passwd and other escapes in a local folder, by name', () => {
    for (const bad of [
      '../../etc/passwd',
      '../../../etc/passwd.safetensors',
      '/etc/passwd.safetensors',
      'sub/../../x.safetensors',
      '..\\..\\x.safetensors',
    ]) {
      const dir = hostileFolder(`escape-${Math.random().toString(36).slice(2)}`, shardedAs([bad]));
      expect(() => readModelFolder(dir)).toThrow(JSON.stringify(bad));
    }
  });

  it('does not read a real file beside the folder that the index points to', () => {
    // Without the check this would load: the file exists and is valid safetensors.
    fs.copyFileSync(
      path.join(modelDir('stories260K'), 'model.safetensors'),
      path.join(tmp, 'secret.safetensors'),
    );
    const dir = hostileFolder('beside', shardedAs(['../secret.safetensors']));
    expect(() => readModelFolder(dir)).toThrow(
      /"\.\.\/secret\.safetensors" as a weights file, but it leads out of the model folder/,
    );
  });

  it('still reads a sound sharded folder', () => {
    const dir = hostileFolder('sound', shardedAs([]));
    expect(readModelFolder(dir).weights).toHaveLength(1);
  });

  it('applies the same check to a Hub index', () => {
    expect(() => shardNamesFromIndex(JSON.stringify({ weight_map: { a: '../../etc/passwd' } }))).toThrow(
      /"\.\.\/\.\.\/etc\/passwd"/,
    );
    expect(
      shardNamesFromIndex(
        JSON.stringify({
          weight_map: { a: 'model-1.safetensors', b: 'model-2.safetensors', c: 'model-1.safetensors' },
        }),
      ),
    ).toEqual(['model-1.safetensors', 'model-2.safetensors']);
  });

  describe('through the CLI: one line naming the problem, in seconds', () => {
    function scoreFails(dir: string): string {
      const started = Date.now();
      const run = spawnSync(
        process.execPath,
        [path.join(ROOT, 'bin', 'webtune.mjs'), 'score', '--model', dir, '--text', 'hi'],
        { cwd: ROOT, encoding: 'utf8', timeout: 120_000 },
      );
      expect(run.status, run.stderr).not.toBe(0);
      expect(run.status).not.toBeNull();
      expect(run.stdout).toBe('');
      const lines = run.stderr.trimEnd().split('\n');
      expect(lines, run.stderr).toHaveLength(1);
      // The bundle may be rebuilt on the first run; the check itself is immediate.
      expect(Date.now() - started).toBeLessThan(60_000);
      return lines[0];
    }
    const editJson = (file: string, change: (value: Record<string, unknown>) => void) => (dir: string) => {
      const value = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as Record<string, unknown>;
      change(value);
      fs.writeFileSync(path.join(dir, file), JSON.stringify(value));
    };

    it('rope_theta 0', { timeout: 120_000 }, () => {
      const line = scoreFails(
        hostileFolder(
          'cli-rope',
          editJson('config.json', (c) => {
            c.rope_theta = 0;
          }),
        ),
      );
      expect(line).toContain('rope_theta is 0; it must be a positive number');
    });

    it('rms_norm_eps -1', { timeout: 120_000 }, () => {
      const line = scoreFails(
        hostileFolder(
          'cli-eps',
          editJson('config.json', (c) => {
            c.rms_norm_eps = -1;
          }),
        ),
      );
      expect(line).toContain('rms_norm_eps is -1; it must be a positive number');
    });

    it('an unknown tokenizer class', { timeout: 120_000 }, () => {
      const line = scoreFails(
        hostileFolder(
          'cli-class',
          editJson('tokenizer_config.json', (c) => {
            c.tokenizer_class = 'BertTokenizer';
          }),
        ),
      );
      expect(line).toContain('tokenizer class "BertTokenizer" is not supported');
    });

    it('a backtracking pre-tokenizer regex', { timeout: 120_000 }, () => {
      const line = scoreFails(
        hostileFolder(
          'cli-regex',
          editJson('tokenizer.json', (t) => {
            t.pre_tokenizer = {
              type: 'Split',
              pattern: { Regex: '(\\s+)+$' },
              behavior: 'Isolated',
              invert: false,
            };
          }),
        ),
      );
      expect(line).toContain('the pre_tokenizer pattern "(\\\\s+)+$" is not one webtune runs');
    });

    it('a shard index naming ../../etc/passwd', { timeout: 120_000 }, () => {
      const line = scoreFails(hostileFolder('cli-index', shardedAs(['../../etc/passwd'])));
      expect(line).toContain('"../../etc/passwd"');
    });
  });
});
