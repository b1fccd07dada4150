/**
 * GPT-2-style byte-level BPE vocabularies (SmolLM2's, Qwen's) through GGUF: no fixture has one, so a
 * small one is trained here over the shared datasets' text, paired with tiny-random-qwen2's weights
 * (vocab 512), exported and loaded in real llama.cpp. llama.cpp must tokenize like webtune's tokenizer
 * (transformers.js), special tokens and chat template included, and continue prompts the same.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readModelFolder } from '../src/node/model-folder';
import { generate } from '../src/engine/generate';
import { loadModel, type LoadedModel } from '../src/engine/load';
import { disposeModel } from '../src/engine/model';
import { tf } from '../src/engine/tf';
import { checkpointTensors } from '../src/formats/checkpoint-tensors';
import { TOKEN_TYPE, writeModelGguf } from '../src/formats/gguf-model';
import { CHATML_TEMPLATE, PRE_TOKENIZERS, tokenizerJson, trainByteBpe } from './helpers/byte-bpe';
import { TOKENIZER_PROBES, tempDir, writeFile } from './helpers/gguf-files';
import { metadataValues, readGguf } from './helpers/gguf-reader';
import { getLlama, openGguf, type GgufRun } from './helpers/llama-cpp';
import { dataFile, modelDir, switchBackend } from './helpers/shared';

const SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];
const EXTRA_TEXT = `The quick brown fox jumps over the lazy dog. It's 2024, and we've got 3 cats, 12 dogs and 100 birds!
Don't worry: they'll be fine. "Hello," she said -- then she laughed. (Really?) Yes; really.
Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friend Tom.
${'In 2024 and 2025 we sold 100, 200, 1000 and 2024 toys; 10 20 30 40 50 2024 2025 100 1000 12 123. '.repeat(4)}`;
const corpus =
  ['alpaca-mini.jsonl', 'animal-sounds.jsonl', 'best-friends.csv', 'chat-mini.jsonl', 'support-tickets.csv']
    .map((f) => fs.readFileSync(dataFile(f), 'utf8'))
    .join('\n') + EXTRA_TEXT;
const bpe = trainByteBpe(corpus, 512, SPECIALS);
const idOf = (token: string) => bpe.vocab[token];
const dir = tempDir('webtune-gguf-bpe-');
const base = readModelFolder(modelDir('tiny-random-qwen2'));

const VARIANTS = [
  {
    pre: 'qwen2' as const,
    merges: 'pairs' as const,
    config: {
      tokenizer_class: 'Qwen2Tokenizer',
      bos_token: null,
      eos_token: '<|im_end|>',
      pad_token: '<|endoftext|>',
      unk_token: null,
      chat_template: CHATML_TEMPLATE,
      errors: 'replace',
      model_max_length: 512,
    },
  },
  {
    pre: 'gpt-2' as const,
    merges: 'strings' as const,
    config: {
      tokenizer_class: 'GPT2Tokenizer',
      bos_token: '<|endoftext|>',
      eos_token: '<|endoftext|>',
      unk_token: '<|endoftext|>',
      add_prefix_space: false,
      model_max_length: 512,
    },
  },
  {
    pre: 'smollm' as const,
    merges: 'strings' as const,
    config: {
      tokenizer_class: 'GPT2Tokenizer',
      bos_token: '<|im_start|>',
      eos_token: '<|im_end|>',
      pad_token: '<|im_end|>',
      unk_token: '<|endoftext|>',
      chat_template: CHATML_TEMPLATE,
      model_max_length: 512,
    },
  },
];

beforeAll(async () => {
  await switchBackend('cpu');
  await getLlama();
});

it('the trained vocabulary has exactly 512 ids: 256 bytes, merges, then the special tokens', () => {
  expect(Object.keys(bpe.vocab)).toHaveLength(512);
  expect(new Set(Object.values(bpe.vocab)).size).toBe(512);
  expect(bpe.merges).toHaveLength(512 - 256 - SPECIALS.length);
  expect(SPECIALS.map(idOf)).toEqual([509, 510, 511]);
});

describe.each(VARIANTS)(
  'a byte-level BPE with the $pre pre-tokenizer (merges as $merges)',
  ({ pre, merges, config }) => {
    const files = {
      ...base,
      name: `tiny-bpe-${pre}`,
      // As a real model of that family: config.json names the same special tokens by id.
      config: JSON.stringify({
        ...JSON.parse(base.config),
        bos_token_id: idOf(config.bos_token ?? '<|endoftext|>'),
        eos_token_id: idOf(config.eos_token),
      }),
      tokenizerJson: JSON.stringify(tokenizerJson(bpe, pre, merges)),
      tokenizerConfig: JSON.stringify({
        add_prefix_space: false,
        added_tokens_decoder: Object.fromEntries(
          bpe.specials.map((s) => [
            String(s.id),
            {
              content: s.content,
              lstrip: false,
              normalized: false,
              rstrip: false,
              single_word: false,
              special: true,
            },
          ]),
        ),
        clean_up_tokenization_spaces: false,
        ...config,
      }),
    };
    let loaded: LoadedModel;
    let run: GgufRun;
    let file: string;
    let before: number;
    beforeAll(async () => {
      before = tf.memory().numTensors;
      loaded = loadModel(files);
      file = await writeFile(path.join(dir, `${pre}.gguf`), (sink) =>
        writeModelGguf(
          sink,
          { name: files.name, files, tensors: checkpointTensors(files) },
          { dtype: 'f32' },
        ),
      );
      run = await openGguf(file);
    });
    afterAll(async () => {
      await run?.dispose();
      disposeModel(loaded.model);
      expect(tf.memory().numTensors).toBe(before);
    });

    it(`is written as a gpt2 vocabulary with pre-tokenizer "${pre}", its merges, special tokens and chat template`, () => {
      const meta = metadataValues(readGguf(new Uint8Array(fs.readFileSync(file))));
      expect(meta['tokenizer.ggml.model']).toBe('gpt2');
      expect(meta['tokenizer.ggml.pre']).toBe(pre);
      expect(meta['tokenizer.ggml.merges']).toEqual(bpe.merges.map(([a, b]) => `${a} ${b}`));
      const types = meta['tokenizer.ggml.token_type'] as number[];
      expect(SPECIALS.map((s) => types[idOf(s)])).toEqual([
        TOKEN_TYPE.CONTROL,
        TOKEN_TYPE.CONTROL,
        TOKEN_TYPE.CONTROL,
      ]);
      expect(types.filter((t) => t === TOKEN_TYPE.NORMAL)).toHaveLength(509);
      expect(meta['tokenizer.ggml.eos_token_id']).toBe(idOf(config.eos_token));
      expect(meta['tokenizer.ggml.add_bos_token']).toBe(false);
      expect(meta['tokenizer.chat_template']).toBe(config.chat_template);
      // llama.cpp (through node-llama-cpp's reader) sees the same.
      expect(run.model.tokens.eos).toBe(idOf(config.eos_token));
    });

    it('llama.cpp tokenizes like webtune, special tokens included', () => {
      const { tokenizer } = loaded;
      expect(tokenizer.addsBos).toBe(false);
      for (const text of [
        ...TOKENIZER_PROBES,
        'x  \n\n  y\r\n',
        "I'M HERE, YOU'RE THERE",
        'digits 1234567 and 98.6, in 2024 and 2025 we sold 1000',
      ]) {
        expect(run.model.tokenize(text, false), JSON.stringify(text)).toEqual(
          tokenizer.encode(text, { addSpecialTokens: false }),
        );
      }
      const chat = '<|im_start|>user\nWho is Tom?<|im_end|>\n<|im_start|>assistant\n';
      const ours = tokenizer.encode(chat, { addSpecialTokens: false });
      expect(ours).toContain(idOf('<|im_start|>'));
      expect(run.model.tokenize(chat, true)).toEqual(ours);
    });

    it('llama.cpp continues prompts with the same tokens as webtune', async () => {
      for (const text of ['Once upon a time', 'Who is Tom? Tom is my']) {
        const ids = loaded.tokenizer.encode(text);
        const ours = await generate(loaded.model, ids, { maxNewTokens: 24, eosTokenIds: [] });
        expect(await run.greedy(ids, 24), text).toEqual(ours.tokens);
      }
    });
  },
);

it('PRE_TOKENIZERS covers the three splitters the export names', () => {
  expect(Object.keys(PRE_TOKENIZERS).sort()).toEqual(VARIANTS.map((v) => v.pre).sort());
});
