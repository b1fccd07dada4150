/**
 * f16 GGUF exports: matrices stored as IEEE half precision (1-D norms and biases kept f32, as llama.cpp's
 * converter keeps them), read by real llama.cpp. Its answers are compared with webtune running on the
 * same weights rounded to f16, and with webtune in f32.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readModelFolder } from '../src/node/model-folder';
import { generate } from '../src/engine/generate';
import { loadModel, type LoadedModel } from '../src/engine/load';
import { attachLora, detachLora } from '../src/engine/lora';
import { disposeModel } from '../src/engine/model';
import { writeSafetensors } from '../src/engine/safetensors';
import { tf } from '../src/engine/tf';
import { checkpointTensors } from '../src/formats/checkpoint-tensors';
import { roundToFloat16 } from './helpers/half';
import { writeLoraGguf, writeModelGguf } from '../src/formats/gguf-model';
import { DET_ADAPTERS } from './helpers/det-adapters';
import { detLora } from './helpers/det-lora';
import { tempDir, writeFile } from './helpers/gguf-files';
import { readGguf } from './helpers/gguf-reader';
import { getLlama, openGguf, type GgufRun } from './helpers/llama-cpp';
import { maxAbsDiff, modelDir, switchBackend } from './helpers/shared';
import { webtuneLogits } from './helpers/webtune-logits';

const PROMPTS = ['Once upon a time', 'Lily and Tom went to the park. They', 'The little dog'];
const NEW_TOKENS = 24;
const dir = tempDir('webtune-gguf-f16-');
const files = readModelFolder(modelDir('stories260K'));

describe('stories260K as GGUF f16', () => {
  let file: string;
  let run: GgufRun;
  let f32: LoadedModel;
  let rounded: LoadedModel;
  let before: number;
  beforeAll(async () => {
    await switchBackend('cpu');
    await getLlama();
    before = tf.memory().numTensors;
    file = await writeFile(path.join(dir, 'stories260K-f16.gguf'), (sink) =>
      writeModelGguf(
        sink,
        { name: 'stories260K', files, tensors: checkpointTensors(files) },
        { dtype: 'f16' },
      ),
    );
    run = await openGguf(file);
    f32 = loadModel(files);
    // The checkpoint with every matrix rounded through f16, as the file stores it.
    const roundedWeights = writeSafetensors(
      checkpointTensors(files).map((t) => [
        t.name,
        { shape: t.shape, data: t.shape.length === 2 ? roundToFloat16(t.read()) : t.read() },
      ]),
    );
    rounded = loadModel({ ...files, weights: roundedWeights });
  });
  afterAll(async () => {
    await run?.dispose();
    disposeModel(f32.model);
    disposeModel(rounded.model);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('stores matrices as f16 and vectors as f32, in about half the bytes', async () => {
    const parsed = readGguf(new Uint8Array(fs.readFileSync(file)));
    expect(parsed.metadata.get('general.file_type')!.value).toBe(1);
    for (const t of parsed.tensors) expect(t.type, t.name).toBe(t.dims.length === 2 ? 1 : 0);
    expect(parsed.tensors.some((t) => t.dims.length === 1)).toBe(true);
    const f32File = await writeFile(path.join(dir, 'stories260K-f32.gguf'), (sink) =>
      writeModelGguf(
        sink,
        { name: 'stories260K', files, tensors: checkpointTensors(files) },
        { dtype: 'f32' },
      ),
    );
    expect(fs.statSync(file).size / fs.statSync(f32File).size).toBeLessThan(0.6);
  });

  it('continues greedily with the same tokens as webtune on f16-rounded weights, and as webtune in f32', async () => {
    for (const text of PROMPTS) {
      const ids = f32.tokenizer.encode(text);
      const theirs = await run.greedy(ids, NEW_TOKENS);
      expect(theirs, text).toEqual(
        (await generate(rounded.model, ids, { maxNewTokens: NEW_TOKENS, eosTokenIds: [] })).tokens,
      );
      expect(theirs, text).toEqual(
        (await generate(f32.model, ids, { maxNewTokens: NEW_TOKENS, eosTokenIds: [] })).tokens,
      );
    }
  });

  it('gives logits close to webtune on the f16-rounded weights (llama.cpp also rounds activations to f16 for f16 matrices)', async () => {
    for (const text of PROMPTS) {
      const ids = f32.tokenizer.encode(text);
      const ours = await webtuneLogits(rounded.model, ids);
      const theirs = await run.logits(ids, ours.length);
      // Measured ≤ 6e-3 on logits of magnitude up to 18 (≤ 1.1e-2 against f32 webtune).
      expect(maxAbsDiff(theirs, ours), text).toBeLessThan(0.02);
    }
  });

  it('an f16 LoRA GGUF on the f16 model continues like webtune with the adapter', async () => {
    const adapter = attachLora(f32.model, DET_ADAPTERS[0].settings, detLora, 'stories260K');
    try {
      const weights = await adapter.toWeights();
      const lora = await writeFile(path.join(dir, 'stories260K-f16.lora.gguf'), (sink) =>
        writeLoraGguf(sink, { name: 'all7', files, adapter: weights }, { dtype: 'f16' }),
      );
      expect(readGguf(new Uint8Array(fs.readFileSync(lora))).tensors.every((t) => t.type === 1)).toBe(true);
      const withLora = await openGguf(file, { lora });
      try {
        for (const text of PROMPTS) {
          const ids = f32.tokenizer.encode(text);
          expect(await withLora.greedy(ids, NEW_TOKENS), text).toEqual(
            (await generate(f32.model, ids, { maxNewTokens: NEW_TOKENS, eosTokenIds: [] })).tokens,
          );
        }
      } finally {
        await withLora.dispose();
      }
    } finally {
      detachLora(f32.model, adapter);
    }
  });
});
