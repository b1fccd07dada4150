/**
 * Gemma 3 as llama.cpp's `gemma3` GGUF, read by real llama.cpp: the tokenizer, the sliding windows (a
 * per-layer pattern, not only llama.cpp's every-sixth-layer default), norms stored as 1 + w, and LoRA as a
 * gguf-lora file or merged. What llama.cpp's gemma3 cannot compute (an attention scale other than its own)
 * is refused by name.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from '../src/engine/generate';
import { loadModel, type LoadedModel } from '../src/engine/load';
import { attachLora, detachLora, type LoraAdapter } from '../src/engine/lora';
import type { ModelFiles } from '../src/engine/model-files';
import { disposeModel } from '../src/engine/model';
import { tf } from '../src/engine/tf';
import { checkpointTensors } from '../src/formats/checkpoint-tensors';
import { TOKEN_TYPE, writeLoraGguf, writeModelGguf } from '../src/formats/gguf-model';
import type { AdapterWeights } from '../src/formats/peft';
import { readModelFolder } from '../src/node/model-folder';
import { DET_ADAPTERS } from './helpers/det-adapters';
import { detLora } from './helpers/det-lora';
import { metadataValues, readGguf } from './helpers/gguf-reader';
import { TOKENIZER_PROBES, tempDir, writeFile } from './helpers/gguf-files';
import { getLlama, openGguf, type GgufRun } from './helpers/llama-cpp';
import { maxAbsDiff, modelDir, switchBackend } from './helpers/shared';
import { webtuneLogits } from './helpers/webtune-logits';

const dir = tempDir('webtune-gguf-gemma3-');
/** Longer than the fixture's sliding window of 4, so the windows shape every answer. */
const PROMPTS = ['Lily and Tom went to the park. They saw a big dog', 'Once upon a time, there was a girl'];
const NEW_TOKENS = 16;
/**
 * llama.cpp's CPU GELU reads a table at half precision (ggml-cpu's GGML_GELU_FP16: the gate is rounded to
 * f16 and so is its GELU, a relative 2⁻¹¹ each); everything else is f32 on both sides. Measured ≤ 1.3e-3.
 */
const LOGIT_TOLERANCE = 2e-3;

/** The fixture with config.json edited: llama.cpp's gemma3 scales attention by head_dim^-½ only. */
function variant(label: string, edit: (config: Record<string, unknown>) => void): ModelFiles {
  const files = readModelFolder(modelDir('tiny-random-gemma3'));
  const config = JSON.parse(files.config) as Record<string, unknown>;
  config.query_pre_attn_scalar = config.head_dim;
  edit(config);
  return { ...files, config: JSON.stringify(config) };
}

async function exportModel(label: string, files: ModelFiles, adapter?: AdapterWeights): Promise<string> {
  return writeFile(path.join(dir, `${label}.gguf`), (sink) =>
    writeModelGguf(
      sink,
      { name: label, files, tensors: checkpointTensors(files, adapter) },
      { dtype: 'f32' },
    ),
  );
}

async function continuations(run: GgufRun | LoadedModel, loaded: LoadedModel): Promise<number[][]> {
  const out: number[][] = [];
  for (const text of PROMPTS) {
    const ids = loaded.tokenizer.encode(text);
    out.push(
      'greedy' in run
        ? await run.greedy(ids, NEW_TOKENS)
        : (await generate(run.model, ids, { maxNewTokens: NEW_TOKENS, eosTokenIds: [] })).tokens,
    );
  }
  return out;
}

async function expectSame(run: GgufRun, loaded: LoadedModel): Promise<void> {
  try {
    expect(await continuations(run, loaded)).toEqual(await continuations(loaded, loaded));
    for (const text of PROMPTS) {
      const ids = loaded.tokenizer.encode(text);
      const ours = await webtuneLogits(loaded.model, ids);
      expect(maxAbsDiff(await run.logits(ids, ours.length), ours), text).toBeLessThan(LOGIT_TOLERANCE);
    }
  } finally {
    await run.dispose();
  }
}

beforeAll(async () => {
  await switchBackend('cpu');
  await getLlama();
});

describe.each([
  ['every sixth layer full (llama.cpp default)', () => {}],
  [
    'full layers at 1 and 4',
    (c: Record<string, unknown>) => {
      c.layer_types = ['sliding', 'full', 'sliding', 'sliding', 'full', 'sliding'].map(
        (kind) => `${kind}_attention`,
      );
    },
  ],
])('tiny-random-gemma3 as GGUF f32, %s', (label, edit) => {
  const files = variant(label, edit);
  let loaded: LoadedModel;
  let file: string;
  beforeAll(async () => {
    loaded = loadModel(files);
    file = await exportModel(label.replace(/\W+/g, '-'), files);
  });
  afterAll(() => disposeModel(loaded.model));

  it("writes gemma3's windows, its tokenizer without a space prefix, and norms as 1 + w", () => {
    const gguf = readGguf(new Uint8Array(fs.readFileSync(file)));
    const meta = metadataValues(gguf);
    expect(meta['general.architecture']).toBe('gemma3');
    expect(meta['gemma3.attention.sliding_window']).toBe(4);
    expect(meta['gemma3.rope.freq_base_swa']).toBe(10000);
    expect(meta['gemma3.rope.freq_base']).toBe(1e6);
    expect(meta['gemma3.attention.key_length']).toBe(32);
    expect(meta['gemma3.attention.sliding_window_pattern']).toEqual(
      loaded.model.args.layerAttention.map((l) => l.window !== null),
    );
    expect(meta['tokenizer.ggml.model']).toBe('llama');
    expect(meta['tokenizer.ggml.add_space_prefix']).toBe(false);
    const tokens = meta['tokenizer.ggml.tokens'] as string[];
    const types = meta['tokenizer.ggml.token_type'] as number[];
    expect(tokens.slice(0, 6)).toEqual([
      '<pad>',
      '<eos>',
      '<bos>',
      '<unk>',
      '<start_of_turn>',
      '<end_of_turn>',
    ]);
    expect(types[4]).toBe(TOKEN_TYPE.CONTROL);
    expect(meta['tokenizer.ggml.bos_token_id']).toBe(2);
    expect(meta['tokenizer.chat_template']).toBe(loaded.tokenizer.chatTemplate);
    expect(gguf.tensors.map((t) => t.name)).toContain('blk.0.post_ffw_norm.weight');
  });

  it('tokenizes like webtune, chat turns included', async () => {
    const run = await openGguf(file);
    try {
      const { tokenizer } = loaded;
      expect(run.model.tokens.bos).toBe(2);
      for (const text of TOKENIZER_PROBES)
        expect(run.model.tokenize(text, false), text).toEqual(
          tokenizer.encode(text, { addSpecialTokens: false }),
        );
      const chat = tokenizer.applyChatTemplate([{ role: 'user', content: 'Who is Tom?' }], {
        addGenerationPrompt: true,
      });
      expect(chat).toBe('<bos><start_of_turn>user\nWho is Tom?<end_of_turn>\n<start_of_turn>model\n');
      const ours = tokenizer.encode(chat, { addSpecialTokens: false });
      expect(ours.filter((id) => id === 4 || id === 5)).toEqual([4, 5, 4]);
      expect(run.model.tokenize(chat, true)).toEqual(ours);
    } finally {
      await run.dispose();
    }
  });

  it("continues greedily like webtune, with webtune's logits", async () => {
    await expectSame(await openGguf(file), loaded);
  });
});

describe('tiny-random-gemma3 with a LoRA on all seven targets', () => {
  const files = variant('lora', () => {});
  let loaded: LoadedModel;
  let adapter: LoraAdapter;
  let weights: AdapterWeights;
  let before: number;
  beforeAll(async () => {
    before = tf.memory().numTensors;
    loaded = loadModel(files);
    const base = await webtuneLogits(loaded.model, loaded.tokenizer.encode(PROMPTS[0]));
    adapter = attachLora(loaded.model, DET_ADAPTERS[0].settings, detLora, 'tiny-random-gemma3');
    weights = await adapter.toWeights();
    const adapted = await webtuneLogits(loaded.model, loaded.tokenizer.encode(PROMPTS[0]));
    // The adapter moves the logits far beyond the tolerance, so the checks below can tell it from none.
    expect(maxAbsDiff(adapted, base)).toBeGreaterThan(20 * LOGIT_TOLERANCE);
  });
  afterAll(() => {
    detachLora(loaded.model, adapter);
    disposeModel(loaded.model);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('base GGUF + LoRA GGUF answers like webtune with the adapter attached', async () => {
    const lora = await writeFile(path.join(dir, 'gemma3.lora.gguf'), (sink) =>
      writeLoraGguf(sink, { name: 'gemma3-lora', files, adapter: weights }, { dtype: 'f32' }),
    );
    await expectSame(await openGguf(await exportModel('gemma3-base', files), { lora }), loaded);
  });

  it('the merged GGUF answers the same', async () => {
    await expectSame(await openGguf(await exportModel('gemma3-merged', files, weights)), loaded);
  });
});

it("refuses, by name, an attention scale llama.cpp's gemma3 does not compute", async () => {
  const files = readModelFolder(modelDir('tiny-random-gemma3'));
  // The committed fixture's query_pre_attn_scalar is 24 against a head_dim of 32.
  await expect(exportModel('refused', files)).rejects.toThrow(
    /query_pre_attn_scalar \(24\) differs from the 32/,
  );
});
