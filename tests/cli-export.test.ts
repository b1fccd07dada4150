// `webtune export` as a person runs it: an adapter trained with `webtune train`, exported in each format,
// then read by the tools it is for — llama.cpp continues exactly like `webtune generate --adapter`, the
// merged folder scores like base + adapter under webtune and the PyTorch reference, and the TRL bundle
// carries the settings train was given. The commands run in this process (tests/helpers/cli.ts); refusals are
// checked on exportCommand itself.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { CliError } from '../src/cli/errors';
import { exportCommand } from '../src/cli/export';
import type { Output } from '../src/cli/output';
import { loadTokenizer } from '../src/engine/load';
import { jsonResult, runCli } from './helpers/cli';
import { readGguf } from './helpers/gguf-reader';
import { openGguf } from './helpers/llama-cpp';
import { hasTorch, INSTALL_TORCH, referenceScore } from './helpers/reference';
import { dataFile, maxAbsDiff, modelDir } from './helpers/shared';

const STORIES = modelDir('stories260K');
const DATA = dataFile('best-friends.csv');

let tmp = '';
const at = (name: string) => path.join(tmp, name);

/** A successful --json run of `webtune ...args` in this process: its result object. */
const webtune = async (...args: string[]) => jsonResult(await runCli(args));

/** A training prompt formatted as train formats it (the CSV's question, then the newline separator). */
const PROMPT = 'Who is Tom?\n';

describe('webtune export', () => {
  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-export-'));
    await webtune(
      'train',
      '--model',
      STORIES,
      '--data',
      DATA,
      '--out',
      at('friends.zip'),
      '--epochs',
      '3',
      '--lr',
      '0.01',
      '--rank',
      '4',
      '--alpha',
      '8',
      '--targets',
      'q_proj,v_proj',
      '--val-split',
      '0.2',
      '--seed',
      '2',
      '--json',
    );
  }, 300_000);
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const tokenizer = loadTokenizer({
    tokenizerJson: fs.readFileSync(path.join(STORIES, 'tokenizer.json'), 'utf8'),
    tokenizerConfig: fs.readFileSync(path.join(STORIES, 'tokenizer_config.json'), 'utf8'),
  });

  it('gguf and gguf-lora: llama.cpp continues a training prompt exactly like webtune generate --adapter', async () => {
    const ours = (await webtune(
      'generate',
      '--model',
      STORIES,
      '--adapter',
      at('friends.zip'),
      '--prompt',
      PROMPT,
      '--max-new-tokens',
      '24',
      '--json',
    )) as { tokens: number[] };
    const base = (await webtune(
      'generate',
      '--model',
      STORIES,
      '--prompt',
      PROMPT,
      '--max-new-tokens',
      '24',
      '--json',
    )) as { tokens: number[] };
    expect(ours.tokens, 'the adapter must change the answer, or this test proves nothing').not.toEqual(
      base.tokens,
    );
    const merged = await webtune(
      'export',
      '--model',
      STORIES,
      '--adapter',
      at('friends.zip'),
      '--format',
      'gguf',
      '--dtype',
      'f32',
      '--out',
      at('gguf'),
      '--json',
    );
    expect((merged.files as { name: string }[]).map((f) => f.name)).toEqual([
      'model.gguf',
      'adapter.gguf',
      'Modelfile',
      'README.md',
    ]);
    await webtune(
      'export',
      '--model',
      STORIES,
      '--adapter',
      at('friends.zip'),
      '--format',
      'gguf-lora',
      '--dtype',
      'f32',
      '--out',
      at('gguf-lora'),
      '--json',
    );

    const ids = tokenizer.encode(PROMPT);
    const runs = [
      await openGguf(at('gguf/model.gguf')),
      await openGguf(at('gguf-lora/base.gguf'), { lora: at('gguf-lora/adapter.gguf') }),
    ];
    try {
      for (const run of runs) {
        expect([run.model.tokens.bos, ...run.model.tokenize(PROMPT, false)]).toEqual(ids);
        expect(await run.greedy(ids, 24)).toEqual(ours.tokens);
      }
      // The base GGUF alone answers like the base model.
      const plain = await openGguf(at('gguf-lora/base.gguf'));
      try {
        expect(await plain.greedy(ids, 24)).toEqual(base.tokens);
      } finally {
        await plain.dispose();
      }
    } finally {
      for (const run of runs) await run.dispose();
    }
    const modelfile = fs.readFileSync(at('gguf-lora/Modelfile'), 'utf8');
    expect(modelfile).toMatch(/^FROM \.\/base\.gguf\nADAPTER \.\/adapter\.gguf\n/);
  }, 300_000);

  it('gguf --dtype q8_0: model.gguf in Q8_0 (f16 where rows are not whole blocks), the adapter in f16', async () => {
    const exportQ8 = (format: string) =>
      webtune(
        'export',
        ...['--model', STORIES, '--adapter', at('friends.zip'), '--format', format, '--dtype', 'q8_0'],
        ...['--out', at(`${format}-q8_0`), '--json'],
      );
    await exportQ8('gguf');
    await exportQ8('gguf-lora');
    const read = (file: string) => readGguf(new Uint8Array(fs.readFileSync(at(file))));
    for (const file of ['gguf-q8_0/model.gguf', 'gguf-lora-q8_0/base.gguf']) {
      const model = read(file);
      expect(model.metadata.get('general.file_type')!.value, file).toBe(7);
      // f32 vectors, Q8_0 matrices, and f16 for ffn_down (rows of 172).
      expect(new Set(model.tensors.map((t) => t.type)), file).toEqual(new Set([0, 1, 8]));
    }
    for (const file of ['gguf-q8_0/adapter.gguf', 'gguf-lora-q8_0/adapter.gguf']) {
      const adapter = read(file);
      expect(adapter.metadata.get('general.file_type')!.value, file).toBe(1);
      expect(
        adapter.tensors.every((t) => t.type === 1),
        file,
      ).toBe(true);
    }
    expect(fs.readFileSync(at('gguf-q8_0/README.md'), 'utf8')).toContain('(q8_0)');
    // llama.cpp applies the f16 adapter on the Q8_0 base (its answer is not the base's alone).
    const ids = tokenizer.encode(PROMPT);
    const base = await openGguf(at('gguf-lora-q8_0/base.gguf'));
    const adapted = await openGguf(at('gguf-lora-q8_0/base.gguf'), {
      lora: at('gguf-lora-q8_0/adapter.gguf'),
    });
    try {
      expect(await adapted.greedy(ids, 24)).not.toEqual(await base.greedy(ids, 24));
    } finally {
      await base.dispose();
      await adapted.dispose();
    }
  }, 300_000);

  it('merged: webtune scores the folder like base + adapter, and so does the PyTorch reference', async () => {
    if (!hasTorch()) throw new Error(`The PyTorch reference needs torch: ${INSTALL_TORCH}`);
    await webtune(
      'export',
      '--model',
      STORIES,
      '--adapter',
      at('friends.zip'),
      '--format',
      'merged',
      '--out',
      at('merged'),
      '--json',
    );
    const text = 'Tom is my best friend. We play in the park.';
    const withAdapter = (await webtune(
      'score',
      '--model',
      STORIES,
      '--adapter',
      at('friends.zip'),
      '--text',
      text,
      '--json',
    )) as { tokens: number[]; logprobs: number[] };
    const fromMerged = (await webtune('score', '--model', at('merged'), '--text', text, '--json')) as {
      tokens: number[];
      logprobs: number[];
    };
    const plain = (await webtune('score', '--model', STORIES, '--text', text, '--json')) as {
      logprobs: number[];
    };
    expect(fromMerged.tokens).toEqual(withAdapter.tokens);
    expect(maxAbsDiff(fromMerged.logprobs, withAdapter.logprobs)).toBeLessThan(1e-4);
    expect(maxAbsDiff(fromMerged.logprobs, plain.logprobs)).toBeGreaterThan(1e-2);
    expect(
      maxAbsDiff(referenceScore(at('merged'), withAdapter.tokens).logprobs, withAdapter.logprobs),
    ).toBeLessThan(1e-3);
  }, 300_000);

  it("trl: the bundle carries the settings train was given, remembered by the adapter, and the run's split", async () => {
    await webtune(
      'export',
      '--model',
      STORIES,
      '--adapter',
      at('friends.zip'),
      '--format',
      'trl',
      '--data',
      DATA,
      '--out',
      at('trl'),
      '--json',
    );
    const config = parseYaml(fs.readFileSync(at('trl/sft_config.yaml'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({
      num_train_epochs: 3,
      learning_rate: 0.01,
      lora_r: 4,
      lora_alpha: 8,
      seed: 2,
      lora_target_modules: ['q_proj', 'v_proj'],
      max_length: 256,
    });
    const lines = (file: string) => fs.readFileSync(at(file), 'utf8').trim().split('\n').length;
    const rows = fs.readFileSync(DATA, 'utf8').trim().split('\n').length - 1;
    // A 0.2 split of the CSV's rows (read without webtune's parser).
    expect(lines('trl/data/validation.jsonl')).toBe(Math.round(rows * 0.2));
    expect(lines('trl/data/train.jsonl')).toBe(rows - Math.round(rows * 0.2));
  }, 120_000);

  describe('refusals, each one line naming the fix', () => {
    const quiet: Output = { json: true, progress: () => {}, result: () => {}, help: () => {} };
    const refuse = async (argv: string[], message: RegExp) => {
      const error = await exportCommand(argv, quiet).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(CliError);
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).not.toContain('\n');
    };
    it('an unknown format, a missing --out, a bf16 GGUF, a q8_0 merged model', async () => {
      await refuse(
        ['--model', STORIES, '--format', 'onnx', '--out', at('x')],
        /--format must be one of gguf, gguf-lora, merged, trl/,
      );
      await refuse(['--model', STORIES, '--format', 'gguf'], /--out is missing/);
      await refuse(
        ['--model', STORIES, '--format', 'gguf', '--dtype', 'bf16', '--out', at('x')],
        /--dtype for --format gguf must be f16, f32 or q8_0 \(got "bf16"\)/,
      );
      await refuse(
        ['--model', STORIES, '--format', 'merged', '--dtype', 'q8_0', '--out', at('x')],
        /--dtype for --format merged must be f32, f16 or bf16/,
      );
    });
    it('gguf-lora without an adapter, trl without a dataset', async () => {
      await refuse(['--model', STORIES, '--format', 'gguf-lora', '--out', at('x')], /pass --adapter/);
      await refuse(
        ['--model', STORIES, '--adapter', at('friends.zip'), '--format', 'trl', '--out', at('x')],
        /pass --data FILE/,
      );
    });
    it('a folder that already holds files is never written into', async () => {
      fs.mkdirSync(at('full'));
      fs.writeFileSync(at('full/keep.txt'), 'mine');
      await refuse(['--model', STORIES, '--format', 'merged', '--out', at('full')], /already holds files/);
      expect(fs.readdirSync(at('full'))).toEqual(['keep.txt']);
    });
    it('an adapter for another model is named as such before anything is written', async () => {
      await refuse(
        [
          '--model',
          modelDir('tiny-random-qwen2'),
          '--adapter',
          at('friends.zip'),
          '--format',
          'gguf',
          '--out',
          at('other'),
        ],
        /Could not use the adapter/,
      );
      expect(fs.existsSync(at('other'))).toBe(false);
    });
  });
});
