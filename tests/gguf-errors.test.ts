/**
 * What the GGUF export cannot express is refused before a byte is written, with a message that says what and
 * what to do.
 */
import { describe, expect, it } from 'vitest';
import { readModelFolder } from '../src/node/model-folder';
import { checkpointTensors, type CheckpointTensor } from '../src/formats/checkpoint-tensors';
import { GgufExportError, writeLoraGguf, writeModelGguf } from '../src/formats/gguf-model';
import type { AdapterWeights } from '../src/formats/peft';
import { modelDir } from './helpers/shared';

const stories = readModelFolder(modelDir('stories260K'));
/** tokenizer.json, read as far as these tests change it. */
interface TokenizerJson {
  model: { vocab: Record<string, number> } & Record<string, unknown>;
  added_tokens: object[];
  [key: string]: unknown;
}
const tokenizer = JSON.parse(stories.tokenizerJson) as TokenizerJson;
const ADVICE = /convert_hf_to_gguf\.py/;

async function exportWith(change: {
  tokenizerJson?: object;
  tokenizerConfig?: object;
  config?: object;
  tensors?: CheckpointTensor[];
}) {
  let written = 0;
  const files = {
    config: change.config ? JSON.stringify(change.config) : stories.config,
    tokenizerJson: change.tokenizerJson ? JSON.stringify(change.tokenizerJson) : stories.tokenizerJson,
    tokenizerConfig: change.tokenizerConfig
      ? JSON.stringify(change.tokenizerConfig)
      : stories.tokenizerConfig,
  };
  const error = await writeModelGguf(
    { write: (c) => void (written += c.byteLength) },
    { name: 'x', files, tensors: change.tensors ?? checkpointTensors(stories) },
    { dtype: 'f32' },
  ).then(
    () => null,
    (e: unknown) => e,
  );
  return { error: error as Error | null, written };
}

const withModel = (model: object) => ({ ...tokenizer, model: { ...tokenizer.model, ...model } });

describe('unsupported tokenizers', () => {
  const cases: [string, object, RegExp][] = [
    ['a Unigram model', withModel({ type: 'Unigram', vocab: [['<unk>', 0]] }), /model is "Unigram", not BPE/],
    ['a WordPiece model', withModel({ type: 'WordPiece' }), /model is "WordPiece", not BPE/],
    [
      'SentencePiece-style BPE without byte fallback',
      withModel({ byte_fallback: false }),
      /no byte fallback/,
    ],
    [
      'a missing byte token',
      withModel({
        vocab: Object.fromEntries(Object.entries(tokenizer.model.vocab).filter(([t]) => t !== '<0x41>')),
      }),
      /byte token <0x41> is missing/,
    ],
    [
      'a normalizer that does not turn spaces into ▁',
      { ...tokenizer, normalizer: { type: 'Lowercase' } },
      /do not turn spaces into "▁"/,
    ],
    [
      'a ByteLevel that adds a prefix space',
      {
        ...tokenizer,
        normalizer: null,
        pre_tokenizer: { type: 'ByteLevel', add_prefix_space: true, use_regex: true },
      },
      /adds a prefix space/,
    ],
    [
      'a byte-level BPE with a normalizer llama.cpp does not apply',
      {
        ...tokenizer,
        normalizer: { type: 'Lowercase' },
        pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, use_regex: true },
      },
      /normalizer \(Lowercase\) changes text/,
    ],
    [
      'a splitter llama.cpp does not know',
      {
        ...tokenizer,
        normalizer: null,
        pre_tokenizer: {
          type: 'Sequence',
          pretokenizers: [
            { type: 'Whitespace' },
            { type: 'ByteLevel', add_prefix_space: false, use_regex: false },
          ],
        },
      },
      /Whitespace → ByteLevel.*matches none/,
    ],
    [
      'a post-processor adding other special tokens',
      {
        ...tokenizer,
        post_processor: {
          type: 'TemplateProcessing',
          single: [
            { SpecialToken: { id: '<s>' } },
            { Sequence: { id: 'A' } },
            { SpecialToken: { id: '<unk>' } },
          ],
        },
      },
      /other than a leading BOS/,
    ],
    [
      "ids beyond config.json's vocab_size",
      {
        ...tokenizer,
        added_tokens: [...tokenizer.added_tokens, { id: 600, content: '<extra>', special: true }],
      },
      /ids up to 600 but config.json's vocab_size is 512/,
    ],
  ];
  it.each(cases)('refuses %s', async (_label, tokenizerJson, message) => {
    const { error, written } = await exportWith({ tokenizerJson });
    expect(error).toBeInstanceOf(GgufExportError);
    expect(error!.message).toMatch(message);
    expect(error!.message).toMatch(ADVICE);
    expect(written).toBe(0);
  });

  it('refuses a bos_token that is not in the vocabulary', async () => {
    const { error } = await exportWith({
      tokenizerConfig: { ...JSON.parse(stories.tokenizerConfig), bos_token: '<start>' },
    });
    expect(error?.message).toMatch(/bos_token "<start>" is not in the vocabulary/);
  });
});

describe('unsupported checkpoints and adapters', () => {
  it('refuses a tensor it has no GGUF name for', async () => {
    const tensors = [
      ...checkpointTensors(stories),
      {
        name: 'model.layers.0.mlp.experts.0.w1.weight',
        shape: [2, 2],
        dtype: 'F32' as const,
        read: () => new Float32Array(4),
      },
    ];
    const { error, written } = await exportWith({ tensors });
    expect(error).toBeInstanceOf(GgufExportError);
    expect(error!.message).toMatch(/"model\.layers\.0\.mlp\.experts\.0\.w1\.weight" has no GGUF name/);
    expect(written).toBe(0);
  });

  it('refuses an untied config without lm_head.weight', async () => {
    const { error } = await exportWith({
      config: { ...JSON.parse(stories.config), tie_word_embeddings: false },
    });
    expect(error?.message).toMatch(/no tensor "lm_head\.weight".*"tie_word_embeddings": true/);
  });

  it('refuses an adapter for layers the model does not have, or with mismatched A and B', async () => {
    const adapter = (path: string, rankB = 2): AdapterWeights => ({
      config: {
        r: 2,
        lora_alpha: 4,
        lora_dropout: 0,
        target_modules: ['q_proj'],
        use_rslora: false,
        base_model_name_or_path: 'x',
      },
      modules: new Map([
        [
          path,
          {
            A: { shape: [2, 64], data: new Float32Array(128) },
            B: { shape: [64, rankB], data: new Float32Array(64 * rankB) },
          },
        ],
      ]),
    });
    const sink = { write: () => {} };
    await expect(
      writeLoraGguf(
        sink,
        { name: 'x', files: stories, adapter: adapter('model.layers.9.self_attn.q_proj') },
        { dtype: 'f32' },
      ),
    ).rejects.toThrow(/adapts layer 9, but the model has 5 layers/);
    await expect(
      writeLoraGguf(
        sink,
        { name: 'x', files: stories, adapter: adapter('model.layers.0.self_attn.q_proj', 3) },
        { dtype: 'f32' },
      ),
    ).rejects.toThrow(/do not fit together/);
    await expect(
      writeLoraGguf(
        sink,
        { name: 'x', files: stories, adapter: adapter('model.layers.0.self_attn.rotary') },
        { dtype: 'f32' },
      ),
    ).rejects.toThrow(/not one llama\.cpp can adapt/);
  });
});
