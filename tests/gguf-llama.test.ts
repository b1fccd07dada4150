/**
 * webtune's GGUF export read by real llama.cpp: the file loads, llama.cpp tokenizes prompts exactly as
 * webtune's tokenizer does, and continues them greedily with the same tokens as webtune's generate().
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readModelFolder } from '../src/node/model-folder';
import { generate } from '../src/engine/generate';
import { loadModel } from '../src/engine/load';
import { disposeModel } from '../src/engine/model';
import { tf } from '../src/engine/tf';
import { checkpointTensors } from '../src/formats/checkpoint-tensors';
import { TOKEN_TYPE, writeModelGguf } from '../src/formats/gguf-model';
import { metadataValues, readGguf } from './helpers/gguf-reader';
import { TOKENIZER_PROBES, tempDir, writeFile } from './helpers/gguf-files';
import { getLlama, openGguf } from './helpers/llama-cpp';
import { maxAbsDiff, modelDir, switchBackend } from './helpers/shared';
import { webtuneLogits } from './helpers/webtune-logits';

const NEW_TOKENS = 24;
const dir = tempDir('webtune-gguf-');

beforeAll(async () => {
  await switchBackend('cpu');
  await getLlama();
});

describe.each(['stories260K', 'stories260K-chat', 'tiny-random-qwen2', 'tiny-random-qwen3'])(
  '%s as GGUF f32',
  (name) => {
    const files = readModelFolder(modelDir(name));
    const loaded = loadModel(files);
    let run: Awaited<ReturnType<typeof openGguf>>;
    let file: string;
    beforeAll(async () => {
      file = await writeFile(path.join(dir, `${name}.gguf`), (sink) =>
        writeModelGguf(sink, { name, files, tensors: checkpointTensors(files) }, { dtype: 'f32' }),
      );
      run = await openGguf(file);
    });
    afterAll(async () => {
      await run?.dispose();
      disposeModel(loaded.model);
    });

    it('is written as a SentencePiece-style vocabulary: ▁ tokens, scores, token types, BOS added', () => {
      const meta = metadataValues(readGguf(new Uint8Array(fs.readFileSync(file))));
      const tokens = meta['tokenizer.ggml.tokens'] as string[];
      const types = meta['tokenizer.ggml.token_type'] as number[];
      const vocab = JSON.parse(files.tokenizerJson).model.vocab as Record<string, number>;
      expect(meta['tokenizer.ggml.model']).toBe('llama');
      expect(tokens).toHaveLength(512);
      for (const [token, id] of Object.entries(vocab)) expect(tokens[id]).toBe(token);
      expect(types[0]).toBe(TOKEN_TYPE.UNKNOWN);
      expect([types[1], types[2]]).toEqual([TOKEN_TYPE.CONTROL, TOKEN_TYPE.CONTROL]);
      expect(types.filter((t) => t === TOKEN_TYPE.BYTE)).toHaveLength(256);
      expect(types[tokens.indexOf('<0x41>')]).toBe(TOKEN_TYPE.BYTE);
      expect(meta['tokenizer.ggml.add_bos_token']).toBe(true);
      expect(meta['tokenizer.ggml.add_space_prefix']).toBe(true);
      expect(meta['tokenizer.chat_template']).toBe(loaded.tokenizer.chatTemplate ?? undefined);
    });

    it('tokenizes like webtune', () => {
      const { tokenizer } = loaded;
      expect(run.model.tokens.bos).toBe(tokenizer.bosTokenId);
      for (const text of TOKENIZER_PROBES) {
        const ours = tokenizer.encode(text, { addSpecialTokens: false });
        expect(run.model.tokenize(text, false), JSON.stringify(text)).toEqual(ours);
      }
      // Special tokens in the text (a rendered chat) are parsed alike too.
      const chat = '<|user|>\nWho is Tom?</s>\n<|assistant|>\nTom is</s> my friend<s>';
      expect(run.model.tokenize(chat, true)).toEqual(tokenizer.encode(chat, { addSpecialTokens: false }));
      expect(tokenizer.encode(chat, { addSpecialTokens: false })).toContain(2);
    });

    it('continues prompts greedily with the same tokens as webtune', async () => {
      const before = tf.memory().numTensors;
      for (const text of ['Once upon a time', 'Lily and Tom went to the park. They']) {
        const ids = loaded.tokenizer.encode(text);
        expect(ids[0]).toBe(loaded.tokenizer.bosTokenId);
        const ours = await generate(loaded.model, ids, { maxNewTokens: NEW_TOKENS, eosTokenIds: [] });
        expect(ours.tokens).toHaveLength(NEW_TOKENS);
        expect(await run.greedy(ids, NEW_TOKENS), text).toEqual(ours.tokens);
      }
      expect(tf.memory().numTensors).toBe(before);
    });

    it("gives webtune's logits (f32 throughout, so within 1e-4)", async () => {
      for (const text of ['Once', 'Lily and Tom went to the park. They']) {
        const ids = loaded.tokenizer.encode(text);
        const ours = await webtuneLogits(loaded.model, ids);
        expect(maxAbsDiff(await run.logits(ids, ours.length), ours), text).toBeLessThan(1e-4);
      }
    });
  },
);
